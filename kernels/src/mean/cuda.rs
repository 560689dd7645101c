//! Mean over H and W on the GPU: `mean_hw_f32` in `mean.cu`, a block per (image, channel)
//! plane with a shuffle + shared-memory reduction.

use super::MeanParams;
use crate::cuda::{check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "mean.cu",
    code: include_str!("mean.cu"),
};

/// At most this many threads per block: a plane of 256 values or fewer is one load per
/// thread, and a larger one is a few coalesced loads per thread.
const MAX_THREADS: usize = 256;

/// x is `Arg::Input(0)`: (n, c, h, w); y is `Arg::Output`: (n, c).
pub fn mean_hw(p: &MeanParams) -> Result<CudaOp, CudaError> {
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![launch_mean_hw_f32(p)?],
    })
}

/// A block per plane, with as many whole warps as the plane needs up to `MAX_THREADS`
/// (ResNet's 7×7 head: 49 values, 64 threads).
fn launch_mean_hw_f32(p: &MeanParams) -> Result<Launch, CudaError> {
    let (planes, plane) = (p.n * p.c, p.h * p.w);
    // The kernel indexes with 32-bit ints.
    check_int_indexable("mean", "input", planes * plane)?;
    let threads = plane.next_multiple_of(32).min(MAX_THREADS);
    Ok(Launch {
        source: &SOURCE,
        entry: "mean_hw_f32",
        defines: vec![
            ("NC", planes as i64),
            ("PLANE", plane as i64),
            ("THREADS", threads as i64),
        ],
        grid: [planes as u32, 1, 1],
        block: [threads as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    })
}
