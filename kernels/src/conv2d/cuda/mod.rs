//! conv2d on the GPU: `conv2d_igemm`, an implicit GEMM for every conv, in fp32 on the
//! CUDA cores or tf32/fp16 on the tensor cores, and `conv2d_dw_f32`, a direct kernel for
//! depthwise ones (groups == c_in). Both fuse the epilogue `act(acc + bias[c] + residual)`.
//! The tiling, pipeline and split-K are explained at the top of `igemm.cu`. The implicit
//! GEMM also takes squeeze-excite's gate as an input scale ([`conv2d_in_scaled`]),
//! multiplied into x's values as they land in shared memory.

mod gemm;
#[cfg(test)]
mod index_tests;

use crate::activation::cuda::act_defines;
use crate::conv2d::Conv2dParams;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::pool2d::cuda::check_window_indexable;
use crate::pool2d::Pool2dParams;
use crate::precision::{round_tf32, Precision};
use crate::Activation;

use gemm::{choose_gemm, padded_km, BK, SHARED_LIMIT};
pub use gemm::{gemm_config, Gemm, Threads};

static IGEMM: Source = Source {
    name: "igemm.cu",
    code: include_str!("igemm.cu"),
};

static DEPTHWISE: Source = Source {
    name: "depthwise.cu",
    code: include_str!("depthwise.cu"),
};

/// Threads per block of `conv2d_dw_f32` (its `DW_THREADS`).
const DW_THREADS: usize = 256;

/// Whether `pool`, applied to this conv's output, can run in the conv's epilogue
/// ([`conv2d_max_pool2`]): a 2×2 stride-2 max pool with no padding or dilation over an
/// even-sized output (its windows then tile it: every conv output is computed, for y,
/// and floor and ceil mode agree), after a conv that runs as the implicit GEMM.
pub fn can_fuse_max_pool2(p: &Conv2dParams, pool: &Pool2dParams) -> bool {
    let [n, c_out, oh, ow] = p.output_shape();
    let fits = [pool.n, pool.c, pool.h, pool.w] == [n, c_out, oh, ow];
    let plain = pool.kernel == [2, 2]
        && pool.stride == [2, 2]
        && pool.pad == [0, 0]
        && pool.dilation == [1, 1];
    fits && plain && oh % 2 == 0 && ow % 2 == 0 && p.depthwise_multiplier().is_none()
}

/// The conv and a 2×2 stride-2 max pool of its output (see [`can_fuse_max_pool2`]) in one
/// launch. x, residual, weight and bias as for [`conv2d`]; the conv's output y is the
/// input after them, `Arg::Input(1)` (`Arg::Input(2)` with a residual), **written, not
/// read**: the engine
/// passes the conv step's output there so it stays valid; the pooled output
/// (n, c_out, oh/2, ow/2) is `Arg::Output`.
pub fn conv2d_max_pool2(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    precision: Precision,
) -> Result<CudaOp, CudaError> {
    let gemm = choose_gemm(p, precision, true);
    conv2d_with(p, weight, bias, residual, act, gemm)
}

/// The conv as CUDA launches. x is `Arg::Input(0)`: (n, c_in, h, w); with `residual`,
/// `Arg::Input(1)`: (n, c_out, oh, ow); y is `Arg::Output`: (n, c_out, oh, ow).
/// `weight`: (c_out, c_in/groups, kh, kw)  `bias`: (c_out). Depthwise convs run in fp32
/// whatever `precision` says: they are memory-bound, with no products to put on tensor
/// cores.
pub fn conv2d(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    precision: Precision,
) -> Result<CudaOp, CudaError> {
    conv2d_with(p, weight, bias, residual, act, gemm_config(p, precision))
}

/// [`conv2d`] of x · in_scale, in_scale: (n, c_in) one scale per image and input channel
/// (squeeze-excite's gate), for the convs `Conv2dParams::in_scale_applies` names (an error
/// otherwise). It is the input after x and the residual: `Arg::Input(1)`, or
/// `Arg::Input(2)` with a residual. The implicit GEMM multiplies each value of x by its
/// scale once it lands in shared memory, so x · in_scale is never written to memory: a
/// separate broadcast mul would write it and the conv read it back. Always the implicit
/// GEMM, even for a 1-channel input that `conv2d` would run as depthwise.
pub fn conv2d_in_scaled(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    precision: Precision,
) -> Result<CudaOp, CudaError> {
    let gemm = gemm_config(p, precision).with_in_scale();
    conv2d_with(p, weight, bias, residual, act, gemm)
}

/// [`conv2d`] with the GEMM configuration chosen by the caller (tests run every tile,
/// precision and split on small shapes); only `gemm.in_scale` counts for depthwise convs
/// (it takes them to the implicit GEMM).
pub(crate) fn conv2d_with(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    gemm: Gemm,
) -> Result<CudaOp, CudaError> {
    let [n, c_out, oh, ow] = p.output_shape();
    let shape = p.weight_shape();
    ensure(
        weight.len() == shape.iter().product(),
        "conv2d",
        format_args!("{} weights for shape {shape:?}", weight.len()),
    )?;
    if let Some(b) = bias {
        let len = b.len();
        ensure(
            len == c_out,
            "conv2d",
            format_args!("{len} biases for {c_out} output channels"),
        )?;
    }
    // The kernels index with 32-bit ints. The residual is shaped as the output, bias and
    // the fused max pool's output are smaller.
    for (what, len) in [
        ("input", n * p.c_in * p.h * p.w),
        ("output", n * c_out * oh * ow),
        ("weight", weight.len()),
    ] {
        check_int_indexable("conv2d", what, len)?;
    }
    // And so do their window coordinates (oy * STRIDE_H - PAD_H + ky * DIL_H).
    let axes = [("h", oh, p.kh, 0), ("w", ow, p.kw, 1)];
    for (axis, out, k, i) in axes {
        let window = [out, k, p.stride[i], p.pad[i], p.dilation[i]];
        check_window_indexable("conv2d", axis, window)?;
    }

    let mut defines = layer_defines(p);
    defines.extend(epilogue_defines(bias.is_some(), residual, act));
    ensure(
        !gemm.in_scale || p.in_scale_applies(),
        "conv2d",
        format_args!("an input scale fuses into 1x1 stride-1 unpadded one-group convs only"),
    )?;
    // Inputs in order: x, then the residual and the input scale where present.
    let mut inputs = 0..;
    let mut next_input = || Arg::Input(inputs.next().expect("endless"));
    let mut args = vec![next_input(), Arg::Const(0)];
    if bias.is_some() {
        args.push(Arg::Const(1));
    }
    if residual {
        args.push(next_input());
    }
    if gemm.in_scale {
        args.push(next_input());
    }
    match gemm.max_pool2 {
        // y as an input role (written), the pooled values as the output.
        true => args.extend([next_input(), Arg::Output]),
        false => args.push(Arg::Output),
    }

    let mut consts = Vec::new();
    // A 1-channel input with a scale is "depthwise" too: the GEMM takes it.
    let depthwise = p.depthwise_multiplier().is_some() && !gemm.in_scale;
    ensure(
        !(gemm.max_pool2 && depthwise),
        "conv2d",
        format_args!("a max pool fuses into the GEMM only, not a depthwise conv"),
    )?;
    ensure(
        gemm.shared_bytes() <= SHARED_LIMIT,
        "conv2d",
        format_args!(
            "{gemm:?} needs {} bytes of shared memory",
            gemm.shared_bytes()
        ),
    )?;
    // Depthwise: the weight as PyTorch lays it out, (c_out, 1, kh, kw).
    let weight = match depthwise {
        true => weight.to_vec(),
        false => pack_weight(p, weight, &gemm),
    };
    check_int_indexable("conv2d", "packed weight", weight.len())?;
    consts.push(weight);
    consts.extend(bias.map(<[f32]>::to_vec));
    let launch = if depthwise {
        launch_conv2d_dw_f32(p, defines, args)
    } else {
        if gemm.splits > 1 {
            // Partials and counters: zero once, and the kernel leaves the counters zero.
            let len = gemm.splits * gemm.tiles(p) * gemm.bm * gemm.bn + gemm.tiles(p);
            check_int_indexable("conv2d", "split-K workspace", len)?;
            args.push(Arg::Const(consts.len()));
            consts.push(vec![0.0; len]);
        }
        launch_conv2d_igemm(p, &gemm, defines, args)?
    };
    Ok(CudaOp {
        consts,
        launches: vec![launch],
    })
}

/// Grid (N tiles, M tiles, groups × splits).
fn launch_conv2d_igemm(
    p: &Conv2dParams,
    gemm: &Gemm,
    mut defines: Vec<(&'static str, i64)>,
    args: Vec<Arg>,
) -> Result<Launch, CudaError> {
    let (k_pad, m_pad) = padded_km(p, gemm);
    let (tm_or_wm, tn_or_wn) = match gemm.threads {
        Threads::Simt { tm, tn } => (("TM", tm), ("TN", tn)),
        Threads::Warps { m, n } => (("WARPS_M", m), ("WARPS_N", n)),
    };
    defines.extend(
        [
            ("MATH", gemm.math()),
            ("BM", gemm.bm),
            ("BN", gemm.bn),
            ("BK", BK),
            ("STAGES", gemm.stages),
            tm_or_wm,
            tn_or_wn,
            ("SPLITS", gemm.splits),
            ("POOL", 2 * gemm.max_pool2 as usize),
            ("HAS_IN_SCALE", gemm.in_scale as usize),
            ("K_PAD", k_pad),
            ("M_PAD", m_pad),
        ]
        .map(|(name, v)| (name, v as i64)),
    );
    ensure(
        p.groups * gemm.splits <= 65_535,
        "conv2d",
        format_args!(
            "{} groups x {} splits overflow gridDim.z (65535)",
            p.groups, gemm.splits
        ),
    )?;
    Ok(Launch {
        source: &IGEMM,
        entry: "conv2d_igemm",
        defines,
        grid: [
            blocks(gemm.columns(p), gemm.bn),
            blocks(p.c_out / p.groups, gemm.bm),
            (p.groups * gemm.splits) as u32,
        ],
        block: [gemm.threads() as u32, 1, 1],
        shared_bytes: 0,
        args,
    })
}

/// One thread per output value.
fn launch_conv2d_dw_f32(
    p: &Conv2dParams,
    mut defines: Vec<(&'static str, i64)>,
    args: Vec<Arg>,
) -> Launch {
    defines.push(("MULT", (p.c_out / p.c_in) as i64));
    Launch {
        source: &DEPTHWISE,
        entry: "conv2d_dw_f32",
        defines,
        grid: [blocks(p.output_shape().iter().product(), DW_THREADS), 1, 1],
        block: [DW_THREADS as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}

/// The layer's shapes, as the `.cu` files name them.
fn layer_defines(p: &Conv2dParams) -> Vec<(&'static str, i64)> {
    let (oh, ow) = p.output_hw();
    [
        ("N_IMG", p.n),
        ("C_IN", p.c_in),
        ("IN_H", p.h),
        ("IN_W", p.w),
        ("C_OUT", p.c_out),
        ("K_H", p.kh),
        ("K_W", p.kw),
        ("STRIDE_H", p.stride[0]),
        ("STRIDE_W", p.stride[1]),
        ("PAD_H", p.pad[0]),
        ("PAD_W", p.pad[1]),
        ("DIL_H", p.dilation[0]),
        ("DIL_W", p.dilation[1]),
        ("GROUPS", p.groups),
        ("OUT_H", oh),
        ("OUT_W", ow),
    ]
    .into_iter()
    .map(|(name, v)| (name, v as i64))
    .collect()
}

/// HAS_BIAS, HAS_RESIDUAL and ACT (0 none, 1 relu, 2 relu6): the fused epilogue's defines,
/// shared with `linear.cu`.
pub(crate) fn epilogue_defines(
    bias: bool,
    residual: bool,
    act: Activation,
) -> Vec<(&'static str, i64)> {
    let mut defines = vec![("HAS_BIAS", bias as i64), ("HAS_RESIDUAL", residual as i64)];
    defines.extend(act_defines(act));
    defines
}

/// The GEMM's A operand, zero beyond (K, M), from the weight (c_out, c_in/groups, kh, kw)
/// = per group (M, K). K-major, so the kernel's loads along the output channel are
/// coalesced, and padded, so they need no bounds check:
/// - fp32, tf32: (groups, K_PAD, M_PAD) f32, for tf32 already rounded (`round_tf32`, the
///   device's own rounding), so the kernel feeds A to the tensor cores as loaded;
/// - fp16: (groups, K_PAD/2, M_PAD) words, each the fp16 (`half`, to nearest even) of taps
///   2k (low half) and 2k+1 (high half): one 32-bit register of the mma's A fragment. The
///   words travel as f32 bit patterns, the one element type of `CudaOp::consts`.
fn pack_weight(p: &Conv2dParams, weight: &[f32], gemm: &Gemm) -> Vec<f32> {
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    let (k, m) = (cg_in * kh * kw, c_out / p.groups);
    let (k_pad, m_pad) = padded_km(p, gemm);
    let mut packed = vec![0.0; p.groups * k_pad * m_pad];
    // w_oc: (K), the taps of output channel oc = g*M + mi
    for (oc, w_oc) in weight.chunks_exact(k).enumerate() {
        let (g, mi) = (oc / m, oc % m);
        for (ki, &v) in w_oc.iter().enumerate() {
            packed[(g * k_pad + ki) * m_pad + mi] = v;
        }
    }
    match gemm.precision {
        Precision::Fp32 => packed,
        Precision::Tf32 => packed.into_iter().map(round_tf32).collect(),
        Precision::Fp16 => {
            let half = |v: f32| u32::from(half::f16::from_f32(v).to_bits());
            // rows: (K_PAD, M_PAD) per group; K_PAD is even (a multiple of BK).
            let mut pairs = vec![0.0; packed.len() / 2];
            for (r2, out) in pairs.chunks_exact_mut(m_pad).enumerate() {
                let even = &packed[2 * r2 * m_pad..][..m_pad];
                let odd = &packed[(2 * r2 + 1) * m_pad..][..m_pad];
                for ((o, &lo), &hi) in out.iter_mut().zip(even).zip(odd) {
                    *o = f32::from_bits(half(lo) | half(hi) << 16);
                }
            }
            pairs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stride 1, pad k / 2: `shapes::conv` with stride 1.
    fn params(c_in: usize, c_out: usize, hw: usize, k: usize, groups: usize) -> Conv2dParams {
        crate::conv2d::shapes::conv(c_in, c_out, hw, k, 1, groups)
    }

    #[test]
    fn packed_weight_is_k_major_and_zero_padded() {
        // 2 groups, each M = 3 output channels of K = 2 input channels × 1×1.
        let p = params(4, 6, 5, 1, 2);
        let w: Vec<f32> = (1..=12).map(|v| v as f32).collect(); // w[oc][ci] = 2*oc + ci + 1
        let want = |g: usize, k: usize, m: usize| match k < 2 && m < 3 {
            true => (2 * (3 * g + m) + k + 1) as f32,
            false => 0.0,
        };
        let (k_pad, m_pad) = (16, 32);
        for precision in [Precision::Fp32, Precision::Tf32] {
            let packed = pack_weight(&p, &w, &Gemm::small(precision));
            assert_eq!(packed.len(), 2 * k_pad * m_pad);
            for g in 0..2 {
                for k in 0..k_pad {
                    for m in 0..m_pad {
                        let at = packed[(g * k_pad + k) * m_pad + m];
                        assert_eq!(at, want(g, k, m), "{precision} g{g} k{k} m{m}");
                    }
                }
            }
        }
        // fp16: (g, k/2, m) words, tap 2k in the low half.
        let packed = pack_weight(&p, &w, &Gemm::small(Precision::Fp16));
        assert_eq!(packed.len(), 2 * k_pad / 2 * m_pad);
        for g in 0..2 {
            for k in 0..k_pad {
                for m in 0..m_pad {
                    let word = packed[(g * k_pad / 2 + k / 2) * m_pad + m].to_bits();
                    let h = half::f16::from_bits((word >> (16 * (k % 2))) as u16);
                    assert_eq!(h.to_f32(), want(g, k, m), "fp16 g{g} k{k} m{m}");
                }
            }
        }
    }

    #[test]
    fn tf32_and_fp16_weights_are_rounded_as_the_device_rounds() {
        let p = params(1, 1, 3, 1, 1);
        let w = [1.0 + 2f32.powi(-11) + 2f32.powi(-20)]; // past half a tf32/fp16 ulp
        let tf32 = pack_weight(&p, &w, &Gemm::small(Precision::Tf32));
        assert_eq!(tf32[0], 1.0 + 2f32.powi(-10));
        let f16 = pack_weight(&p, &w, &Gemm::small(Precision::Fp16));
        assert_eq!(
            f16[0].to_bits() & 0xffff,
            half::f16::from_f32(w[0]).to_bits() as u32
        );
        assert_eq!(
            half::f16::from_bits(f16[0].to_bits() as u16).to_f32(),
            tf32[0]
        );
    }

    #[test]
    fn args_follow_the_epilogue_and_the_split() {
        let p = params(8, 8, 5, 3, 1);
        let w = vec![0.5; 8 * 8 * 9];
        let op = conv2d(
            &p,
            &w,
            Some(&[1.0; 8]),
            true,
            Activation::Relu6,
            Precision::Fp32,
        )
        .unwrap();
        let l = &op.launches[0];
        assert_eq!(l.entry, "conv2d_igemm");
        assert_eq!(
            l.args,
            [
                Arg::Input(0),
                Arg::Const(0),
                Arg::Const(1),
                Arg::Input(1),
                Arg::Output
            ]
        );
        assert_eq!(op.consts.len(), 2);
        assert!(l.defines.contains(&("ACT", 2)));
        assert!(l.defines.contains(&("MATH", 0)));

        // Split 2 ways: the workspace comes last, zeroed, sized for 2 × 1 tile of 32×32
        // partials and one counter.
        let gemm = Gemm::small(Precision::Tf32).with_splits(2);
        let op = conv2d_with(&p, &w, None, false, Activation::None, gemm).unwrap();
        let l = &op.launches[0];
        assert_eq!(
            l.args,
            [Arg::Input(0), Arg::Const(0), Arg::Output, Arg::Const(1)]
        );
        assert_eq!(op.consts[1], vec![0.0; 2 * 32 * 32 + 1]);
        assert_eq!(l.grid, [1, 1, 2]);
        assert!(l.defines.contains(&("MATH", 1)) && l.defines.contains(&("SPLITS", 2)));

        let dw = Conv2dParams { groups: 8, ..p };
        let op = conv2d(
            &dw,
            &w[..8 * 9],
            None,
            false,
            Activation::None,
            Precision::Fp16,
        )
        .unwrap();
        let l = &op.launches[0];
        assert_eq!(l.entry, "conv2d_dw_f32");
        assert_eq!(l.args, [Arg::Input(0), Arg::Const(0), Arg::Output]);
        assert_eq!(op.consts, [w[..8 * 9].to_vec()]);
        assert_eq!(l.grid, [1, 1, 1]); // 8 × 5 × 5 = 200 outputs, one block of 256
    }
}
