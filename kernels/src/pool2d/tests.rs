use super::reference::{avg_pool2d, max_pool2d};
use super::*;
use crate::testing::{assert_close, assert_near, Rng, Tol};

/// One image, one channel, square kernel k with stride k; the rest set per test.
fn single(h: usize, w: usize, k: usize) -> Pool2dParams {
    Pool2dParams {
        n: 1,
        c: 1,
        h,
        w,
        kernel: [k, k],
        stride: [k, k],
        pad: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    }
}

fn run(f: fn(&Pool2dParams, &[f32], &mut [f32]), p: &Pool2dParams, x: &[f32]) -> Vec<f32> {
    p.validate().unwrap();
    let mut y = vec![f32::NAN; p.output_shape().iter().product()];
    f(p, x, &mut y);
    y
}

// x: (1, 1, 3, 3) = [1 2 3; 4 5 6; 7 8 9]
const X3: [f32; 9] = [1., 2., 3., 4., 5., 6., 7., 8., 9.];

#[test]
fn output_sizes_match_pytorch() {
    let hw = |p: Pool2dParams| p.validate().map(|()| p.output_hw());
    // ResNet's MaxPool2d(3, 2, 1): 112 -> 56.
    assert_eq!(
        hw(Pool2dParams {
            kernel: [3, 3],
            stride: [2, 2],
            pad: [1, 1],
            ..single(112, 112, 3)
        }),
        Ok((56, 56))
    );
    // kernel 3 stride 2 on 6: floor (6-3)/2+1 = 2; ceil (6-3+1)/2+1 = 3, last window starts at 4 < 6.
    let k3s2 = Pool2dParams {
        stride: [2, 2],
        ..single(6, 6, 3)
    };
    assert_eq!(hw(k3s2), Ok((2, 2)));
    assert_eq!(
        hw(Pool2dParams {
            ceil_mode: true,
            ..k3s2
        }),
        Ok((3, 3))
    );
    // ... on 5 with pad 0: (5-3+1)/2+1 = 2 in ceil mode too.
    assert_eq!(
        hw(Pool2dParams {
            h: 5,
            w: 5,
            ceil_mode: true,
            ..k3s2
        }),
        Ok((2, 2))
    );
    // GoogLeNet's MaxPool2d(3, 2, ceil_mode=True): 112 -> 56 (floor would give 55).
    assert_eq!(
        hw(Pool2dParams {
            h: 112,
            w: 112,
            ceil_mode: true,
            ..k3s2
        }),
        Ok((56, 56))
    );
    // AvgPool2d(2, ceil_mode=True) on 7 -> 4 (floor: 3).
    assert_eq!(
        hw(Pool2dParams {
            ceil_mode: true,
            ..single(7, 7, 2)
        }),
        Ok((4, 4))
    );
    assert_eq!(hw(single(7, 7, 2)), Ok((3, 3)));
    // Ceil mode's "last window must start inside" rule: kernel 2 stride 2 pad 1 on 5:
    // (5+2-2+1)/2+1 = 4, but window 3 would start at 3*2-1 = 5 = past the input, so 3.
    assert_eq!(
        hw(Pool2dParams {
            pad: [1, 1],
            ceil_mode: true,
            ..single(5, 5, 2)
        }),
        Ok((3, 3))
    );
    // Dilation: kernel 3 dilated by 2 reaches 5: 7 -> 3 with stride 1.
    assert_eq!(
        hw(Pool2dParams {
            stride: [1, 1],
            dilation: [2, 2],
            ..single(7, 7, 3)
        }),
        Ok((3, 3))
    );
    // Axes are independent.
    let rect = Pool2dParams {
        kernel: [1, 3],
        stride: [1, 2],
        pad: [0, 1],
        ceil_mode: true,
        ..single(2, 4, 1)
    };
    assert_eq!(hw(rect), Ok((2, 3)));
    assert_eq!(rect.output_shape(), [1, 1, 2, 3]);
}

#[test]
fn max_pool_pads_with_minus_infinity() {
    // Kernel 2, stride 2, pad 1 on -[1..9]: windows start at -1 and 1 on each axis:
    // (0,0) = {-1}, (0,1) = {-2, -3}, (1,0) = {-4, -7}, (1,1) = {-5, -6, -8, -9}.
    // Zero padding would give 0 at three corners.
    let p = Pool2dParams {
        pad: [1, 1],
        ..single(3, 3, 2)
    };
    let x = X3.map(|v| -v);
    assert_near(&run(max_pool2d, &p, &x), &[-1., -2., -4., -5.]);
}

#[test]
fn max_pool_dilation_and_nan() {
    // x: (1, 1, 4, 4) = 0..16; kernel 2 dilated by 2 reads offsets (0,0), (0,2), (2,0), (2,2):
    // y(0,0) = max(0, 2, 8, 10) = 10, and each step adds 1 across, 4 down.
    let p = Pool2dParams {
        stride: [1, 1],
        dilation: [2, 2],
        ..single(4, 4, 2)
    };
    let mut x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    assert_near(&run(max_pool2d, &p, &x), &[10., 11., 14., 15.]);
    // A NaN at (1, 1) is read only by output (1, 1); it wins even against larger values.
    x[5] = f32::NAN;
    assert_near(&run(max_pool2d, &p, &x), &[10., 11., 14., f32::NAN]);
}

#[test]
fn avg_pool_count_include_pad() {
    // Kernel 2, stride 2, pad 1 on [1..9]: in-bounds taps (0,0) = {1}, (0,1) = {2, 3},
    // (1,0) = {4, 7}, (1,1) = {5, 6, 8, 9}. Every window is 2x2 = 4 with padding.
    let p = Pool2dParams {
        pad: [1, 1],
        ..single(3, 3, 2)
    };
    assert_near(
        &run(avg_pool2d, &p, &X3),
        &[1. / 4., 5. / 4., 11. / 4., 28. / 4.],
    );
    let p = Pool2dParams {
        count_include_pad: false,
        ..p
    };
    assert_near(
        &run(avg_pool2d, &p, &X3),
        &[1., 5. / 2., 11. / 2., 28. / 4.],
    );
}

#[test]
fn avg_pool_ceil_mode_window_hangs_over_the_edge() {
    // Kernel 2, stride 2, no pad, ceil on 3: 2 windows per axis; the second covers [2, 4)
    // but is cut at h + pad = 3 before measuring, so its size is 1 whatever count_include_pad:
    // (0,0) = (1+2+4+5)/4 = 3, (0,1) = (3+6)/2, (1,0) = (7+8)/2, (1,1) = 9/1.
    for count_include_pad in [true, false] {
        let p = Pool2dParams {
            ceil_mode: true,
            count_include_pad,
            ..single(3, 3, 2)
        };
        assert_near(&run(avg_pool2d, &p, &X3), &[3., 4.5, 7.5, 9.]);
    }
    // With padding the two divisors differ. x: (1, 1, 1, 4) = [1 2 3 4], kernel (1, 3),
    // stride (1, 2), pad (0, 1), ceil: 3 windows along w, starting at -1, 1, 3:
    //   [-1, 2): taps {1, 2}, size 3          -> 3/3 = 1   or 3/2 = 1.5
    //   [1, 4):  taps {2, 3, 4}, size 3       -> 9/3 = 3   either way
    //   [3, 5):  cut at w + pad = 5, size 2; taps {4} -> 4/2 = 2 or 4/1 = 4
    let p = Pool2dParams {
        kernel: [1, 3],
        stride: [1, 2],
        pad: [0, 1],
        ceil_mode: true,
        ..single(1, 4, 1)
    };
    let x = [1., 2., 3., 4.];
    assert_near(&run(avg_pool2d, &p, &x), &[1., 3., 2.]);
    let p = Pool2dParams {
        count_include_pad: false,
        ..p
    };
    assert_near(&run(avg_pool2d, &p, &x), &[1.5, 3., 4.]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let err = |p: Pool2dParams| p.validate().unwrap_err().0;
    let p = Pool2dParams {
        stride: [2, 2],
        pad: [1, 1],
        ..single(5, 5, 3)
    };
    assert!(p.validate().is_ok());
    assert_eq!(
        err(Pool2dParams {
            stride: [0, 1],
            ..p
        }),
        "stride must be at least 1, got [0, 1]"
    );
    assert_eq!(
        err(Pool2dParams {
            kernel: [3, 0],
            ..p
        }),
        "kernel must be at least 1, got [3, 0]"
    );
    assert_eq!(
        err(Pool2dParams {
            dilation: [0, 0],
            ..p
        }),
        "dilation must be at least 1, got [0, 0]"
    );
    assert_eq!(
        err(Pool2dParams { h: 0, ..p }),
        "h must be at least 1, got 0"
    );
    assert_eq!(
        err(Pool2dParams { pad: [1, 2], ..p }),
        "pad must be at most half the kernel, got pad [1, 2] for kernel [3, 3]"
    );
    // Kernel 2 allows pad 1 (2/2), kernel 1 allows none.
    assert!(Pool2dParams {
        pad: [1, 1],
        ..single(3, 3, 2)
    }
    .validate()
    .is_ok());
    assert!(err(Pool2dParams {
        pad: [0, 1],
        ..single(3, 3, 1)
    })
    .starts_with("pad must be at most"));
    // Kernel 3 on 2 rows, no pad: (2 - 3) / 2 + 1 = 0 (PyTorch rounds -1/2 down to -1).
    assert_eq!(
        err(Pool2dParams {
            h: 2,
            pad: [0, 0],
            ..p
        }),
        "output size 0x2 is too small: input 2x5, kernel [3, 3], stride [2, 2], pad [0, 0], \
         dilation [1, 1], ceil_mode false"
    );
    assert!(err(Pool2dParams {
        dilation: [usize::MAX, 1],
        ..p
    })
    .starts_with("output size -"));
}

/// Max and avg pool by brute force: every tap of every window, signed indices, a branch
/// per tap, the avg divisor counted tap by tap.
fn brute(p: &Pool2dParams, x: &[f32], max: bool) -> Vec<f32> {
    let (oh, ow) = p.output_hw();
    let mut y = Vec::new();
    for plane in x.chunks(p.h * p.w) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut m, mut sum, mut inside, mut padded) = (f32::NEG_INFINITY, 0.0f64, 0, 0);
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let iy =
                            (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
                        let ix =
                            (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
                        // avg's window stops at the far padding edge.
                        if iy < (p.h + p.pad[0]) as isize && ix < (p.w + p.pad[1]) as isize {
                            padded += 1;
                        }
                        if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                            let v = plane[iy as usize * p.w + ix as usize];
                            m = if v > m || v.is_nan() { v } else { m };
                            sum += f64::from(v);
                            inside += 1;
                        }
                    }
                }
                let divisor = if p.count_include_pad { padded } else { inside };
                y.push(if max {
                    m
                } else if inside == 0 {
                    0.0
                } else {
                    (sum / divisor as f64) as f32
                });
            }
        }
    }
    y
}

#[test]
fn matches_brute_force_over_a_seeded_sweep() {
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for _ in 0..3000 {
        let kernel = [rng.range(1, 4), rng.range(1, 4)];
        let p = Pool2dParams {
            n: rng.range(1, 2),
            c: rng.range(1, 3),
            h: rng.range(1, 9),
            w: rng.range(1, 9),
            kernel,
            stride: [rng.range(1, 3), rng.range(1, 3)],
            pad: [rng.range(0, kernel[0] / 2), rng.range(0, kernel[1] / 2)],
            dilation: [rng.range(1, 2), rng.range(1, 2)],
            ceil_mode: rng.range(0, 1) == 1,
            count_include_pad: rng.range(0, 1) == 1,
        };
        if p.validate().is_err() {
            continue;
        }
        checked += 1;
        let x = rng.vec(p.n * p.c * p.h * p.w);
        assert_eq!(run(max_pool2d, &p, &x), brute(&p, &x, true), "{p:?}");
        if p.dilation == [1, 1] {
            // Both sum the same taps in f64 in the same order.
            let (got, want) = (run(avg_pool2d, &p, &x), brute(&p, &x, false));
            assert_close(
                &got,
                &want,
                Tol::each(0.0, 0.0),
                "avg_pool2d against brute force",
            );
        }
    }
    assert!(checked > 1500, "only {checked} valid shapes");
}
