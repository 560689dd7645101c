//! upsample on the GPU: `upsample_nearest_f32` and `upsample_bilinear_f32` in
//! `upsample.cu`, one thread per output value. The source indices and weights are the
//! params' own (`Axis`), computed here once and uploaded as constant tables, so the GPU
//! reads exactly the taps the CPU and the reference read.

use super::{UpsampleMode, UpsampleParams};
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "upsample.cu",
    code: include_str!("upsample.cu"),
};

/// Threads per block of both kernels (their `THREADS`).
const THREADS: usize = 256;

/// Largest input height or width: the tables hold source indices as f32, exact up to 2^24.
const MAX_INDEX: usize = 1 << 24;

/// x is `Arg::Input(0)`: (n, c, ih, iw); y is `Arg::Output`: (n, c, oh, ow).
///
/// Constants: nearest, `consts[0]` the source row of each output row (oh), `consts[1]`
/// the source column of each output column (ow); bilinear, per output row and column
/// `[i0, i1, l0, l1]` (oh·4, ow·4). Indices are stored as f32 values.
pub fn upsample(p: &UpsampleParams) -> Result<CudaOp, CudaError> {
    p.validate().map_err(|e| CudaError::Unsupported {
        op: "upsample".into(),
        detail: e.0,
    })?;
    // The kernels index with 32-bit ints.
    check_int_indexable("upsample", "input", p.in_len())?;
    check_int_indexable("upsample", "output", p.out_len())?;
    ensure(
        p.ih <= MAX_INDEX && p.iw <= MAX_INDEX,
        "upsample",
        format_args!("input {}x{} is over 2^24 along an axis", p.ih, p.iw),
    )?;
    let (h, w) = (p.axis(0), p.axis(1));
    let (entry, consts) = match p.mode {
        UpsampleMode::Nearest => (
            "upsample_nearest_f32",
            vec![
                (0..p.oh).map(|o| h.nearest(o) as f32).collect(),
                (0..p.ow).map(|o| w.nearest(o) as f32).collect(),
            ],
        ),
        UpsampleMode::Bilinear { .. } => {
            let table = |len: usize, axis: &super::Axis| -> Vec<f32> {
                (0..len)
                    .flat_map(|o| {
                        let t = axis.linear(o);
                        [t.i0 as f32, t.i1 as f32, t.l0, t.l1]
                    })
                    .collect()
            };
            (
                "upsample_bilinear_f32",
                vec![table(p.oh, &h), table(p.ow, &w)],
            )
        }
    };
    let nc = p.n * p.c;
    Ok(CudaOp {
        consts,
        launches: vec![Launch {
            source: &SOURCE,
            entry,
            defines: vec![
                ("NC", nc as i64),
                ("IN_H", p.ih as i64),
                ("IN_W", p.iw as i64),
                ("OUT_H", p.oh as i64),
                ("OUT_W", p.ow as i64),
            ],
            grid: [blocks(p.out_len(), THREADS), 1, 1],
            block: [THREADS as u32, 1, 1],
            shared_bytes: 0,
            args: vec![Arg::Input(0), Arg::Const(0), Arg::Const(1), Arg::Output],
        }],
    })
}
