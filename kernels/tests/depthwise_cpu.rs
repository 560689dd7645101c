//! `DepthwiseCpu`'s paths (each that can compute a shape, not only the one `new` picks)
//! against conv2d's reference on every ISA this CPU has, threads 1 and 2: 3×3 and 5×5
//! planes at every small size and the full-size layers of MobileNetV2, MobileNetV3-Large
//! and EfficientNet-B0.
//! Its sweep over attributes, odd shapes and NaN/inf runs on every backend with the other
//! conv cases (kernels/src/conv2d/backend_tests.rs).
//!
//! Tolerance: the reference sums in f64, the kernel in f32 FMAs in tap order, so each output
//! carries a few f32 roundings of its largest partial sum: rel 1e-5 of max |ref| (over the
//! plane's outputs), not of each output, since a sum can cancel to near zero.

use kestrel_kernels::conv2d::cpu::depthwise::{DepthwiseCpu, DepthwisePath};
use kestrel_kernels::conv2d::{reference::conv2d, Conv2dParams};
use kestrel_kernels::testing::{assert_close, Rng, Tol};
use kestrel_kernels::{Activation, Isa};

/// Summation order differs from the reference's: rel 1e-5 of max |ref| (module doc).
const REL: Tol = Tol::max(1e-5, 0.0);

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

fn depthwise(
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    pad: usize,
    d: usize,
) -> Conv2dParams {
    Conv2dParams {
        n: 1,
        c_in: c,
        h,
        w,
        c_out: c,
        kh: k,
        kw: k,
        stride: [s, s],
        pad: [pad, pad],
        dilation: [d, d],
        groups: c,
    }
}

/// act(reference conv + residual), the f32 add and act done as the epilogue defines them.
fn expected(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    r: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let mut y = vec![0.0; p.output_shape().iter().product()];
    conv2d(p, x, w, b, &mut y);
    if let Some(r) = r {
        y.iter_mut().zip(r).for_each(|(y, r)| *y += r);
    }
    y.iter_mut().for_each(|y| *y = act.apply(*y));
    y
}

/// Runs one case on every ISA, path and thread count, with and without residual, with
/// several activations.
fn check(p: &Conv2dParams, rng: &mut Rng, with_bias: bool) {
    p.validate().unwrap();
    let len_y: usize = p.output_shape().iter().product();
    let x = rng.vec(p.n * p.c_in * p.h * p.w);
    let w = rng.vec(p.c_in * p.kh * p.kw);
    let b = rng.vec(p.c_in);
    let b = with_bias.then_some(&b[..]);
    let r = rng.vec(len_y);
    let paths = [
        DepthwisePath::Blocked,
        DepthwisePath::Padded,
        DepthwisePath::Strided,
    ];
    for (isa, path) in Isa::available()
        .into_iter()
        .flat_map(|i| paths.map(|p| (i, p)))
    {
        let dw = DepthwiseCpu::new(p, &w, b, isa).expect("depthwise");
        // Every path that can compute p, not only the one `new` picks.
        let Some(dw) = dw.with_path(path) else {
            continue;
        };
        for (residual, act) in [
            (None, ACTS[0]),
            (Some(&r[..]), ACTS[1]),
            (None, ACTS[2]),
            (Some(&r[..]), ACTS[0]),
        ] {
            let want = expected(p, &x, &w, b, residual, act);
            for threads in [1, 2] {
                let mut y = vec![f32::NAN; len_y];
                dw.run(
                    &x,
                    residual,
                    act,
                    &mut y,
                    &mut scratch(&dw, threads),
                    threads,
                );
                let what = format!(
                    "{p:?} bias {with_bias} residual {} {act:?} {isa} {path:?} threads {threads}",
                    residual.is_some()
                );
                assert_close(&y, &want, REL, &what);
            }
        }
    }
}

#[test]
fn rejects_non_depthwise() {
    let p = Conv2dParams {
        groups: 1,
        ..depthwise(4, 5, 5, 3, 1, 1, 1)
    };
    assert!(DepthwiseCpu::new(&p, &[0.0; 4 * 4 * 9], None, Isa::Scalar).is_none());
    let p = Conv2dParams {
        c_out: 8,
        ..depthwise(4, 5, 5, 3, 1, 1, 1)
    };
    assert!(DepthwiseCpu::new(&p, &[0.0; 8 * 9], None, Isa::Scalar).is_none());
}

/// The padded path (`depthwise/padded.rs`) for a k×k kernel at stride 1 / 2: every size
/// 1..=17 on both axes crosses the 8- and 16-lane tails and the one-row / one-column planes
/// whose outputs are all border; pads 0..=k/2 + 1, batch 1 and 2, channels batched per task.
fn padded_sizes(k: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for s in 1..=2 {
        for pad in 0..=k / 2 + 1 {
            for h in 1..=17usize {
                for w in 1..=17 {
                    // Every (h, w) at pad k/2 (the models'), a diagonal band at the others.
                    if pad != k / 2 && h.abs_diff(w) > 1 {
                        continue;
                    }
                    let mut p = depthwise(rng.pick(&[1, 3, 5]), h, w, k, s, pad, 1);
                    p.n = rng.pick(&[1, 2]);
                    if p.validate().is_err() {
                        continue;
                    }
                    check(&p, &mut rng, (h + w + pad) % 2 == 0);
                }
            }
        }
    }
}

#[test]
fn three_by_three_s1_s2_sizes() {
    padded_sizes(3, 0x33);
}

#[test]
fn five_by_five_s1_s2_sizes() {
    padded_sizes(5, 0x55);
}

#[test]
fn mobilenet_v2_shapes() {
    let mut rng = Rng::new(2);
    // (channels, input side, stride): every depthwise layer of MobileNetV2 at 224x224.
    for (c, side, s) in [
        (32, 112, 1),
        (96, 112, 2),
        (144, 56, 1),
        (144, 56, 2),
        (192, 28, 1),
        (192, 28, 2),
        (384, 14, 1),
        (576, 14, 1),
        (576, 14, 2),
        (960, 7, 1),
    ] {
        check(&depthwise(c, side, side, 3, s, 1, 1), &mut rng, true);
    }
}

/// MobileNetV3-Large's and EfficientNet-B0's depthwise layers that MobileNetV2 lacks: every
/// 5×5, and 3×3 on 7×7 with 1152 channels.
#[test]
fn mobilenet_v3_and_efficientnet_shapes() {
    let mut rng = Rng::new(3);
    for (c, side, k, s) in [
        (72, 56, 5, 2),
        (144, 56, 5, 2),
        (120, 28, 5, 1),
        (240, 28, 5, 1),
        (480, 14, 5, 1),
        (672, 14, 5, 2),
        (960, 7, 5, 1),
        (1152, 7, 5, 1),
        (1152, 7, 3, 1),
    ] {
        check(&depthwise(c, side, side, k, s, k / 2, 1), &mut rng, true);
    }
}

/// Scratch for `dw` on `threads` threads, filled with NaN so that a kernel relying on its
/// contents (rather than writing what it reads) fails.
fn scratch(dw: &DepthwiseCpu, threads: usize) -> Vec<f32> {
    vec![f32::NAN; dw.scratch_len(threads)]
}
