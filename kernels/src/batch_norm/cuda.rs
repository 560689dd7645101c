//! Standalone inference batch norm on the GPU: `batch_norm_f32` in `batch_norm.cu`,
//! `y = x·scale[c] + shift[c]`, one thread per element. Most batch norms never get here:
//! the engine folds them into the conv before them.

use super::BatchNormParams;
use crate::activation::cuda::eltwise_len;
use crate::cuda::{blocks, ensure, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "batch_norm.cu",
    code: include_str!("batch_norm.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// x is `Arg::Input(0)`, y is `Arg::Output`: both (n, c, spatial). `scale` and `shift`
/// (c), from [`super::scale_shift`], become `Arg::Const(0)` and `Arg::Const(1)`.
pub fn scale_shift(p: &BatchNormParams, scale: &[f32], shift: &[f32]) -> Result<CudaOp, CudaError> {
    for (what, v) in [("scale", scale), ("shift", shift)] {
        let len = v.len();
        ensure(
            len == p.c,
            "batch_norm",
            format_args!("{what} has {len} values for {} channels", p.c),
        )?;
    }
    Ok(CudaOp {
        consts: vec![scale.to_vec(), shift.to_vec()],
        launches: vec![launch_batch_norm_f32(p)?],
    })
}

/// One thread per element, `THREADS` a block.
fn launch_batch_norm_f32(p: &BatchNormParams) -> Result<Launch, CudaError> {
    let len = p.n * p.c * p.spatial;
    Ok(Launch {
        source: &SOURCE,
        entry: "batch_norm_f32",
        defines: vec![
            ("C", p.c as i64),
            ("SPATIAL", p.spatial as i64),
            ("LEN", eltwise_len("batch_norm", len)?),
        ],
        grid: [blocks(len, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Const(0), Arg::Const(1), Arg::Output],
    })
}
