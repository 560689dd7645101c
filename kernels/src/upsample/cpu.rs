//! upsample on the CPU, bit for bit the reference. Output rows (n·c·oh of them) split
//! into contiguous ranges over threads; each range is swept in column chunks of up to
//! `COLS`, whose source indices and weights go into tables on the stack once per chunk
//! (no allocation, and no index arithmetic per output).
//!
//! Nearest: each output row gathers its source row through the column table, or copies
//! the output row above when both read the same source row (every other row at ×2).
//! When every column's source is ox / 2 (×2 along w, YOLO's upsample) the gather is a
//! plain duplication of each input value, which the compiler vectorises.
//!
//! Bilinear, separably as OpenCV's resize: the horizontal pass lerps a source row along
//! w into a row buffer (`t_r = x[r][i0]·l0 + x[r][i1]·l1`, a scalar gather), the vertical
//! pass lerps two such buffers into the output row with SIMD along ow. The two buffers
//! keep the last two source rows, so each source row's horizontal pass runs once per
//! chunk, not once per output row that reads it (twice at ×2).

use std::ops::Range;

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::Isa;

use super::{lerp, Axis, UpsampleMode, UpsampleParams};

/// Columns per chunk: the tables and row buffers take 16 KiB of stack.
const COLS: usize = 512;

/// As `reference::upsample`, bit for bit.
pub fn upsample(isa: Isa, p: &UpsampleParams, x: &[f32], y: &mut [f32], threads: usize) {
    // x: (n, c, ih, iw)  y: (n, c, oh, ow)
    assert_eq!(x.len(), p.in_len(), "upsample: x length");
    assert_eq!(y.len(), p.out_len(), "upsample: y length");
    let rows = p.n * p.c * p.oh;
    let tasks = threads.clamp(1, rows);
    let (h, w) = (p.axis(0), p.axis(1));
    let double_w = p.mode == UpsampleMode::Nearest && w.nearest_is_double();
    let y = SharedMut::new(y);
    for_each_task(threads, tasks, |t| {
        let range = rows * t / tasks..rows * (t + 1) / tasks;
        // SAFETY: tasks own disjoint ranges of output rows.
        let y_t = unsafe { y.part(range.start * p.ow, range.len() * p.ow) };
        let rows = Rows { p, h, w, range };
        // SAFETY: dispatch! checks the ISA; the bodies take slices (lengths asserted).
        unsafe {
            match p.mode {
                UpsampleMode::Nearest => dispatch!(isa, nearest_rows(&rows, double_w, x, y_t)),
                UpsampleMode::Bilinear { .. } => dispatch!(isa, bilinear_rows(&rows, x, y_t)),
            }
        }
    });
}

/// One task's output rows: `range` of the n·c·oh rows, with both axes' rules.
struct Rows<'a> {
    p: &'a UpsampleParams,
    h: Axis,
    w: Axis,
    range: Range<usize>,
}

impl Rows<'_> {
    /// (k, offset in x of the plane of row r) for the k-th row r of the range, and its oy.
    fn iter(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let (oh, plane) = (self.p.oh, self.p.ih * self.p.iw);
        self.range
            .clone()
            .enumerate()
            .map(move |(k, r)| (k, r / oh * plane, r % oh))
    }
}

/// The column chunks of a row: (first column, columns).
fn chunks(ow: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..ow).step_by(COLS).map(move |c0| (c0, COLS.min(ow - c0)))
}

/// Needs S's features. y_t: (rows.range.len(), ow)
#[inline(always)]
unsafe fn nearest_rows<S: Simd>(rows: &Rows, double_w: bool, x: &[f32], y_t: &mut [f32]) {
    let (iw, ow) = (rows.p.iw, rows.p.ow);
    let mut src_col = [0usize; COLS];
    for (c0, n) in chunks(ow) {
        if !double_w {
            for (j, s) in src_col[..n].iter_mut().enumerate() {
                *s = rows.w.nearest(c0 + j);
            }
        }
        // (source row offset in x, output row k) of the last row gathered.
        let mut last: Option<(usize, usize)> = None;
        for (k, plane, oy) in rows.iter() {
            let src = plane + rows.h.nearest(oy) * iw;
            match last {
                Some((s, prev)) if s == src => {
                    y_t.copy_within(prev * ow + c0..prev * ow + c0 + n, k * ow + c0);
                }
                _ => {
                    let x_row = &x[src..][..iw];
                    let out = &mut y_t[k * ow + c0..][..n];
                    if double_w {
                        // c0 and n are even: ow = 2·iw and COLS is even.
                        for (pair, v) in out.chunks_exact_mut(2).zip(&x_row[c0 / 2..]) {
                            pair[0] = *v;
                            pair[1] = *v;
                        }
                    } else {
                        for (o, &s) in out.iter_mut().zip(&src_col[..n]) {
                            *o = x_row[s];
                        }
                    }
                    last = Some((src, k));
                }
            }
        }
    }
}

/// A chunk's column taps: source columns and weights per output column.
struct ColTaps {
    i0: [usize; COLS],
    i1: [usize; COLS],
    l0: [f32; COLS],
    l1: [f32; COLS],
}

impl ColTaps {
    /// out[j] = x_row[i0[j]]·l0[j] + x_row[i1[j]]·l1[j]: the horizontal pass of one row.
    #[inline(always)]
    fn lerp_row(&self, x_row: &[f32], out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = lerp(x_row[self.i0[j]], x_row[self.i1[j]], self.l0[j], self.l1[j]);
        }
    }
}

/// Needs S's features. y_t: (rows.range.len(), ow)
#[inline(always)]
unsafe fn bilinear_rows<S: Simd>(rows: &Rows, x: &[f32], y_t: &mut [f32]) {
    let (iw, ow) = (rows.p.iw, rows.p.ow);
    let mut taps = ColTaps {
        i0: [0; COLS],
        i1: [0; COLS],
        l0: [0.0; COLS],
        l1: [0.0; COLS],
    };
    // Two horizontally lerped source rows, and which (offset in x) each holds.
    let mut bufs = [[0.0f32; COLS]; 2];
    for (c0, n) in chunks(ow) {
        for j in 0..n {
            let t = rows.w.linear(c0 + j);
            (taps.i0[j], taps.i1[j], taps.l0[j], taps.l1[j]) = (t.i0, t.i1, t.l0, t.l1);
        }
        let mut held: [Option<usize>; 2] = [None; 2];
        for (k, plane, oy) in rows.iter() {
            let th = rows.h.linear(oy);
            let need = [plane + th.i0 * iw, plane + th.i1 * iw];
            // pick[s]: the buffer holding source row need[s], lerped now if none does.
            let mut pick = [0usize; 2];
            for s in 0..2 {
                pick[s] = match held.iter().position(|h| *h == Some(need[s])) {
                    Some(b) => b,
                    None => {
                        // Keep the buffer the other row needs.
                        let free = match s {
                            0 => usize::from(held[0] == Some(need[1])),
                            _ => 1 - pick[0],
                        };
                        taps.lerp_row(&x[need[s]..][..iw], &mut bufs[free][..n]);
                        held[free] = Some(need[s]);
                        free
                    }
                };
            }
            let out = &mut y_t[k * ow + c0..][..n];
            vertical::<S>(&bufs[pick[0]][..n], &bufs[pick[1]][..n], th.l0, th.l1, out);
        }
    }
}

/// out = a·l0 + b·l1 along the row: S::LANES at a time, then a scalar tail; the same
/// two roundings per product and one per sum as `lerp`, so every ISA gives its bits.
#[inline(always)]
unsafe fn vertical<S: Simd>(a: &[f32], b: &[f32], l0: f32, l1: f32, out: &mut [f32]) {
    let n = out.len();
    let (w0, w1) = (S::splat(l0), S::splat(l1));
    let mut j = 0;
    while j + S::LANES <= n {
        let va = S::mul(S::load(a[j..].as_ptr()), w0);
        let vb = S::mul(S::load(b[j..].as_ptr()), w1);
        S::store(out[j..].as_mut_ptr(), S::add(va, vb));
        j += S::LANES;
    }
    for j in j..n {
        out[j] = lerp(a[j], b[j], l0, l1);
    }
}
