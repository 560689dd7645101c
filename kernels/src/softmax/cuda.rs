//! Softmax on the GPU, in `softmax.cu`: `softmax_block_f32`, a block per line, when lines
//! are contiguous or long; `softmax_thread_f32`, a thread per line, when they are short
//! and interleaved (INNER >= 32: a warp's loads are then coalesced).

use super::SoftmaxParams;
use crate::cuda::{blocks, check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "softmax.cu",
    code: include_str!("softmax.cu"),
};

/// At most this many threads per block of `softmax_block_f32`: (n, 1000) logits are
/// four elements per thread.
const MAX_BLOCK_THREADS: usize = 256;

/// Threads per block of `softmax_thread_f32`.
const THREAD_KERNEL_THREADS: usize = 256;

/// Lines at least this many apart, of at most `THREAD_KERNEL_MAX_AXIS` values, go one per
/// thread: a warp's 32 loads of one step then fall in one 128-byte line.
const THREAD_KERNEL_MIN_INNER: usize = 32;

/// Longer lines go one per block even when interleaved, so that no thread walks more
/// than 3×1024 values alone.
const THREAD_KERNEL_MAX_AXIS: usize = 1024;

/// x is `Arg::Input(0)`, y is `Arg::Output`: both (outer, axis, inner).
pub fn softmax(p: &SoftmaxParams) -> Result<CudaOp, CudaError> {
    let len = p.outer * p.axis * p.inner;
    // The kernels index with 32-bit ints.
    check_int_indexable("softmax", "input", len)?;
    let launch = if p.inner >= THREAD_KERNEL_MIN_INNER && p.axis <= THREAD_KERNEL_MAX_AXIS {
        launch_softmax_thread_f32(p)
    } else {
        launch_softmax_block_f32(p)
    };
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![launch],
    })
}

fn shape_defines(p: &SoftmaxParams) -> Vec<(&'static str, i64)> {
    vec![
        ("OUTER", p.outer as i64),
        ("AXIS", p.axis as i64),
        ("INNER", p.inner as i64),
    ]
}

/// A block per line, as many whole warps as the line needs up to `MAX_BLOCK_THREADS`.
pub(crate) fn launch_softmax_block_f32(p: &SoftmaxParams) -> Launch {
    let threads = p.axis.next_multiple_of(32).min(MAX_BLOCK_THREADS);
    let mut defines = shape_defines(p);
    defines.extend([("THREADS", threads as i64), ("BLOCK_PER_LINE", 1)]);
    Launch {
        source: &SOURCE,
        entry: "softmax_block_f32",
        defines,
        grid: [(p.outer * p.inner) as u32, 1, 1],
        block: [threads as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    }
}

/// A thread per line, `THREAD_KERNEL_THREADS` a block.
pub(crate) fn launch_softmax_thread_f32(p: &SoftmaxParams) -> Launch {
    let mut defines = shape_defines(p);
    defines.extend([
        ("THREADS", THREAD_KERNEL_THREADS as i64),
        ("BLOCK_PER_LINE", 0),
    ]);
    Launch {
        source: &SOURCE,
        entry: "softmax_thread_f32",
        defines,
        grid: [blocks(p.outer * p.inner, THREAD_KERNEL_THREADS), 1, 1],
        block: [THREAD_KERNEL_THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    }
}
