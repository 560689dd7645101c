//! Every SIMD cpu kernel except depthwise (tests/depthwise_cpu.rs) against its reference,
//! on every ISA this CPU has and threads 1 and 2, over seeded sweeps with SIMD tails.
//!
//! Tolerances: where the kernel adds in another order than the reference (sums in f32
//! vectors, not f64: avg/adaptive pool, mean, linear, batch norm's folded scale/shift),
//! rel 1e-5 of the sum of the terms' magnitudes (the reference run on |inputs|): a sum of
//! n f32 terms is off by up to ~n·2^-24 of that (512 terms: 3e-5, ~1e-6 typical), and a
//! sum that cancels to near 0 keeps its absolute error. Softmax (positive terms only):
//! rel 1e-5 of max |ref|. Where nothing is reordered (max pool, relu, relu6, add) the
//! result must be bit-identical.

use kestrel_kernels::activation::{cpu as act_cpu, reference as act_ref};
use kestrel_kernels::adaptive_avg_pool2d::{self as adaptive, AdaptiveAvgPool2dParams};
use kestrel_kernels::batch_norm::{self, BatchNormParams};
use kestrel_kernels::linear::{cpu::LinearCpu, reference::linear, LinearParams};
use kestrel_kernels::mean::{self, MeanParams};
use kestrel_kernels::pool2d::{self, Pool2dParams};
use kestrel_kernels::softmax::{self, SoftmaxParams};
use kestrel_kernels::testing::{assert_close, Rng, Tol};
use kestrel_kernels::{add, Activation, Isa};

/// Sums in another order than the reference's: rel 1e-5 of max |finite ref| (module doc).
const REL: Tol = Tol::max(1e-5, 0.0);

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];
const LENS: [usize; 17] = [
    1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 1000,
];

/// Uniform values in [-4, 4), with a few NaN/±inf when `specials` (1 in 97 each).
fn values(rng: &mut Rng, len: usize, specials: bool) -> Vec<f32> {
    (0..len)
        .map(|_| match rng.next_u64() % 97 {
            0 if specials => f32::NAN,
            1 if specials => f32::INFINITY,
            2 if specials => f32::NEG_INFINITY,
            _ => rng.f32() * 4.0,
        })
        .collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|v| v.abs()).collect()
}

fn reference_act(act: Activation, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    match act {
        Activation::None => {}
        Activation::Relu => act_ref::relu(x, &mut y),
        Activation::Relu6 => act_ref::relu6(x, &mut y),
    }
    y
}

#[test]
fn activation_and_add_are_exact() {
    let mut rng = Rng::new(1);
    for len in LENS {
        let (a, b) = (values(&mut rng, len, true), values(&mut rng, len, true));
        let mut x = a.clone();
        x.iter_mut()
            .take(3)
            .zip([-0.0, 0.0, 6.0])
            .for_each(|(v, s)| *v = s);
        let mut sum = vec![0.0; len];
        add::reference::add(&a, &b, &mut sum);
        for isa in Isa::available() {
            for act in ACTS {
                let what = format!("len {len} {act:?} {isa}");
                let want = reference_act(act, &x);
                let mut y = vec![0.0; len];
                act_cpu::activate(isa, act, &x, &mut y);
                assert_close(&y, &want, Tol::BITS, &format!("activate {what}"));
                let mut y = x.clone();
                act_cpu::activate_in_place(isa, act, &mut y);
                assert_close(&y, &want, Tol::BITS, &format!("activate_in_place {what}"));
                let mut y = vec![0.0; len];
                add::cpu::add(isa, &a, &b, act, &mut y);
                let want = reference_act(act, &sum);
                assert_close(&y, &want, Tol::BITS, &format!("add {what}"));
            }
        }
    }
}

/// Every pool attribute combination that validates, on odd and tail-sized inputs.
fn pool_cases() -> Vec<Pool2dParams> {
    let mut rng = Rng::new(2);
    let mut cases = Vec::new();
    for k in 1..=4 {
        for s in 1..=3 {
            for pad in 0..=2 {
                for d in 1..=2 {
                    for ceil_mode in [false, true] {
                        for count_include_pad in [false, true] {
                            let p = Pool2dParams {
                                n: rng.pick(&[1, 2]),
                                c: rng.pick(&[1, 3]),
                                h: rng.pick(&[1, 4, 5, 7, 9]),
                                w: rng.pick(&[1, 5, 8, 9, 16, 17, 33, 40]),
                                kernel: [k, rng.pick(&[k, 1, 3])],
                                stride: [s, rng.pick(&[s, 1, 2])],
                                pad: [pad, rng.pick(&[0, pad])],
                                dilation: [d, d],
                                ceil_mode,
                                count_include_pad,
                            };
                            if p.validate().is_ok() {
                                cases.push(p);
                            }
                        }
                    }
                }
            }
        }
    }
    // ResNet's stem pool on a tail-sized width.
    cases.push(Pool2dParams {
        n: 1,
        c: 2,
        h: 24,
        w: 37,
        kernel: [3, 3],
        stride: [2, 2],
        pad: [1, 1],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    });
    // Rows too wide for max pool's separable row buffer (2048 floats): the direct path.
    cases.push(Pool2dParams {
        n: 1,
        c: 2,
        h: 5,
        w: 2100,
        kernel: [3, 2],
        stride: [2, 3],
        pad: [1, 1],
        dilation: [1, 1],
        ceil_mode: true,
        count_include_pad: false,
    });
    cases
}

#[test]
fn pools_match_reference() {
    let mut rng = Rng::new(3);
    for p in pool_cases() {
        let x = values(&mut rng, p.n * p.c * p.h * p.w, true);
        let len: usize = p.output_shape().iter().product();
        let mut want_max = vec![0.0; len];
        pool2d::reference::max_pool2d(&p, &x, &mut want_max);
        let (mut want_avg, mut mag) = (vec![0.0; len], vec![0.0; len]);
        let avg_ok = p.dilation == [1, 1];
        if avg_ok {
            pool2d::reference::avg_pool2d(&p, &x, &mut want_avg);
            pool2d::reference::avg_pool2d(&p, &abs(&x), &mut mag);
        }
        for isa in Isa::available() {
            for threads in [1, 2] {
                let what = format!("{p:?} {isa} threads {threads}");
                let mut y = vec![7.0; len];
                pool2d::cpu::max_pool2d(isa, &p, &x, &mut y, threads);
                assert_close(&y, &want_max, Tol::BITS, &format!("max_pool2d {what}"));
                if avg_ok {
                    let mut y = vec![7.0; len];
                    pool2d::cpu::avg_pool2d(isa, &p, &x, &mut y, threads);
                    assert_close(
                        &y,
                        &want_avg,
                        Tol::given(1e-5, &mag),
                        &format!("avg_pool2d {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn max_pool_nan_in_window_is_nan() {
    let p = Pool2dParams {
        n: 1,
        c: 1,
        h: 3,
        w: 40,
        kernel: [3, 3],
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let mut x = vec![1.0; 3 * 40];
    x[40 + 20] = f32::NAN;
    x[40 + 21] = 5.0; // after the NaN in scan order: must not replace it
    x[0] = 9.0;
    for isa in Isa::available() {
        let mut y = vec![0.0; 3 * 40];
        pool2d::cpu::max_pool2d(isa, &p, &x, &mut y, 1);
        for row in 0..3 {
            for col in 0..40 {
                let v = y[row * 40 + col];
                assert_eq!(
                    v.is_nan(),
                    (19..=21).contains(&col),
                    "{isa} ({row}, {col}): {v}"
                );
            }
        }
    }
}

#[test]
fn adaptive_pool_and_mean_match_reference() {
    let mut rng = Rng::new(4);
    for _ in 0..80 {
        let (h, w) = (
            rng.pick(&[1, 3, 7, 8, 9, 17]),
            rng.pick(&[1, 5, 7, 16, 17, 33, 65]),
        );
        let p = AdaptiveAvgPool2dParams {
            n: rng.pick(&[1, 2]),
            c: rng.pick(&[1, 3, 17]),
            h,
            w,
            out: [
                rng.pick(&[1, 2, 3, h, h + 2]),
                rng.pick(&[1, 2, 5, w, w + 3]),
            ],
        };
        let x = values(&mut rng, p.n * p.c * h * w, false);
        let mut want = vec![0.0; p.output_shape().iter().product()];
        adaptive::reference::adaptive_avg_pool2d(&p, &x, &mut want);
        let mut mag = vec![0.0; want.len()];
        adaptive::reference::adaptive_avg_pool2d(&p, &abs(&x), &mut mag);
        let m = MeanParams {
            n: p.n,
            c: p.c,
            h,
            w,
        };
        let mut want_mean = vec![0.0; p.n * p.c];
        mean::reference::mean_hw(&m, &x, &mut want_mean);
        let mut mag_mean = vec![0.0; p.n * p.c];
        mean::reference::mean_hw(&m, &abs(&x), &mut mag_mean);
        for isa in Isa::available() {
            for threads in [1, 2] {
                let mut y = vec![0.0; want.len()];
                adaptive::cpu::adaptive_avg_pool2d(isa, &p, &x, &mut y, threads);
                assert_close(
                    &y,
                    &want,
                    Tol::given(1e-5, &mag),
                    &format!("adaptive {p:?} {isa} t{threads}"),
                );
                let mut y = vec![0.0; want_mean.len()];
                mean::cpu::mean_hw(isa, &m, &x, &mut y, threads);
                assert_close(
                    &y,
                    &want_mean,
                    Tol::given(1e-5, &mag_mean),
                    &format!("mean {m:?} {isa} t{threads}"),
                );
            }
        }
    }
    // Big enough to be split over two threads, with NaN and inf.
    let m = MeanParams {
        n: 1,
        c: 2048,
        h: 7,
        w: 7,
    };
    let x = values(&mut rng, 2048 * 49, true);
    let (mut want, mut mag) = (vec![0.0; 2048], vec![0.0; 2048]);
    mean::reference::mean_hw(&m, &x, &mut want);
    mean::reference::mean_hw(&m, &abs(&x), &mut mag);
    for isa in Isa::available() {
        let mut y = vec![0.0; 2048];
        mean::cpu::mean_hw(isa, &m, &x, &mut y, 2);
        assert_close(
            &y,
            &want,
            Tol::given(1e-5, &mag),
            &format!("mean 2048 {isa}"),
        );
    }
}

#[test]
fn softmax_matches_reference() {
    let mut rng = Rng::new(5);
    let mut cases: Vec<SoftmaxParams> = LENS
        .iter()
        .map(|&axis| SoftmaxParams {
            outer: 2,
            axis,
            inner: 1,
        })
        .collect();
    for inner in [2, 7, 8, 9, 16, 17, 33] {
        cases.push(SoftmaxParams {
            outer: 2,
            axis: rng.pick(&[1, 3, 10]),
            inner,
        });
    }
    for p in cases {
        let len = p.outer * p.axis * p.inner;
        for specials in [false, true] {
            let x: Vec<f32> = values(&mut rng, len, specials)
                .iter()
                .map(|v| v * 5.0)
                .collect();
            let mut want = vec![0.0; len];
            softmax::reference::softmax(&p, &x, &mut want);
            for isa in Isa::available() {
                let mut y = vec![0.0; len];
                softmax::cpu::softmax(isa, &p, &x, &mut y);
                assert_close(&y, &want, REL, &format!("softmax {p:?} {isa}"));
            }
        }
    }
    // All -inf is NaN, one +inf is NaN, a large spread does not overflow.
    let p = SoftmaxParams {
        outer: 3,
        axis: 20,
        inner: 1,
    };
    let mut x = vec![f32::NEG_INFINITY; 60];
    x[25] = f32::INFINITY;
    (40..60).for_each(|i| x[i] = i as f32 * 30.0 - 1500.0);
    let mut want = vec![0.0; 60];
    softmax::reference::softmax(&p, &x, &mut want);
    for isa in Isa::available() {
        let mut y = vec![0.0; 60];
        softmax::cpu::softmax(isa, &p, &x, &mut y);
        assert_close(&y, &want, REL, &format!("softmax specials {isa}"));
    }
}

#[test]
fn batch_norm_scale_shift_matches_reference() {
    let mut rng = Rng::new(6);
    for spatial in [1, 7, 8, 9, 16, 17, 49, 65] {
        let p = BatchNormParams {
            n: 2,
            c: rng.pick(&[1, 3, 17, 33]),
            spatial,
            eps: 1e-5,
        };
        let x = values(&mut rng, p.n * p.c * spatial, false);
        let (w, b, m) = (
            values(&mut rng, p.c, false),
            values(&mut rng, p.c, false),
            values(&mut rng, p.c, false),
        );
        let var: Vec<f32> = values(&mut rng, p.c, false)
            .iter()
            .map(|v| v.abs() + 0.1)
            .collect();
        let (scale, shift) = batch_norm::scale_shift(Some(&w), Some(&b), &m, &var, p.eps);
        let mut bn = vec![0.0; x.len()];
        batch_norm::reference::batch_norm(&p, &x, Some(&w), Some(&b), &m, &var, &mut bn);
        // |x*scale| + |shift|, the two terms of the fold.
        let ch = |i: usize| i / spatial % p.c;
        let mag: Vec<f32> = (0..x.len())
            .map(|i| (x[i] * scale[ch(i)]).abs() + shift[ch(i)].abs())
            .collect();
        for act in ACTS {
            let want = reference_act(act, &bn);
            for isa in Isa::available() {
                let mut y = vec![0.0; x.len()];
                batch_norm::cpu::scale_shift(isa, &p, &scale, &shift, act, &x, &mut y);
                assert_close(
                    &y,
                    &want,
                    Tol::given(1e-5, &mag),
                    &format!("batch norm {p:?} {act:?} {isa}"),
                );
            }
        }
    }
}

#[test]
fn linear_matches_reference() {
    let mut rng = Rng::new(7);
    for _ in 0..40 {
        let p = LinearParams {
            rows: rng.pick(&[1, 2, 3, 4, 5, 9]),
            in_features: rng.pick(&[1, 3, 8, 17, 64, 65, 512]),
            out_features: rng.pick(&[1, 7, 8, 9, 15, 16, 17, 33, 100]),
        };
        let x = values(&mut rng, p.rows * p.in_features, false);
        let w = values(&mut rng, p.out_features * p.in_features, false);
        let b = values(&mut rng, p.out_features, false);
        for bias in [None, Some(&b[..])] {
            let mut plain = vec![0.0; p.rows * p.out_features];
            linear(&p, &x, &w, bias, &mut plain);
            let mut mag = vec![0.0; plain.len()];
            linear(&p, &abs(&x), &abs(&w), bias.map(abs).as_deref(), &mut mag);
            for isa in Isa::available() {
                let lin = LinearCpu::new(&p, &w, bias, isa);
                for (act, threads) in [(ACTS[0], 1), (ACTS[1], 2), (ACTS[2], 2)] {
                    let mut y = vec![f32::NAN; plain.len()];
                    lin.run(&x, act, &mut y, threads);
                    let what = format!(
                        "linear {p:?} bias {} {act:?} {isa} t{threads}",
                        bias.is_some()
                    );
                    assert_close(
                        &y,
                        &reference_act(act, &plain),
                        Tol::given(1e-5, &mag),
                        &what,
                    );
                }
            }
        }
    }
}
