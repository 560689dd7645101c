//! Concat on the GPU: `concat_part_f32` in `concat.cu`, launched once per input, each
//! copying input i, viewed as `(outer, inner[i])`, into its columns of the output viewed as
//! (outer, sum(inner)): `reference::concat_part`'s semantics.

use crate::cuda::{blocks, check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "concat.cu",
    code: include_str!("concat.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// Input i is `Arg::Input(i)`: `(outer, inner[i])`; y is `Arg::Output`: (outer, sum(inner)).
/// An empty input launches nothing.
pub fn concat(outer: usize, inner: &[usize]) -> Result<CudaOp, CudaError> {
    let total: usize = inner.iter().sum();
    // The kernel indexes the output with 32-bit ints.
    check_int_indexable("concat", "output", outer * total)?;
    let mut launches = Vec::new();
    let mut at = 0;
    for (i, &len) in inner.iter().enumerate() {
        if outer * len > 0 {
            launches.push(launch_concat_part_f32(i, outer, len, at, total));
        }
        at += len;
    }
    Ok(CudaOp {
        consts: Vec::new(),
        launches,
    })
}

/// Input `i`, (outer, inner), to columns [at, at + inner) of (outer, total): one thread
/// per element of the input, `THREADS` a block.
fn launch_concat_part_f32(i: usize, outer: usize, inner: usize, at: usize, total: usize) -> Launch {
    Launch {
        source: &SOURCE,
        entry: "concat_part_f32",
        defines: vec![
            ("OUTER", outer as i64),
            ("INNER", inner as i64),
            ("AT", at as i64),
            ("TOTAL", total as i64),
        ],
        grid: [blocks(outer * inner, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(i), Arg::Output],
    }
}
