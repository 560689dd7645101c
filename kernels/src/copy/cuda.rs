//! The strided copy on the GPU, in `copy.cu`: `copy_transpose_f32`, 32×32 tiles through
//! shared memory, when the innermost pair of dims is a transpose (x stride 1 on the row
//! dim, as NCHW <-> NHWC permutes have), so that both the reads and the writes coalesce;
//! `copy_f32`, a thread per output element, otherwise.

use super::{CopyParams, MAX_DIMS};
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "copy.cu",
    code: include_str!("copy.cu"),
};

/// Threads per block of `copy_f32` (the kernel's `THREADS`).
const THREADS: usize = 256;

/// The transpose kernel's tile side (its `TILE`).
const TILE: usize = 32;
/// Rows of threads per block of the transpose kernel (its `ROWS`): TILE × ROWS threads.
const ROWS: usize = 8;

/// The transpose kernel goes only to pairs at least this long on both sides: on a
/// narrower one most of each tile's threads would idle, where `copy_f32`'s reads of a
/// short transposed dim still share cache lines.
const TRANSPOSE_MIN: usize = 16;

/// Most blocks along a grid's y and z (the CUDA limit).
const GRID_YZ_MAX: usize = 65_535;

/// x is `Arg::Input(0)` (at least `p.span()` long), y is `Arg::Output` (`p.dims`). An
/// error (`CudaError::Unsupported`) past `MAX_DIMS` merged dims or 32-bit indices. An
/// empty output launches nothing.
pub fn copy(p: &CopyParams) -> Result<CudaOp, CudaError> {
    let rank = p.dims.len();
    ensure(
        rank <= MAX_DIMS,
        "copy",
        format_args!("{rank} dims after merging, over {MAX_DIMS}"),
    )?;
    check_int_indexable("copy", "output", p.len())?;
    check_int_indexable("copy", "input's span", p.span())?;
    if p.is_empty() {
        return Ok(CudaOp::default());
    }
    let transpose = launch_copy_transpose_f32(p).filter(|_| {
        let (r, c) = (p.dims[rank - 2], p.dims[rank - 1]);
        r >= TRANSPOSE_MIN && c >= TRANSPOSE_MIN
    });
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![transpose.unwrap_or_else(|| launch_copy_f32(p))],
    })
}

/// One thread per output element, `THREADS` a block. `p` has at most `MAX_DIMS` dims.
pub(crate) fn launch_copy_f32(p: &CopyParams) -> Launch {
    let mut defines = vec![
        ("LEN", p.len() as i64),
        ("OFFSET", p.offset as i64),
        ("TRANSPOSE", 0),
    ];
    defines.extend(padded(["D0", "D1", "D2", "D3", "D4", "D5"], &p.dims, 1));
    defines.extend(padded(["S0", "S1", "S2", "S3", "S4", "S5"], &p.strides, 0));
    Launch {
        source: &SOURCE,
        entry: "copy_f32",
        defines,
        grid: [blocks(p.len(), THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    }
}

/// A block per 32×32 tile of (R, C) and outer index, when the innermost pair is a
/// transpose (x strides (·, 1, sc ≠ 1)) and the grid fits; None otherwise.
pub(crate) fn launch_copy_transpose_f32(p: &CopyParams) -> Option<Launch> {
    let rank = p.dims.len();
    if rank < 2 || p.strides[rank - 2] != 1 || p.strides[rank - 1] == 1 {
        return None;
    }
    let (r, c) = (p.dims[rank - 2], p.dims[rank - 1]);
    let outer = p.len() / (r * c);
    if outer > GRID_YZ_MAX || r.div_ceil(TILE) > GRID_YZ_MAX {
        return None;
    }
    let mut defines = vec![
        ("LEN", p.len() as i64),
        ("OFFSET", p.offset as i64),
        ("TRANSPOSE", 1),
        ("R", r as i64),
        ("C", c as i64),
        ("SC", p.strides[rank - 1] as i64),
    ];
    defines.extend(padded(["O0", "O1", "O2", "O3"], &p.dims[..rank - 2], 1));
    defines.extend(padded(
        ["OS0", "OS1", "OS2", "OS3"],
        &p.strides[..rank - 2],
        0,
    ));
    Some(Launch {
        source: &SOURCE,
        entry: "copy_transpose_f32",
        defines,
        grid: [blocks(c, TILE), blocks(r, TILE), outer as u32],
        block: [TILE as u32, ROWS as u32, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    })
}

/// `names[k]` = `values` right-aligned in `names`, `fill` in front.
fn padded<'a, const N: usize>(
    names: [&'static str; N],
    values: &'a [usize],
    fill: usize,
) -> impl Iterator<Item = (&'static str, i64)> + 'a {
    let pad = N - values.len();
    names.into_iter().enumerate().map(move |(k, name)| {
        let v = if k < pad { fill } else { values[k - pad] };
        (name, v as i64)
    })
}
