//! adaptive_avg_pool2d on the GPU: `adaptive_avg_pool2d_f32` in `adaptive_avg_pool2d.cu`,
//! one thread per output value averaging its PyTorch window.

use super::AdaptiveAvgPool2dParams;
use crate::cuda::{blocks, check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "adaptive_avg_pool2d.cu",
    code: include_str!("adaptive_avg_pool2d.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// x is `Arg::Input(0)`: (n, c, h, w); y is `Arg::Output`: `(n, c, out[0], out[1])`.
pub fn adaptive_avg_pool2d(p: &AdaptiveAvgPool2dParams) -> Result<CudaOp, CudaError> {
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![launch_adaptive_avg_pool2d_f32(p)?],
    })
}

/// One thread per output value, `THREADS` a block.
fn launch_adaptive_avg_pool2d_f32(p: &AdaptiveAvgPool2dParams) -> Result<Launch, CudaError> {
    let [n, c, oh, ow] = p.output_shape();
    // The kernel indexes with 32-bit ints.
    for (what, len) in [("input", n * c * p.h * p.w), ("output", n * c * oh * ow)] {
        check_int_indexable("adaptive_avg_pool2d", what, len)?;
    }
    Ok(Launch {
        source: &SOURCE,
        entry: "adaptive_avg_pool2d_f32",
        defines: vec![
            ("NC", (n * c) as i64),
            ("IN_H", p.h as i64),
            ("IN_W", p.w as i64),
            ("OUT_H", oh as i64),
            ("OUT_W", ow as i64),
        ],
        grid: [blocks(n * c * oh * ow, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    })
}
