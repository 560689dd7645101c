//! Layer norm on the GPU, in `layer_norm.cu`: `layer_norm_block_f32`, a block per line,
//! when lines are contiguous (inner == 1) or long; `layer_norm_thread_f32`, a thread per
//! line, when they are interleaved (inner >= 32: a warp's loads are then coalesced) and
//! short enough for one thread.

use super::LayerNormParams;
use crate::activation::cuda::act_defines;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "layer_norm.cu",
    code: include_str!("layer_norm.cu"),
};

/// At most this many threads per block of `layer_norm_block_f32`: a line of 768 (a
/// transformer's width) is three elements per thread.
const MAX_BLOCK_THREADS: usize = 256;

/// Threads per block of `layer_norm_thread_f32`.
const THREAD_KERNEL_THREADS: usize = 256;

/// Lines at least this many apart, of at most `THREAD_KERNEL_MAX_NORM` values, go one per
/// thread: a warp's 32 loads of one step then fall in one 128-byte line.
const THREAD_KERNEL_MIN_INNER: usize = 32;

/// Longer lines go one per block even when interleaved, so that no thread walks more
/// than 3×1024 values alone.
const THREAD_KERNEL_MAX_NORM: usize = 1024;

/// x is `Arg::Input(0)`, y is `Arg::Output`: both (outer, norm, inner). weight and bias
/// (norm), when given, are the op's constants in that order: `consts[0]` is weight if
/// there is one, else bias. y may be given x's storage (in place).
pub fn layer_norm(
    p: &LayerNormParams,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<CudaOp, CudaError> {
    for (what, v) in [("weight", weight), ("bias", bias)] {
        if let Some(v) = v {
            let len = v.len();
            ensure(
                len == p.norm,
                "layer_norm",
                format_args!("{what} has {len} values for a norm of {}", p.norm),
            )?;
        }
    }
    // The kernels index with 32-bit ints.
    check_int_indexable("layer_norm", "input", p.len())?;
    let consts: Vec<Vec<f32>> = [weight, bias]
        .into_iter()
        .flatten()
        .map(<[f32]>::to_vec)
        .collect();
    let thread_per_line = p.inner >= THREAD_KERNEL_MIN_INNER && p.norm <= THREAD_KERNEL_MAX_NORM;
    let launch = match thread_per_line {
        true => launch_layer_norm_thread_f32(p, weight.is_some(), bias.is_some(), act),
        false => launch_layer_norm_block_f32(p, weight.is_some(), bias.is_some(), act),
    };
    Ok(CudaOp {
        consts,
        launches: vec![launch],
    })
}

/// The defines and arguments both kernels share.
fn common(
    p: &LayerNormParams,
    weight: bool,
    bias: bool,
    act: Activation,
) -> (Vec<(&'static str, i64)>, Vec<Arg>) {
    let mut defines = vec![
        ("OUTER", p.outer as i64),
        ("NORM", p.norm as i64),
        ("INNER", p.inner as i64),
        ("EPS", p.eps.to_bits() as i32 as i64),
        ("HAS_WEIGHT", weight as i64),
        ("HAS_BIAS", bias as i64),
    ];
    defines.extend(act_defines(act));
    let mut args = vec![Arg::Input(0)];
    args.extend((0..weight as usize + bias as usize).map(Arg::Const));
    args.push(Arg::Output);
    (defines, args)
}

/// A block per line, as many whole warps as the line needs up to `MAX_BLOCK_THREADS`.
pub(crate) fn launch_layer_norm_block_f32(
    p: &LayerNormParams,
    weight: bool,
    bias: bool,
    act: Activation,
) -> Launch {
    let threads = p.norm.next_multiple_of(32).min(MAX_BLOCK_THREADS);
    let (mut defines, args) = common(p, weight, bias, act);
    defines.extend([("THREADS", threads as i64), ("BLOCK_PER_LINE", 1)]);
    Launch {
        source: &SOURCE,
        entry: "layer_norm_block_f32",
        defines,
        grid: [(p.outer * p.inner) as u32, 1, 1],
        block: [threads as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}

/// A thread per line, `THREAD_KERNEL_THREADS` a block.
pub(crate) fn launch_layer_norm_thread_f32(
    p: &LayerNormParams,
    weight: bool,
    bias: bool,
    act: Activation,
) -> Launch {
    let (mut defines, args) = common(p, weight, bias, act);
    defines.extend([
        ("THREADS", THREAD_KERNEL_THREADS as i64),
        ("BLOCK_PER_LINE", 0),
    ]);
    Launch {
        source: &SOURCE,
        entry: "layer_norm_thread_f32",
        defines,
        grid: [blocks(p.outer * p.inner, THREAD_KERNEL_THREADS), 1, 1],
        block: [THREAD_KERNEL_THREADS as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}
