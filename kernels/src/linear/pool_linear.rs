//! A classifier head on the GPU in one launch: global average pool, flatten, linear, as
//! `linear(x.mean([2, 3]), w, bias)` then the activation: `pool_linear_f32` in
//! `pool_linear.cu`. At batch 1 the two kernels it replaces cost a launch each (~1 µs
//! even in a CUDA graph) around a few µs of work; the price is that every block pools
//! the whole image itself (the algorithm and its numbers: the top of the .cu).

use crate::activation::cuda::act_defines;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "pool_linear.cu",
    code: include_str!("pool_linear.cu"),
};

/// Warps per block of `pool_linear_f32` (its `WARPS`).
const WARPS: usize = 16;

/// At most this many blocks per image. Each block pools the whole image from L2 at a
/// single SM's rate (~100 GB/s); the grid's ~5.5 TB/s of L2 bandwidth serves ~50 such
/// blocks before the redundant pooling slows every block down, while ~32 blocks already
/// stream the weight at HBM speed. OUT_F 1000: 32 rows a block, 32 blocks.
const MAX_BLOCKS: usize = 48;

/// The most channels `pool_linear` takes: the pooled vector lives in static shared memory
/// (32 KB of the 48 KB). Every torchvision classifier head is below it (RegNetY-128GF:
/// 7392); the planner runs a wider one as mean + linear.
pub const MAX_CHANNELS: usize = 8192;

/// The head as one CUDA launch: y = act(pooled wᵀ + bias), pooled = x.mean over H, W.
///
/// - x is `Arg::Input(0)`: (n, c, hw), that is (n, c, h, w) with hw = h * w.
/// - the pooled vector goes to `Arg::Input(1)`: (n, c). **Input(1) is written, not
///   read**: the engine passes the pool step's output slot there, so that step's output
///   stays valid for per-layer comparison though no kernel of its own runs.
/// - y is `Arg::Output`: (n, out_features).
///
/// `weight`: (out_features, c), as PyTorch; `bias`: (out_features). An error when c is
/// over [`MAX_CHANNELS`], n over 65535 (the grid's y), or a tensor has 2^31 elements or more.
pub fn pool_linear(
    n: usize,
    c: usize,
    hw: usize,
    out_features: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<CudaOp, CudaError> {
    let op = "pool_linear";
    ensure(
        n > 0 && c > 0 && hw > 0 && out_features > 0,
        op,
        format_args!("empty shape n {n} c {c} hw {hw} out {out_features}"),
    )?;
    ensure(
        c <= MAX_CHANNELS,
        op,
        format_args!("{c} channels, over {MAX_CHANNELS}"),
    )?;
    ensure(n <= 65535, op, format_args!("batch {n}, over 65535"))?;
    let len = weight.len();
    ensure(
        len == out_features * c,
        op,
        format_args!("{len} weights for {out_features} x {c}"),
    )?;
    if let Some(b) = bias {
        let len = b.len();
        ensure(
            len == out_features,
            op,
            format_args!("{len} biases for {out_features} outputs"),
        )?;
    }
    let c4 = c.next_multiple_of(4);
    // The kernel indexes with 32-bit ints.
    for (what, len) in [
        ("input", n * c * hw),
        ("weight", out_features * c4),
        ("pooled", n * c),
        ("output", n * out_features),
    ] {
        check_int_indexable(op, what, len)?;
    }
    let mut consts = vec![pad_rows(weight, c, c4)];
    consts.extend(bias.map(<[f32]>::to_vec));
    Ok(CudaOp {
        consts,
        launches: vec![launch_pool_linear_f32(
            n,
            c,
            hw,
            out_features,
            bias.is_some(),
            act,
        )],
    })
}

/// `w` (rows, c) with each row zero-padded to `c4` floats: (rows, c4), so every row
/// starts 16-byte aligned for the kernel's float4 loads.
fn pad_rows(w: &[f32], c: usize, c4: usize) -> Vec<f32> {
    let mut padded = Vec::with_capacity(w.len() / c * c4);
    for row in w.chunks_exact(c) {
        padded.extend_from_slice(row);
        padded.resize(padded.len() + c4 - c, 0.0);
    }
    padded
}

/// Grid (blocks of `rows_per_block` outputs, n), `WARPS` warps a block.
fn launch_pool_linear_f32(
    n: usize,
    c: usize,
    hw: usize,
    out_features: usize,
    bias: bool,
    act: Activation,
) -> Launch {
    let rows = rows_per_block(out_features);
    let mut args = vec![Arg::Input(0), Arg::Const(0)];
    if bias {
        args.push(Arg::Const(1));
    }
    args.extend([Arg::Input(1), Arg::Output]);
    Launch {
        source: &SOURCE,
        entry: "pool_linear_f32",
        defines: vec![
            ("C", c as i64),
            ("HW", hw as i64),
            ("OUT_F", out_features as i64),
            ("ROWS", rows as i64),
            ("GROUP", hw.next_power_of_two().min(32) as i64),
            ("HAS_BIAS", bias as i64),
        ]
        .into_iter()
        .chain(act_defines(act))
        .collect(),
        grid: [blocks(out_features, rows), n as u32, 1],
        block: [(WARPS * 32) as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}

/// Output features per block: whole warps' worth (a warp per row at a time), as few as
/// keep the grid within `MAX_BLOCKS` blocks per image.
fn rows_per_block(out_features: usize) -> usize {
    WARPS * out_features.div_ceil(WARPS * MAX_BLOCKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet_head_launch() {
        // ResNet-18: c 512, 7x7, 1000 classes, with bias.
        let w = vec![0.5; 1000 * 512];
        let op = pool_linear(1, 512, 49, 1000, &w, Some(&[0.0; 1000]), Activation::None).unwrap();
        let l = &op.launches[0];
        assert_eq!(l.entry, "pool_linear_f32");
        assert_eq!(l.grid, [32, 1, 1]);
        assert_eq!(l.block, [512, 1, 1]);
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
        assert_eq!(
            l.defines,
            [
                ("C", 512),
                ("HW", 49),
                ("OUT_F", 1000),
                ("ROWS", 32),
                ("GROUP", 32),
                ("HAS_BIAS", 1),
                ("ACT", 0)
            ]
        );
    }

    #[test]
    fn small_heads_and_padded_weight() {
        // c 7 pads each weight row to 8; hw 4 is 4 lanes a channel; 10 outputs, 1 block.
        let w: Vec<f32> = (0..70).map(|i| i as f32).collect();
        let op = pool_linear(3, 7, 4, 10, &w, None, Activation::Relu6).unwrap();
        let l = &op.launches[0];
        assert_eq!(l.grid, [1, 3, 1]);
        assert_eq!(
            l.args,
            [Arg::Input(0), Arg::Const(0), Arg::Input(1), Arg::Output]
        );
        assert!(l.defines.contains(&("GROUP", 4)));
        assert!(l.defines.contains(&("ROWS", 16)));
        assert_eq!(op.consts.len(), 1);
        assert_eq!(op.consts[0].len(), 80);
        assert_eq!(op.consts[0][8..16], [7., 8., 9., 10., 11., 12., 13., 0.]);
        // hw 1: a lane per channel; hw 9: 16 lanes.
        let op = pool_linear(1, 7, 1, 10, &w, None, Activation::None).unwrap();
        assert!(op.launches[0].defines.contains(&("GROUP", 1)));
        let op = pool_linear(1, 7, 9, 10, &w, None, Activation::None).unwrap();
        assert!(op.launches[0].defines.contains(&("GROUP", 16)));
    }

    #[test]
    fn refuses_more_channels_than_shared_memory_holds() {
        let err = pool_linear(1, 8193, 1, 1, &vec![0.0; 8193], None, Activation::None);
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("8193 channels, over 8192"), "{msg}");
    }
}
