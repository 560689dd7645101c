//! conv2d with an input scale: conv(x · s), s: (n, c_in), squeeze-excite's gate read by
//! the block's projection conv (`CpuConv::run_scaled`, `cuda::conv2d_in_scaled`), on
//! every backend (`testing::everywhere`) against `reference::conv2d_scaled`. The shapes
//! reach every CPU path a 1×1 conv takes: the pointwise GEMM (B packed scaled, SIMD tails
//! in c_in and in the pixels), the GEMV (1×1 planes) and the direct kernel (c_in ≤ 4); on
//! CUDA the implicit GEMM in every precision, tile and split. Inputs are x, then the
//! residual (if any), then the scale: the order of the CUDA op's inputs.

use super::backend_tests::{case_scaled, configs, epilogues, mixed_by, params, Epilogue};
use super::cpu::CpuConv;
use super::cuda::{conv2d_in_scaled, conv2d_with, Gemm};
use super::Conv2dParams;
use crate::activation::backend_tests::ACTS;
use crate::cuda::Arg;
use crate::testing::everywhere::{check, Case};
use crate::{Activation, Isa, Precision};

/// 1×1, stride 1, no padding, one group: the convs that take a scale.
fn pointwise(n: usize, c_in: usize, c_out: usize, hw: [usize; 2]) -> Conv2dParams {
    params(n, [c_in, c_out], hw, [1, 1], [1, 1], [0, 0], [1, 1], 1)
}

/// Values written over a random tensor: (index, value).
type Poison<'a> = &'a [(usize, f32)];

/// `backend_tests::case_scaled`: x, weight, bias, residual and a scale in [-2, 2), one
/// per image and channel (`x_at` and `s_at` written over x and the scale); on CUDA with
/// `gemm` (None: the CPU only).
fn case(p: &Conv2dParams, e: Epilogue, gemm: Option<Gemm>, at: [Poison<'_>; 2], seed: u64) -> Case {
    case_scaled(p, e, gemm, at[0], Some(at[1]), seed)
}

/// One case per shape, each with the next epilogue and GEMM configuration in turn.
fn mixed(shapes: &[Conv2dParams], seed: u64) -> Vec<Case> {
    mixed_by(shapes, seed, |p, e, gemm, seed| {
        case(p, e, Some(gemm), [&[], &[]], seed)
    })
}

#[test]
fn every_cpu_path_and_channel_tail() {
    let shapes = [
        // The direct kernel (c_in ≤ 4), on planes and on 1×1.
        pointwise(1, 1, 5, [7, 7]),
        pointwise(3, 3, 17, [13, 9]),
        pointwise(1, 1, 3, [1, 1]),
        // The pointwise GEMM: c_in and pixels off every SIMD width, batch 3.
        pointwise(3, 7, 9, [13, 9]),
        pointwise(1, 17, 3, [56, 56]),
        pointwise(3, 33, 17, [7, 7]),
        pointwise(1, 144, 24, [13, 9]),
        pointwise(3, 17, 8, [7, 7]),
        // The GEMV: 1×1 planes (c_in 144 is MobileNetV3's 144→40 projection's).
        pointwise(3, 144, 40, [1, 1]),
        pointwise(3, 33, 65, [1, 1]),
    ];
    check("conv2d in_scale", &mixed(&shapes, 700));
}

#[test]
fn every_epilogue() {
    let p = pointwise(3, 17, 5, [9, 13]);
    let mut cases = Vec::new();
    for e in epilogues() {
        let gemm = configs()[cases.len() % 9];
        cases.push(case(&p, e, Some(gemm), [&[], &[]], 800));
    }
    check("conv2d in_scale", &cases);
}

#[test]
fn full_size_planes_on_the_cpu() {
    // EfficientNet-B0's early projection (144→24 on 56×56: m·k small, k·n large) and a
    // batch of 3, several nc-blocks and k-blocks each; too large for the emulator.
    let e = Epilogue {
        bias: true,
        residual: true,
        act: Activation::None,
    };
    let cases = [
        case(&pointwise(1, 144, 24, [56, 56]), e, None, [&[], &[]], 850),
        case(&pointwise(3, 300, 17, [28, 28]), e, None, [&[], &[]], 851),
    ];
    check("conv2d in_scale", &cases);
}

#[test]
fn scales_0_1_nan_and_inf_act_as_x_times_s() {
    // Image 0: channel 0 scaled by 0, where x holds +inf at pixel 0 and NaN at pixel 1
    // (0 · inf and NaN · 0 are NaN: only those pixels are NaN), the last channel by 1.
    // Image 1: channel 1 by NaN (all NaN). Image 2: channel 1 by +inf, channel 2 by -inf
    // (each output ±inf, or NaN where both signs meet).
    let shapes = [
        pointwise(3, 7, 9, [13, 9]),
        pointwise(3, 3, 8, [7, 7]),
        pointwise(3, 33, 17, [1, 1]),
        pointwise(3, 17, 65, [2, 3]),
    ];
    let mut cases = Vec::new();
    for (i, p) in shapes.iter().enumerate() {
        let (c, plane) = (p.c_in, p.h * p.w);
        let x_at = [(0, f32::INFINITY), (1 % plane, f32::NAN)];
        let s_at = [
            (0, 0.0),
            (c - 1, 1.0),
            (c + 1, f32::NAN),
            (2 * c + 1, f32::INFINITY),
            (2 * c + 2, f32::NEG_INFINITY),
        ];
        for act in ACTS {
            let e = Epilogue {
                bias: true,
                residual: i % 2 == 1,
                act,
            };
            let gemm = configs()[cases.len() % 9];
            cases.push(case(p, e, Some(gemm), [&x_at, &s_at], 900 + i as u64));
        }
        // The cases hold what they claim, before the activation: image 0 finite but for
        // its first two pixels, image 1 NaN, image 2 infinite or NaN.
        let raw = &cases[cases.len() - 3].expected;
        let per_image = raw.len() / 3;
        let [img0, img1, img2] = [0, 1, 2].map(|i| &raw[i * per_image..][..per_image]);
        for (j, v) in img0.iter().enumerate() {
            assert_eq!(v.is_nan(), j % plane < 2, "{i}: image 0 at {j}: {v}");
        }
        assert!(img1.iter().all(|v| v.is_nan()));
        assert!(img2.iter().all(|v| !v.is_finite()));
        assert!(img2.contains(&f32::INFINITY) || img2.contains(&f32::NEG_INFINITY));
    }
    check("conv2d in_scale", &cases);
}

#[test]
fn the_scale_is_the_input_after_x_and_the_residual() {
    let p = pointwise(1, 8, 8, [4, 4]);
    let w = vec![0.5; 64];
    for residual in [false, true] {
        let op = conv2d_in_scaled(
            &p,
            &w,
            Some(&[0.0; 8]),
            residual,
            Activation::Relu,
            Precision::Fp32,
        );
        let args = &op.unwrap().launches[0].args;
        let r = residual as usize;
        let mut want = vec![Arg::Input(0), Arg::Const(0), Arg::Const(1)];
        want.extend((1..1 + r).map(Arg::Input));
        want.extend([Arg::Input(1 + r), Arg::Output]);
        assert_eq!(*args, want, "residual {residual}");
        // With the max pool too, y's role comes after them.
        let gemm = Gemm::small(Precision::Fp32)
            .with_in_scale()
            .with_max_pool2();
        let op = conv2d_with(&p, &w, None, residual, Activation::None, gemm).unwrap();
        let args = &op.launches[0].args;
        assert_eq!(
            args[args.len() - 3..],
            [Arg::Input(1 + r), Arg::Input(2 + r), Arg::Output]
        );
    }
    // A 1-channel input is the implicit GEMM's, not the depthwise kernel's.
    let one = pointwise(1, 1, 4, [4, 4]);
    let op = conv2d_in_scaled(
        &one,
        &[1.0; 4],
        None,
        false,
        Activation::None,
        Precision::Fp32,
    );
    assert_eq!(op.unwrap().launches[0].entry, "conv2d_igemm");
}

#[test]
fn convs_other_than_pointwise_refuse_a_scale() {
    let shapes = [
        params(1, [4, 4], [5, 5], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [4, 4], [5, 5], [1, 1], [2, 2], [0, 0], [1, 1], 1),
        params(1, [4, 4], [5, 5], [1, 1], [1, 1], [1, 1], [1, 1], 1),
        params(1, [4, 4], [5, 5], [1, 1], [1, 1], [0, 0], [1, 1], 2),
    ];
    for p in shapes {
        assert!(!p.in_scale_applies(), "{p:?}");
        let w = vec![1.0; p.weight_shape().iter().product()];
        let err = conv2d_in_scaled(&p, &w, None, false, Activation::None, Precision::Fp32);
        assert!(err.is_err(), "{p:?}");
        let conv = CpuConv::new(&p, &w, None, Isa::Scalar, true);
        let run = std::panic::catch_unwind(|| {
            let [n, c_out, oh, ow] = p.output_shape();
            let mut y = vec![0.0; n * c_out * oh * ow];
            let mut scratch = vec![0.0; conv.scratch_len(1)];
            let x = vec![1.0; n * p.c_in * p.h * p.w];
            let s = vec![1.0; n * p.c_in];
            let act = Activation::None;
            conv.run_scaled(&x, Some(&s), None, act, &mut y, &mut scratch, 1);
        });
        assert!(run.is_err(), "{p:?}");
    }
}
