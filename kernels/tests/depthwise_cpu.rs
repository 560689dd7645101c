//! `DepthwiseCpu`'s own paths against conv2d's reference on every ISA this CPU has,
//! threads 1 and 2: the 3×3 planes at every small size and MobileNetV2's full-size layers.
//! Its sweep over attributes, odd shapes and NaN/inf runs on every backend with the other
//! conv cases (kernels/src/conv2d/backend_tests.rs).
//!
//! Tolerance: the reference sums in f64, the kernel in f32 FMAs in tap order, so each output
//! carries a few f32 roundings of its largest partial sum: rel 1e-5 of max |ref| (over the
//! plane's outputs), not of each output, since a sum can cancel to near zero.

use kestrel_kernels::conv2d::{depthwise::DepthwiseCpu, reference::conv2d, Conv2dParams};
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

/// Runs one case on every ISA and thread count, with and without residual, every activation.
fn check(p: &Conv2dParams, rng: &mut Rng, with_bias: bool) {
    p.validate().unwrap();
    let len_y: usize = p.output_shape().iter().product();
    let x = rng.vec(p.n * p.c_in * p.h * p.w);
    let w = rng.vec(p.c_in * p.kh * p.kw);
    let b = rng.vec(p.c_in);
    let b = with_bias.then_some(&b[..]);
    let r = rng.vec(len_y);
    for isa in Isa::available() {
        let dw = DepthwiseCpu::new(p, &w, b, isa).expect("depthwise");
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
                    "{p:?} bias {with_bias} residual {} {act:?} {isa} threads {threads}",
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

/// The 3×3 stride 1 / 2 path (padded scratch planes, weights in registers): every size
/// 1..=17 on both axes crosses the 8- and 16-lane tails and the one-row / one-column planes
/// whose outputs are all border; pads 0..=2, batch 1 and 2, channels batched per task.
#[test]
fn three_by_three_s1_s2_sizes() {
    let mut rng = Rng::new(0x33);
    for s in 1..=2 {
        for pad in 0..=2 {
            for h in 1..=17usize {
                for w in 1..=17 {
                    // Every (h, w) at pad 1 (MobileNetV2's), a diagonal band at the others.
                    if pad != 1 && h.abs_diff(w) > 1 {
                        continue;
                    }
                    let mut p = depthwise(rng.pick(&[1, 3, 5]), h, w, 3, s, pad, 1);
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

/// Scratch for `dw` on `threads` threads, filled with NaN so that a kernel relying on its
/// contents (rather than writing what it reads) fails.
fn scratch(dw: &DepthwiseCpu, threads: usize) -> Vec<f32> {
    vec![f32::NAN; dw.scratch_len(threads)]
}
