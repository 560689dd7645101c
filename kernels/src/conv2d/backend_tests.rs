//! conv2d on every backend (`testing::everywhere`), against the reference loops: on the
//! CPU `CpuConv` (whichever algorithm it picks, as the executor runs it) on every
//! instruction set and 1 and 2 threads; on CUDA `conv2d_igemm`
//! (every precision, tile and split) and `conv2d_dw_f32`.
//! Each test fn stays around 10^4 outputs and 10^7 MACs: the emulator runs one OS thread
//! per CUDA thread. The CPU's own paths (Winograd, the direct first layer, stride-2 phase
//! planes, depthwise 3×3 planes, full-size model layers) are swept in
//! kernels/tests/conv2d_cpu.rs, conv2d_winograd.rs and depthwise_cpu.rs.

use super::cpu::winograd::Tile;
use super::cpu::{ConvAlgorithm, CpuConv};
use super::cuda::{conv2d_with, Gemm};
use super::{reference, Conv2dParams};
use crate::activation::backend_tests::{ACTS, ALL_ACTS};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::{Activation, Isa, Precision};

/// Max |y - reference| over max |y|, per precision.
pub(super) fn rtol(precision: Precision) -> f64 {
    match precision {
        // Each output is one f32 sum of K = (c_in/groups)·kh·kw products (K ≤ 1170
        // here), in an order the reference (f64) does not share.
        Precision::Fp32 => 1e-5,
        // Both operands rounded to 11 significant bits: each product off by up to
        // 2^-10 ≈ 1e-3 of itself, the errors of a sum's terms of random sign partly
        // cancelling.
        // Measured on these cases: up to 3.4e-4 (tf32) and 6.6e-4 (fp16).
        Precision::Tf32 | Precision::Fp16 => 2e-3,
    }
}

/// The CPU's tolerance for `p`: rel 1e-5 of the largest pre-activation sum (relu6 clips
/// sums of ~50 to 6, and the error scales with the sums), or 1e-4 where `CpuConv` picks
/// Winograd F(4×4, 3×3) (its transforms amplify roundings; see
/// kernels/tests/conv2d_case/mod.rs).
pub(super) fn cpu_allow(p: &Conv2dParams, pre_act: &[f32]) -> Allow {
    let winograd = ConvAlgorithm::choose(p, false) == ConvAlgorithm::Winograd(Tile::F4x4);
    let rel = if winograd { 1e-4 } else { 1e-5 };
    // As an absolute bound: max |expected| is the clipped one.
    Allow::Max(0.0, rel * max_abs(pre_act))
}

/// The largest finite |v|.
pub(super) fn max_abs(v: &[f32]) -> f64 {
    v.iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()))
}

/// Runs `p` on the CPU as the executor does, through `CpuConv::new`; inputs x then (with
/// `residual`) the residual, then (with `scaled`) the input scale. NaN scratch catches a
/// kernel that reads scratch before it writes it.
fn cpu_conv(
    p: Conv2dParams,
    w: Vec<f32>,
    bias: Option<Vec<f32>>,
    [residual, scaled]: [bool; 2],
    act: Activation,
) -> impl Fn(Isa, usize, &[&[f32]], &mut [f32]) {
    move |isa, threads, x, y| {
        let res = residual.then(|| x[1]);
        let conv = CpuConv::new(&p, &w, bias.as_deref(), isa, scaled);
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let s = scaled.then(|| x[1 + residual as usize]);
        conv.run_scaled(x[0], s, res, act, y, &mut scratch, threads);
    }
}

/// The GEMM configurations the sweeps cycle through, so that every shape family meets
/// every precision, every tile, and split-K (forced here even where the rule would not
/// split, including splits left with no K slab at all).
pub(super) fn configs() -> [Gemm; 9] {
    [
        Gemm::large(Precision::Fp32),
        Gemm::small(Precision::Tf32),
        Gemm::huge(Precision::Fp16),
        Gemm::small(Precision::Fp32).with_splits(2),
        Gemm::large(Precision::Tf32).with_splits(3),
        Gemm::small(Precision::Fp16).with_splits(2),
        Gemm::huge(Precision::Fp32),
        Gemm::huge(Precision::Tf32),
        Gemm::large(Precision::Fp16),
    ]
}

/// x: (n, c[0], hw[0], hw[1])  w: (c[1], c[0]/groups, k[0], k[1]); per-axis attributes
/// as [along h, along w].
#[allow(clippy::too_many_arguments)]
pub(super) fn params(
    n: usize,
    c: [usize; 2],
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dParams {
    let p = Conv2dParams {
        n,
        c_in: c[0],
        h: hw[0],
        w: hw[1],
        c_out: c[1],
        kh: k[0],
        kw: k[1],
        stride,
        pad,
        dilation,
        groups,
    };
    p.validate().unwrap();
    p
}

/// What is fused into one conv besides the conv itself.
#[derive(Clone, Copy)]
pub(super) struct Epilogue {
    pub(super) bias: bool,
    pub(super) residual: bool,
    pub(super) act: Activation,
}

/// Every epilogue: with and without bias and residual, each activation of `ACTS`.
pub(super) fn epilogues() -> impl Iterator<Item = Epilogue> {
    let flags = [false, true].into_iter();
    flags.clone().flat_map(move |bias| {
        flags.clone().flat_map(move |residual| {
            ACTS.into_iter().map(move |act| Epilogue {
                bias,
                residual,
                act,
            })
        })
    })
}

const PLAIN: Epilogue = Epilogue {
    bias: true,
    residual: false,
    act: Activation::None,
};

/// Random x, weight, bias and residual (x with `poison` written over it: (index, value)),
/// and the reference's answer, act(conv(x) + bias + residual).
fn case(p: &Conv2dParams, e: Epilogue, gemm: Gemm, poison: &[(usize, f32)], seed: u64) -> Case {
    case_scaled(p, e, Some(gemm), poison, None, seed)
}

/// As `case`, and with `scale` a random input scale s (n, c_in) in [-2, 2), a different
/// one per image and channel, `scale`'s (index, value) written over it: the answer is then
/// act(conv(x · s) + bias + residual), s the last input (`in_scale_tests.rs`). On CUDA
/// with `gemm`, if any (None keeps a case too large for the emulator on the CPU).
pub(super) fn case_scaled(
    p: &Conv2dParams,
    e: Epilogue,
    gemm: Option<Gemm>,
    poison: &[(usize, f32)],
    scale: Option<&[(usize, f32)]>,
    seed: u64,
) -> Case {
    let mut rng = Rng::new(seed);
    let [n, c_out, oh, ow] = p.output_shape();
    let mut x = rng.vec(n * p.c_in * p.h * p.w);
    for &(i, v) in poison {
        x[i] = v;
    }
    let w = rng.vec(p.weight_shape().iter().product());
    let bias = e.bias.then(|| rng.vec(c_out));
    let residual = e.residual.then(|| rng.vec(n * c_out * oh * ow));
    let s = scale.map(|at| {
        let mut s: Vec<f32> = rng.vec(n * p.c_in).iter().map(|v| 2.0 * v).collect();
        at.iter().for_each(|&(i, v)| s[i] = v);
        s
    });

    let mut pre_act = vec![0.0; n * c_out * oh * ow];
    reference::conv2d_scaled(p, &x, s.as_deref(), &w, bias.as_deref(), &mut pre_act);
    if let Some(r) = &residual {
        pre_act.iter_mut().zip(r).for_each(|(v, r)| *v += r);
    }
    let expected = pre_act.iter().map(|&v| e.act.apply(v)).collect();

    let gemm = gemm.map(|g| Gemm {
        in_scale: s.is_some(),
        ..g
    });
    let op = gemm.map(|g| conv2d_with(p, &w, bias.as_deref(), e.residual, e.act, g).unwrap());
    let (kernel, rtol) = match (&op, gemm) {
        (Some(op), _) if op.launches[0].entry == "conv2d_dw_f32" => {
            ("dw".to_string(), rtol(Precision::Fp32))
        }
        (_, Some(g)) => {
            let kernel = format!("{} tile{} split{}", g.precision, g.bm, g.splits);
            (kernel, rtol(g.precision))
        }
        (_, None) => ("cpu only".to_string(), rtol(Precision::Fp32)),
    };
    let name = format!(
        "conv2d n{n} c{}x{c_out} {}x{} k{}x{} s{:?} p{:?} d{:?} g{} bias{} res{} {:?}{} {kernel}",
        p.c_in,
        p.h,
        p.w,
        p.kh,
        p.kw,
        p.stride,
        p.pad,
        p.dilation,
        p.groups,
        e.bias as u8,
        e.residual as u8,
        e.act,
        if s.is_some() { " in_scale" } else { "" },
    );
    let cpu_allow = cpu_allow(p, &pre_act);
    // Of the largest sum, not of the largest output: an activation that clips or squashes
    // (relu6, tanh, sigmoid) keeps the sum's rounding where its slope is ~1.
    let cuda_allow = Allow::Max(0.0, rtol * max_abs(&pre_act) + 1e-6);
    let scaled = s.is_some();
    let inputs = [Some(x), residual, s].into_iter().flatten().collect();
    let case = Case::new(name, inputs, expected, cuda_allow)
        .cpu(cpu_conv(*p, w, bias, [e.residual, scaled], e.act))
        .cpu_allow(cpu_allow);
    match op {
        Some(op) => case.cuda(op),
        None => case,
    }
}

/// One case per shape with a bias and no activation, cycling through `configs`.
fn sweep(shapes: &[Conv2dParams]) -> Vec<Case> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, p)| case(p, PLAIN, configs()[i % 9], &[], i as u64 + 1))
        .collect()
}

#[test]
fn kernel_sizes_strides_pads_dilations() {
    let shapes = [
        params(1, [17, 5], [9, 13], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        params(3, [5, 17], [9, 13], [1, 1], [2, 2], [0, 0], [1, 1], 1),
        params(1, [5, 17], [9, 13], [1, 1], [3, 3], [1, 1], [1, 1], 1),
        params(1, [3, 5], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(3, [3, 5], [23, 17], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        params(1, [5, 3], [23, 17], [3, 3], [3, 3], [0, 0], [2, 2], 1),
        params(1, [3, 5], [9, 13], [3, 3], [1, 1], [2, 2], [2, 2], 1),
        params(1, [3, 5], [9, 13], [5, 5], [1, 1], [2, 2], [1, 1], 1),
        params(3, [5, 3], [23, 17], [5, 5], [2, 2], [2, 2], [2, 2], 1),
        params(1, [3, 17], [23, 17], [7, 7], [2, 2], [3, 3], [1, 1], 1),
        params(3, [5, 3], [7, 7], [7, 7], [1, 1], [3, 3], [1, 1], 1),
        params(1, [5, 5], [9, 13], [1, 3], [1, 1], [0, 1], [1, 1], 1),
        params(1, [5, 5], [9, 13], [3, 1], [2, 1], [1, 0], [1, 1], 1),
        params(3, [5, 3], [23, 17], [1, 3], [1, 3], [0, 3], [1, 2], 1),
        params(1, [3, 5], [23, 17], [5, 3], [3, 1], [2, 0], [2, 1], 1),
        // 1×1 outputs: a window exactly the input, and the centre tap of a padded 1×1 input.
        params(3, [5, 17], [3, 3], [3, 3], [1, 1], [0, 0], [1, 1], 1),
        params(1, [17, 5], [1, 1], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(3, [130, 65], [1, 1], [1, 1], [1, 1], [0, 0], [1, 1], 1),
    ];
    check("conv2d", &sweep(&shapes));
}

#[test]
fn channels_off_the_tile() {
    // c_in and c_out in {3, 5, 17, 65, 130}: K and M below, between and above the tiles.
    let shapes = [
        params(1, [3, 130], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [130, 3], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [17, 65], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [65, 17], [9, 13], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        params(1, [130, 130], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(3, [5, 5], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(3, [65, 130], [7, 7], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        params(3, [17, 17], [23, 17], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        params(3, [3, 65], [9, 13], [5, 5], [2, 2], [2, 2], [1, 1], 1),
    ];
    check("conv2d", &sweep(&shapes));
}

#[test]
fn grouped() {
    let shapes = [
        params(1, [4, 6], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 2),
        params(3, [6, 4], [9, 13], [1, 1], [1, 1], [0, 0], [1, 1], 2),
        params(1, [8, 8], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 4),
        params(1, [8, 8], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 4),
        params(3, [12, 20], [23, 17], [3, 3], [2, 2], [1, 1], [1, 1], 4),
        params(1, [4, 6], [23, 17], [5, 5], [1, 1], [2, 2], [2, 2], 2),
        params(1, [130, 130], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1], 2),
        params(1, [68, 20], [7, 7], [3, 3], [2, 2], [1, 1], [1, 1], 4),
    ];
    check("conv2d", &sweep(&shapes));
}

#[test]
fn depthwise_with_multiplier_1_and_2() {
    let mut shapes = Vec::new();
    // (n, c, h×w, k, stride, pad, dilation)
    let layers = [
        (1, 8, [9, 13], [3, 3], [1, 1], [1, 1], [1, 1]),
        (3, 3, [23, 17], [3, 3], [2, 2], [1, 1], [1, 1]),
        (1, 17, [9, 13], [5, 5], [1, 1], [2, 2], [1, 1]),
        (1, 5, [23, 17], [5, 5], [2, 2], [2, 2], [2, 2]),
        (1, 32, [7, 7], [7, 7], [1, 1], [3, 3], [1, 1]),
        (3, 3, [9, 13], [1, 3], [1, 3], [0, 1], [1, 1]),
        (1, 17, [1, 1], [3, 3], [1, 1], [1, 1], [1, 1]),
        (1, 1, [9, 13], [3, 3], [1, 1], [0, 0], [2, 2]),
    ];
    for (n, c, hw, k, s, pad, d) in layers {
        for mult in [1, 2] {
            shapes.push(params(n, [c, c * mult], hw, k, s, pad, d, c));
        }
    }
    check("conv2d", &sweep(&shapes));
}

#[test]
fn fused_bias_residual_and_activations() {
    let gemm = params(3, [17, 5], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 1);
    let dw = params(1, [8, 16], [9, 13], [3, 3], [2, 2], [1, 1], [1, 1], 8);
    let mut cases = Vec::new();
    for (i, p) in [gemm, dw].iter().enumerate() {
        for e in epilogues() {
            let gemm = configs()[cases.len() % 9];
            cases.push(case(p, e, gemm, &[], 100 + i as u64));
        }
    }
    check("conv2d", &cases);
}

#[test]
fn nan_and_inf_propagate() {
    // x(0, 0) is NaN, x(0, 5) -inf, x(1, 6) +inf, all in channel 0: every output that
    // reads a NaN is NaN, one -inf alone gives ±inf (sign of the weight: relu takes
    // -inf to 0), and windows mixing +inf and -inf give NaN, as in PyTorch.
    let poison = [(0, f32::NAN), (5, f32::NEG_INFINITY), (19, f32::INFINITY)];
    let shapes = [
        params(1, [3, 8], [9, 13], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        params(1, [3, 8], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [4, 8], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 4),
        params(1, [4, 4], [9, 13], [3, 3], [1, 1], [1, 1], [1, 1], 4),
    ];
    let mut cases = Vec::new();
    for (i, p) in shapes.iter().enumerate() {
        for act in ACTS {
            let e = Epilogue { act, ..PLAIN };
            let gemm = configs()[cases.len() % 9];
            cases.push(case(p, e, gemm, &poison, 200 + i as u64));
        }
        // The cases really hold all three specials before the activation.
        let raw = &cases[cases.len() - 3].expected;
        assert!(raw.iter().any(|v| v.is_nan()), "{}", cases.len());
        assert!(raw.contains(&f32::INFINITY) && raw.contains(&f32::NEG_INFINITY));
    }
    check("conv2d", &cases);
}

/// 2×2 stride-2 max pool of (n, c, h, w) with no padding, floor mode.
fn pool2(n: usize, c: usize, h: usize, w: usize) -> crate::pool2d::Pool2dParams {
    crate::pool2d::Pool2dParams {
        n,
        c,
        h,
        w,
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    }
}

/// The conv + max pool launch, checked twice through the harness (which compares
/// `Output`): as built, for the pooled values, and with y's role and `Output` exchanged,
/// for the conv's own output.
fn pooled_cases(
    p: &Conv2dParams,
    e: Epilogue,
    gemm: Gemm,
    poison: &[(usize, f32)],
    seed: u64,
) -> [Case; 2] {
    let mut conv = case(p, e, gemm, poison, seed);
    let [n, c_out, oh, ow] = p.output_shape();
    let pool = pool2(n, c_out, oh, ow);
    assert!(super::cuda::can_fuse_max_pool2(p, &pool));
    let mut pooled = vec![0.0; n * c_out * (oh / 2) * (ow / 2)];
    crate::pool2d::reference::max_pool2d(&pool, &conv.expected, &mut pooled);
    // case() built the plain conv with the same weights (same seed): rebuild it pooled.
    let mut rng = Rng::new(seed);
    let _x = rng.vec(n * p.c_in * p.h * p.w);
    let w = rng.vec(p.weight_shape().iter().product());
    let bias = e.bias.then(|| rng.vec(c_out));
    let op = conv2d_with(
        p,
        &w,
        bias.as_deref(),
        e.residual,
        e.act,
        gemm.with_max_pool2(),
    )
    .unwrap();
    let y_role = crate::cuda::Arg::Input(1 + e.residual as usize);
    let mut swapped = op.clone();
    for launch in &mut swapped.launches {
        for arg in &mut launch.args {
            *arg = match *arg {
                crate::cuda::Arg::Output => y_role,
                a if a == y_role => crate::cuda::Arg::Output,
                a => a,
            };
        }
    }
    let y_len = conv.expected.len();
    let mut pooled_case = Case::new(
        format!("{} maxpool2 pooled", conv.name),
        conv.inputs.clone(),
        pooled,
        Allow::Max(rtol(gemm.precision), 1e-6),
    )
    .cuda(op);
    // The written-not-read input: NaN, to show it is not read.
    pooled_case.inputs.push(vec![f32::NAN; y_len]);
    conv.inputs.push(vec![f32::NAN; pooled_case.expected.len()]);
    conv.name = format!("{} maxpool2 y", conv.name);
    conv.op = Some(swapped);
    // The plain conv already ran on the CPU in the other tests; the pool fuses on CUDA only.
    conv.cpu = None;
    [pooled_case, conv]
}

#[test]
fn max_pool_fused_into_the_epilogue() {
    // Even output sizes (square and not, 2×2 up to 32×32), every precision, every tile,
    // split-K, grouped, a residual and every activation, and NaN/inf inputs.
    let shapes = [
        params(1, [3, 32], [32, 32], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(3, [5, 17], [10, 14], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [17, 65], [12, 6], [1, 1], [1, 1], [0, 0], [1, 1], 1),
        params(1, [8, 8], [8, 14], [3, 3], [1, 1], [1, 1], [1, 1], 4),
        params(3, [130, 20], [2, 2], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        params(1, [4, 6], [23, 19], [5, 5], [2, 2], [2, 2], [1, 1], 2),
    ];
    let mut cases = Vec::new();
    for (i, p) in shapes.iter().enumerate() {
        let e = Epilogue {
            bias: i % 2 == 0,
            residual: i % 3 == 1,
            act: ACTS[i % 3],
        };
        let poison: &[(usize, f32)] = match i {
            1 => &[(0, f32::NAN), (40, f32::INFINITY)],
            // A 1×1 conv: only the second pixel of the first window is NaN, so the
            // window's max must come out NaN whichever order it is taken in.
            2 => &[(1, f32::NAN), (14, f32::NEG_INFINITY)],
            _ => &[],
        };
        cases.extend(pooled_cases(p, e, configs()[i % 9], poison, 300 + i as u64));
    }
    check("conv2d", &cases);
}

/// One case per shape, each with the next epilogue (bias, residual, activation) and GEMM
/// configuration in turn.
fn mixed(shapes: &[Conv2dParams], seed: u64) -> Vec<Case> {
    mixed_by(shapes, seed, |p, e, gemm, seed| case(p, e, gemm, &[], seed))
}

/// As `mixed`, each case made by `case(shape, epilogue, gemm, seed)`.
pub(super) fn mixed_by(
    shapes: &[Conv2dParams],
    seed: u64,
    case: impl Fn(&Conv2dParams, Epilogue, Gemm, u64) -> Case,
) -> Vec<Case> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let e = Epilogue {
                bias: i % 2 == 0,
                residual: i / 2 % 2 == 0,
                // Every activation in turn: each is fused in every kernel's epilogue.
                act: ALL_ACTS[i % ALL_ACTS.len()],
            };
            case(p, e, configs()[i % 9], seed + i as u64)
        })
        .collect()
}

/// A seeded sweep of odd and SIMD-tail shapes: plain, grouped and depthwise, every kernel
/// size, stride, pad and dilation mixed per axis, each with one epilogue and one GEMM
/// configuration in turn.
#[test]
fn random_shapes() {
    let mut rng = Rng::new(0x5eed_c0de);
    let chans = [1, 3, 7, 8, 9, 15, 16, 17, 33];
    let mut shapes = Vec::new();
    while shapes.len() < SHAPES {
        let groups_kind = rng.pick(&[1, 1, 2, 0]); // 0: depthwise
        let (c_in, c_out, groups) = match groups_kind {
            0 => {
                let c = rng.pick(&chans);
                (c, c, c)
            }
            g => (g * rng.pick(&chans), g * rng.pick(&chans), g),
        };
        let p = Conv2dParams {
            n: rng.pick(&[1, 2]),
            c_in,
            h: rng.pick(&[1, 2, 5, 7, 9, 13]),
            w: rng.pick(&[1, 3, 6, 11, 17]),
            c_out,
            kh: rng.pick(&[1, 2, 3, 5]),
            kw: rng.pick(&[1, 3, 4]),
            stride: [rng.pick(&[1, 2, 3]), rng.pick(&[1, 2, 3])],
            pad: [rng.pick(&[0, 1, 2]), rng.pick(&[0, 1, 2])],
            dilation: [rng.pick(&[1, 2]), rng.pick(&[1, 2])],
            groups,
        };
        shapes.extend(p.validate().is_ok().then_some(p));
    }
    check("conv2d", &mixed(&shapes, 500));
}

/// How many shapes `random_shapes` draws.
const SHAPES: usize = 150;

/// Depthwise (multiplier 1, `DepthwiseCpu`'s shapes) over every kernel size 1–5, stride
/// 1–3, pad 0–2 and dilation 1–2, then odd and rectangular kernels, strides, pads and
/// dilations per axis, on widths around the SIMD lanes.
#[test]
fn depthwise_sweep() {
    let mut rng = Rng::new(0x5eed_d3b7);
    let mut shapes = Vec::new();
    for k in 1..=5 {
        for s in 1..=3 {
            for pad in 0..=2 {
                for d in 1..=2 {
                    let c = rng.pick(&[1, 3]);
                    let p = Conv2dParams {
                        n: rng.pick(&[1, 2]),
                        c_in: c,
                        h: rng.pick(&[1, 3, 5, 7, 9, 12]),
                        w: rng.pick(&[1, 7, 8, 9, 15, 16, 17, 31, 33, 40]),
                        c_out: c,
                        kh: k,
                        kw: k,
                        stride: [s, s],
                        pad: [pad, pad],
                        dilation: [d, d],
                        groups: c,
                    };
                    shapes.extend(p.validate().is_ok().then_some(p));
                }
            }
        }
    }
    for _ in 0..60 {
        let p = Conv2dParams {
            n: 1,
            c_in: 2,
            h: rng.pick(&[2, 5, 6, 11]),
            w: rng.pick(&[3, 7, 16, 17, 33, 63, 64, 65]),
            c_out: 2,
            kh: rng.pick(&[1, 2, 3, 5]),
            kw: rng.pick(&[1, 2, 3, 4, 5]),
            stride: [rng.pick(&[1, 2, 3]), rng.pick(&[1, 2, 3])],
            pad: [rng.pick(&[0, 1, 2]), rng.pick(&[0, 1, 2, 3])],
            dilation: [rng.pick(&[1, 2]), rng.pick(&[1, 2, 3])],
            groups: 2,
        };
        shapes.extend(p.validate().is_ok().then_some(p));
    }
    check("conv2d depthwise", &mixed(&shapes, 900));
}
