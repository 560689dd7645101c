//! conv2d on the GPU: `conv2d_igemm`, an implicit GEMM for every conv, in fp32 on the
//! CUDA cores or tf32/fp16 on the tensor cores, and `conv2d_dw_f32`, a direct kernel for
//! depthwise ones (groups == c_in). Both fuse the epilogue `act(acc + bias[c] + residual)`.
//! The tiling, pipeline and split-K are explained at the top of `igemm.cu`.

use super::Conv2dParams;
use crate::cuda::{blocks, Arg, CudaOp, Launch, Source};
use crate::pool2d::Pool2dParams;
use crate::precision::{round_tf32, Precision};
use crate::Activation;

static IGEMM: Source = Source {
    name: "igemm.cu",
    code: include_str!("igemm.cu"),
};

static DEPTHWISE: Source = Source {
    name: "depthwise.cu",
    code: include_str!("depthwise.cu"),
};

/// K slab per pipeline stage. Stages in flight: `Gemm::stages`, within the 48 KiB of
/// static shared memory a block may have (`Gemm::shared_bytes`).
const BK: usize = 16;
const SHARED_LIMIT: usize = 48 * 1024;

/// How the threads of a block share its tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// fp32 FMA: each thread a `tm`×`tn` register block.
    Simt { tm: usize, tn: usize },
    /// Tensor cores: a `m`×`n` grid of warps, each a piece of whole 16×8 mma tiles.
    Warps { m: usize, n: usize },
}

/// One implicit-GEMM configuration: the arithmetic, a block's `bm`×`bn` tile of the
/// output, how its threads share it, how many blocks split each tile's K, and whether its
/// columns run over 2×2 max-pool windows (the epilogue then also pools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    pub precision: Precision,
    pub bm: usize,
    pub bn: usize,
    pub threads: Threads,
    /// K slabs in flight in shared memory (cp.async pipeline depth).
    pub stages: usize,
    pub splits: usize,
    pub max_pool2: bool,
}

impl Gemm {
    /// 128×128: fp32 256 threads of 8×8 (64 FMAs per 16 shared loads); tensor cores 2×4
    /// warps of 64×32 (16 mma per 24 fragment loads). Two stages: three would need
    /// 52 KiB in tf32, past the static limit. For grids that fill the GPU anyway
    /// (batch 32), where reuse per load matters more than blocks.
    pub fn huge(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 8, tn: 8 },
            _ => Threads::Warps { m: 2, n: 4 },
        };
        Gemm {
            bm: 128,
            bn: 128,
            threads,
            stages: 2,
            ..Gemm::large(precision)
        }
    }

    /// 64×64: fp32 256 threads of 4×4 (16 FMAs per 8 shared loads); tensor cores 2×2
    /// warps of 32×32 (8 mma per 12 fragment loads).
    pub fn large(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 4, tn: 4 },
            _ => Threads::Warps { m: 2, n: 2 },
        };
        Gemm {
            precision,
            bm: 64,
            bn: 64,
            threads,
            stages: 3,
            splits: 1,
            max_pool2: false,
        }
    }

    /// 32×32: a quarter of the work per block, four times the blocks.
    pub fn small(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 2, tn: 2 },
            _ => Threads::Warps { m: 2, n: 2 },
        };
        Gemm {
            bm: 32,
            bn: 32,
            threads,
            ..Gemm::large(precision)
        }
    }

    pub fn with_splits(self, splits: usize) -> Gemm {
        Gemm { splits, ..self }
    }

    pub fn with_max_pool2(self) -> Gemm {
        Gemm {
            max_pool2: true,
            ..self
        }
    }

    /// GEMM columns: output pixels, or with the pool four per window it keeps.
    fn columns(&self, p: &Conv2dParams) -> usize {
        let [n, _, oh, ow] = p.output_shape();
        match self.max_pool2 {
            true => n * (oh / 2) * (ow / 2) * 4,
            false => n * oh * ow,
        }
    }

    /// Static shared memory of one block, as igemm.cu declares it: `stages` slabs of A
    /// (BK rows, or BK/2 rows of fp16 pairs, of bm + 8 padded floats on tensor cores) and B
    /// (BK rows of bn + 8 or + 4 floats), plus the split-K flag.
    pub fn shared_bytes(&self) -> usize {
        let (a_rows, a_pad, b_pad) = match self.precision {
            Precision::Fp32 => (BK, 0, 0),
            Precision::Tf32 => (BK, 8, 8),
            Precision::Fp16 => (BK / 2, 8, 4),
        };
        let stage = a_rows * (self.bm + a_pad) + BK * (self.bn + b_pad);
        self.stages * stage * size_of::<f32>() + size_of::<i32>() * (self.splits > 1) as usize
    }

    pub fn threads(&self) -> usize {
        match self.threads {
            Threads::Simt { tm, tn } => (self.bm / tm) * (self.bn / tn),
            Threads::Warps { m, n } => 32 * m * n,
        }
    }

    /// Blocks of one K range: output tiles over every group.
    fn tiles(&self, p: &Conv2dParams) -> usize {
        let c_out = p.c_out;
        (c_out / p.groups).div_ceil(self.bm) * self.columns(p).div_ceil(self.bn) * p.groups
    }

    /// The `MATH` define of igemm.cu.
    fn math(&self) -> i64 {
        match self.precision {
            Precision::Fp32 => 0,
            Precision::Tf32 => 1,
            Precision::Fp16 => 2,
        }
    }
}

/// Blocks a GPU should get to keep its SMs busy: one per SM of the H100 (132).
const ENOUGH_BLOCKS: usize = 132;

/// Split-K stops where a block would get fewer than this many K slabs (64 taps): below
/// that the pipeline never fills and the partials' round trip costs more than it saves.
const MIN_SLABS_PER_SPLIT: usize = 4;
const MAX_SPLITS: usize = 8;

/// Threads per block of `conv2d_dw_f32` (its `DW_THREADS`).
const DW_THREADS: usize = 256;

/// The 64×64 tile, unless its grid would have fewer blocks than the H100 has SMs: then
/// 32×32, which has four times as many, and if even that leaves SMs idle, K split over
/// enough blocks to fill them. ResNet-50 at batch 1: layer1's 3×3 conv (64→64 on 56×56)
/// gets 1 × 49 blocks of 64×64, 2 × 98 of 32×32; layer4's (512→512 on 7×7, K = 4608)
/// gets 16 × 2 of 32×32, split 5 ways: 160 blocks of 57 or 58 slabs each.
pub fn gemm_config(p: &Conv2dParams, precision: Precision) -> Gemm {
    let sizes = [Gemm::huge, Gemm::large, Gemm::small].map(|size| size(precision));
    choose_gemm(p, sizes)
}

/// [`gemm_config`]'s rule over configurations of one kind, largest tile first.
fn choose_gemm(p: &Conv2dParams, sizes: [Gemm; 3]) -> Gemm {
    let [huge, large, small] = sizes;
    // The 128×128 tile only where even it gives every SM two blocks or more.
    if huge.tiles(p) >= 2 * ENOUGH_BLOCKS {
        return huge;
    }
    if large.tiles(p) >= ENOUGH_BLOCKS {
        return large;
    }
    let tiles = small.tiles(p);
    let slabs = padded_km(p, &small).0 / BK;
    let splits = ENOUGH_BLOCKS
        .div_ceil(tiles)
        .min(slabs / MIN_SLABS_PER_SPLIT)
        .clamp(1, MAX_SPLITS);
    small.with_splits(splits)
}

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
    fits && plain && oh % 2 == 0 && ow % 2 == 0 && !is_depthwise(p)
}

/// The conv and a 2×2 stride-2 max pool of its output (see [`can_fuse_max_pool2`]) in one
/// launch. x, residual, weight and bias as for [`conv2d`]; the conv's output y is
/// `Arg::Input(1)` (`Arg::Input(2)` with a residual), **written, not read**: the engine
/// passes the conv step's output there so it stays valid; the pooled output
/// (n, c_out, oh/2, ow/2) is `Arg::Output`.
pub fn conv2d_max_pool2(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    precision: Precision,
) -> CudaOp {
    let sizes = [Gemm::huge, Gemm::large, Gemm::small].map(|size| size(precision).with_max_pool2());
    conv2d_with(p, weight, bias, residual, act, choose_gemm(p, sizes))
}

/// Depthwise, possibly with a channel multiplier: each output channel reads one input
/// channel (`validate` already guarantees c_out % groups == 0).
pub fn is_depthwise(p: &Conv2dParams) -> bool {
    p.groups == p.c_in
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
) -> CudaOp {
    conv2d_with(p, weight, bias, residual, act, gemm_config(p, precision))
}

/// [`conv2d`] with the GEMM configuration chosen by the caller (tests run every tile,
/// precision and split on small shapes); `gemm` is unused for depthwise convs.
pub(crate) fn conv2d_with(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    gemm: Gemm,
) -> CudaOp {
    let [n, c_out, oh, ow] = p.output_shape();
    assert_eq!(
        weight.len(),
        p.weight_shape().iter().product(),
        "conv2d: weight length"
    );
    bias.inspect(|b| assert_eq!(b.len(), c_out, "conv2d: bias length"));
    // The kernels index with 32-bit ints.
    for (what, len) in [
        ("input", n * p.c_in * p.h * p.w),
        ("output", n * c_out * oh * ow),
        ("weight", weight.len()),
    ] {
        crate::cuda::assert_int_indexable("conv2d", what, len);
    }

    let mut defines = layer_defines(p);
    defines.extend(epilogue_defines(bias.is_some(), residual, act));
    let mut args = vec![Arg::Input(0), Arg::Const(0)];
    if bias.is_some() {
        args.push(Arg::Const(1));
    }
    if residual {
        args.push(Arg::Input(1));
    }
    match gemm.max_pool2 {
        // y as an input role (written), the pooled values as the output.
        true => args.extend([Arg::Input(1 + residual as usize), Arg::Output]),
        false => args.push(Arg::Output),
    }

    let mut consts = Vec::new();
    assert!(
        !(gemm.max_pool2 && is_depthwise(p)),
        "conv2d: a max pool fuses into the GEMM only"
    );
    assert!(
        gemm.shared_bytes() <= SHARED_LIMIT,
        "conv2d: {gemm:?} needs {} bytes of shared memory",
        gemm.shared_bytes()
    );
    let launch = if is_depthwise(p) {
        // The weight is used as PyTorch lays it out: (c_out, 1, kh, kw).
        consts.push(weight.to_vec());
        consts.extend(bias.map(<[f32]>::to_vec));
        launch_conv2d_dw_f32(p, defines, args)
    } else {
        let packed = pack_weight(p, weight, &gemm);
        crate::cuda::assert_int_indexable("conv2d", "packed weight", packed.len());
        consts.push(packed);
        consts.extend(bias.map(<[f32]>::to_vec));
        if gemm.splits > 1 {
            // Partials and counters: zero once, and the kernel leaves the counters zero.
            let len = gemm.splits * gemm.tiles(p) * gemm.bm * gemm.bn + gemm.tiles(p);
            crate::cuda::assert_int_indexable("conv2d", "split-K workspace", len);
            args.push(Arg::Const(consts.len()));
            consts.push(vec![0.0; len]);
        }
        launch_conv2d_igemm(p, &gemm, defines, args)
    };
    CudaOp {
        consts,
        launches: vec![launch],
    }
}

/// Grid (N tiles, M tiles, groups × splits).
fn launch_conv2d_igemm(
    p: &Conv2dParams,
    gemm: &Gemm,
    mut defines: Vec<(&'static str, i64)>,
    args: Vec<Arg>,
) -> Launch {
    let (k_pad, m_pad) = padded_km(p, gemm);
    let (tm_or_wm, tn_or_wn) = match gemm.threads {
        Threads::Simt { tm, tn } => (("TM", tm), ("TN", tn)),
        Threads::Warps { m, n } => (("WARPS_M", m), ("WARPS_N", n)),
    };
    defines.extend(
        [
            ("MATH", gemm.math() as usize),
            ("BM", gemm.bm),
            ("BN", gemm.bn),
            ("BK", BK),
            ("STAGES", gemm.stages),
            tm_or_wm,
            tn_or_wn,
            ("SPLITS", gemm.splits),
            ("POOL", 2 * gemm.max_pool2 as usize),
            ("K_PAD", k_pad),
            ("M_PAD", m_pad),
        ]
        .map(|(name, v)| (name, v as i64)),
    );
    assert!(
        p.groups * gemm.splits <= 65_535,
        "conv2d on CUDA: {} groups overflow gridDim.z",
        p.groups
    );
    Launch {
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
    }
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
) -> [(&'static str, i64); 3] {
    let act = match act {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::Relu6 => 2,
    };
    [
        ("HAS_BIAS", bias as i64),
        ("HAS_RESIDUAL", residual as i64),
        ("ACT", act),
    ]
}

/// K = (c_in/groups)·kh·kw and M = c_out/groups, rounded up to whole K slabs and
/// `bm` tiles.
fn padded_km(p: &Conv2dParams, gemm: &Gemm) -> (usize, usize) {
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    (
        (cg_in * kh * kw).next_multiple_of(BK),
        (c_out / p.groups).next_multiple_of(gemm.bm),
    )
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
    fn small_grids_get_the_small_tile_then_split_k() {
        for precision in Precision::ALL {
            let (large, small) = (Gemm::large(precision), Gemm::small(precision));
            // 64→256 1×1 on 56×56 at batch 1: 4 × 49 = 196 blocks of 64×64.
            assert_eq!(gemm_config(&params(64, 256, 56, 1, 1), precision), large);
            // Groups multiply the grid: 32 groups of 4→4 on 28×28 give 32 × 13 blocks.
            assert_eq!(gemm_config(&params(128, 128, 28, 3, 32), precision), large);
            // 64→64 3×3 on 28×28: 1 × 13 of 64×64, 2 × 25 = 50 of 32×32, K = 576 is 36
            // slabs: split 3 ways, 150 blocks.
            assert_eq!(
                gemm_config(&params(64, 64, 28, 3, 1), precision),
                small.with_splits(3)
            );
            // 512→512 3×3 on 7×7: 16 × 2 blocks of 32×32, K = 4608: 5 ways, 160 blocks.
            assert_eq!(
                gemm_config(&params(512, 512, 7, 3, 1), precision),
                small.with_splits(5)
            );
            // 3→8 3×3 on 5×5: one block, K = 27 (2 slabs): nothing to split.
            assert_eq!(gemm_config(&params(3, 8, 5, 3, 1), precision), small);
            // Batch 32 of 64→256 1×1 on 56×56: 2 × 784 blocks of 128×128.
            let batched = Conv2dParams {
                n: 32,
                ..params(64, 256, 56, 1, 1)
            };
            assert_eq!(gemm_config(&batched, precision), Gemm::huge(precision));
            assert_eq!(large.threads(), [256, 128, 128][large.math() as usize]);
            assert_eq!(small.threads(), [256, 128, 128][small.math() as usize]);
        }
    }

    #[test]
    fn every_configuration_fits_static_shared_memory() {
        for precision in Precision::ALL {
            for size in [Gemm::huge, Gemm::large, Gemm::small] {
                let gemm = size(precision).with_splits(2);
                assert!(gemm.shared_bytes() <= SHARED_LIMIT, "{gemm:?}");
            }
        }
        // tf32 128×128 at three stages would not: why `huge` has two.
        let three = Gemm {
            stages: 3,
            ..Gemm::huge(Precision::Tf32)
        };
        assert!(three.shared_bytes() > SHARED_LIMIT);
        assert_eq!(
            Gemm::large(Precision::Fp32).shared_bytes(),
            3 * 2 * 16 * 64 * 4
        );
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
        );
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
        let op = conv2d_with(&p, &w, None, false, Activation::None, gemm);
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
        );
        let l = &op.launches[0];
        assert_eq!(l.entry, "conv2d_dw_f32");
        assert_eq!(l.args, [Arg::Input(0), Arg::Const(0), Arg::Output]);
        assert_eq!(op.consts, [w[..8 * 9].to_vec()]);
        assert_eq!(l.grid, [1, 1, 1]); // 8 × 5 × 5 = 200 outputs, one block of 256
    }
}
