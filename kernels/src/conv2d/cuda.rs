//! conv2d on the GPU: `conv2d_f32`, an implicit GEMM for every conv, and `conv2d_dw_f32`,
//! a direct kernel for depthwise ones (groups == c_in). Both fuse the epilogue
//! `act(acc + bias[c] + residual)`. The tiling is explained at the top of `conv2d.cu`.

use super::Conv2dParams;
use crate::cuda::{blocks, Arg, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "conv2d.cu",
    code: include_str!("conv2d.cu"),
};

/// A block's share of the implicit GEMM: a `bm`×`bn` tile of the output, K walked `bk` at
/// a time, each thread `tm`×`tn` accumulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub bm: usize,
    pub bn: usize,
    pub bk: usize,
    pub tm: usize,
    pub tn: usize,
}

impl Tile {
    /// 256 threads, 4×4 each: 16 FMAs per 8 shared-memory loads, 8 KiB of shared memory.
    pub const T64: Tile = Tile {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 4,
        tn: 4,
    };
    /// 256 threads, 2×2 each: a quarter of the work per block, four times the blocks.
    pub const T32: Tile = Tile {
        bm: 32,
        bn: 32,
        bk: 16,
        tm: 2,
        tn: 2,
    };

    pub fn threads(&self) -> usize {
        (self.bm / self.tm) * (self.bn / self.tn)
    }
}

/// Blocks a GPU should get to keep its SMs busy: one per SM of the H100 (132).
const ENOUGH_BLOCKS: usize = 132;

/// Threads per block of `conv2d_dw_f32` (its `DW_THREADS`).
const DW_THREADS: usize = 256;

/// The 64×64 tile, unless its grid would have fewer blocks than the H100 has SMs: then
/// 32×32, which has four times as many. ResNet-50 at batch 1: layer4's 3×3 conv (512→512
/// on 7×7: M 512, N 49) gets 8 × 1 blocks of 64×64 but 16 × 2 of 32×32; layer1's 3×3 conv
/// (64→64 on 56×56) gets 1 × 49 of 64×64 and 2 × 98 of 32×32.
pub fn gemm_tile(p: &Conv2dParams) -> Tile {
    let [n, c_out, oh, ow] = p.output_shape();
    let (m, pixels) = (c_out / p.groups, n * oh * ow);
    let grid = |t: Tile| m.div_ceil(t.bm) * pixels.div_ceil(t.bn) * p.groups;
    if grid(Tile::T64) >= ENOUGH_BLOCKS {
        Tile::T64
    } else {
        Tile::T32
    }
}

/// Depthwise, possibly with a channel multiplier: each output channel reads one input
/// channel (`validate` already guarantees c_out % groups == 0).
pub fn is_depthwise(p: &Conv2dParams) -> bool {
    p.groups == p.c_in
}

/// The conv as CUDA launches. x is `Arg::Input(0)`: (n, c_in, h, w); with `residual`,
/// `Arg::Input(1)`: (n, c_out, oh, ow); y is `Arg::Output`: (n, c_out, oh, ow).
/// `weight`: (c_out, c_in/groups, kh, kw)  `bias`: (c_out).
pub fn conv2d(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
) -> CudaOp {
    conv2d_with_tile(p, weight, bias, residual, act, gemm_tile(p))
}

/// [`conv2d`] with the GEMM tile chosen by the caller (tests run both tiles on small
/// shapes); `tile` is unused for depthwise convs.
pub(crate) fn conv2d_with_tile(
    p: &Conv2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    residual: bool,
    act: Activation,
    tile: Tile,
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
    args.push(Arg::Output);

    let mut consts = Vec::new();
    let launch = if is_depthwise(p) {
        // The weight is used as PyTorch lays it out: (c_out, 1, kh, kw).
        consts.push(weight.to_vec());
        launch_conv2d_dw_f32(p, defines, args)
    } else {
        let packed = pack_weight(p, weight, tile);
        crate::cuda::assert_int_indexable("conv2d", "packed weight", packed.len());
        consts.push(packed);
        launch_conv2d_f32(p, tile, defines, args)
    };
    consts.extend(bias.map(<[f32]>::to_vec));
    CudaOp {
        consts,
        launches: vec![launch],
    }
}

/// Grid (N tiles, M tiles, groups), one thread per `tm`×`tn` outputs.
fn launch_conv2d_f32(
    p: &Conv2dParams,
    t: Tile,
    mut defines: Vec<(&'static str, i64)>,
    args: Vec<Arg>,
) -> Launch {
    let [n, c_out, oh, ow] = p.output_shape();
    let (k_pad, m_pad) = padded_km(p, t);
    defines.extend([
        ("DEPTHWISE", 0),
        ("BM", t.bm as i64),
        ("BN", t.bn as i64),
        ("BK", t.bk as i64),
        ("TM", t.tm as i64),
        ("TN", t.tn as i64),
        ("K_PAD", k_pad as i64),
        ("M_PAD", m_pad as i64),
    ]);
    assert!(
        p.groups <= 65_535,
        "conv2d on CUDA: {} groups overflow gridDim.z",
        p.groups
    );
    Launch {
        source: &SOURCE,
        entry: "conv2d_f32",
        defines,
        grid: [
            blocks(n * oh * ow, t.bn),
            blocks(c_out / p.groups, t.bm),
            p.groups as u32,
        ],
        block: [t.threads() as u32, 1, 1],
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
    defines.extend([("DEPTHWISE", 1), ("MULT", (p.c_out / p.c_in) as i64)]);
    Launch {
        source: &SOURCE,
        entry: "conv2d_dw_f32",
        defines,
        grid: [blocks(p.output_shape().iter().product(), DW_THREADS), 1, 1],
        block: [DW_THREADS as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}

/// The layer's shapes, as `conv2d.cu` names them.
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

/// K = (c_in/groups)·kh·kw and M = c_out/groups, rounded up to whole `bk` and `bm` tiles.
fn padded_km(p: &Conv2dParams, t: Tile) -> (usize, usize) {
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    (
        (cg_in * kh * kw).next_multiple_of(t.bk),
        (c_out / p.groups).next_multiple_of(t.bm),
    )
}

/// The GEMM's A operand: (groups, K_PAD, M_PAD), zero beyond (K, M), from the weight
/// (c_out, c_in/groups, kh, kw) = per group (M, K). K-major, so the kernel's loads along
/// the output channel are coalesced, and padded, so they need no bounds check.
fn pack_weight(p: &Conv2dParams, weight: &[f32], t: Tile) -> Vec<f32> {
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    let (k, m) = (cg_in * kh * kw, c_out / p.groups);
    let (k_pad, m_pad) = padded_km(p, t);
    let mut packed = vec![0.0; p.groups * k_pad * m_pad];
    // w_oc: (K), the taps of output channel oc = g*M + mi
    for (oc, w_oc) in weight.chunks_exact(k).enumerate() {
        let (g, mi) = (oc / m, oc % m);
        for (ki, &v) in w_oc.iter().enumerate() {
            packed[(g * k_pad + ki) * m_pad + mi] = v;
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stride 1, pad k / 2: `shapes::conv` with stride 1.
    fn params(c_in: usize, c_out: usize, hw: usize, k: usize, groups: usize) -> Conv2dParams {
        crate::conv2d::shapes::conv(c_in, c_out, hw, k, 1, groups)
    }

    #[test]
    fn small_grids_get_the_small_tile() {
        // 512→512 3×3 on 7×7: 8 × 1 blocks of 64×64.
        assert_eq!(gemm_tile(&params(512, 512, 7, 3, 1)), Tile::T32);
        // 64→256 1×1 on 56×56 at batch 1: 4 × 49 = 196 blocks of 64×64.
        assert_eq!(gemm_tile(&params(64, 256, 56, 1, 1)), Tile::T64);
        // Groups multiply the grid: 32 groups of 4→4 on 28×28 give 32 × 13 blocks.
        assert_eq!(gemm_tile(&params(128, 128, 28, 3, 32)), Tile::T64);
        for t in [Tile::T64, Tile::T32] {
            assert_eq!(t.threads(), 256);
        }
    }

    #[test]
    fn packed_weight_is_k_major_and_zero_padded() {
        // 2 groups, each M = 3 output channels of K = 2 input channels × 1×1.
        let p = params(4, 6, 5, 1, 2);
        let w: Vec<f32> = (1..=12).map(|v| v as f32).collect(); // w[oc][ci] = 2*oc + ci + 1
        let packed = pack_weight(&p, &w, Tile::T32);
        let (k_pad, m_pad) = (16, 32);
        assert_eq!(packed.len(), 2 * k_pad * m_pad);
        for g in 0..2 {
            for k in 0..k_pad {
                for m in 0..m_pad {
                    let want = if k < 2 && m < 3 {
                        (2 * (3 * g + m) + k + 1) as f32
                    } else {
                        0.0
                    };
                    assert_eq!(packed[(g * k_pad + k) * m_pad + m], want, "g{g} k{k} m{m}");
                }
            }
        }
    }

    #[test]
    fn args_follow_the_epilogue() {
        let p = params(8, 8, 5, 3, 1);
        let w = vec![0.5; 8 * 8 * 9];
        let op = conv2d(&p, &w, Some(&[1.0; 8]), true, Activation::Relu6);
        let l = &op.launches[0];
        assert_eq!(l.entry, "conv2d_f32");
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

        let dw = Conv2dParams { groups: 8, ..p };
        let op = conv2d(&dw, &w[..8 * 9], None, false, Activation::None);
        let l = &op.launches[0];
        assert_eq!(l.entry, "conv2d_dw_f32");
        assert_eq!(l.args, [Arg::Input(0), Arg::Const(0), Arg::Output]);
        assert_eq!(op.consts, [w[..8 * 9].to_vec()]);
        assert_eq!(l.grid, [1, 1, 1]); // 8 × 5 × 5 = 200 outputs, one block of 256
    }
}
