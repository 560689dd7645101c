//! The strided copy on the CPU. The output is walked as rows (its innermost dim, C long,
//! x stride `sc`) under a row odometer:
//!
//! - sc == 1: each row is one run of x, a `copy_from_slice` (a memcpy);
//! - the row before has x stride 1 instead (a transpose of the innermost pair: NCHW <->
//!   NHWC permutes land here, e.g. (1, 3136, 96) strides (·, 1, 3136)): blocked in strips
//!   of `STRIP` rows of y, each column of a strip one run of STRIP elements of x; the STRIP
//!   rows of y being written stay in L1, and each line of x is read once per strip;
//! - otherwise a gather along the row.
//!
//! Work is split over threads in units that own a contiguous part of y: pieces of at most
//! `PIECE` elements of a row, or for a transpose `STRIP` rows of one outer index.

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;

use super::CopyParams;

/// Elements of y per unit of work for the row copies: long rows are split into pieces
/// this long, so that one long row still spreads over threads.
const PIECE: usize = 16 * 1024;

/// Rows of y per strip of a transpose: a column of the strip is 128 B of x (two lines),
/// and the strip's rows keep 32 lines of y in L1.
const STRIP: usize = 32;

/// A task under this many elements costs more to hand to another thread than to run
/// (a 256 KB copy takes ~10 µs, a few wake-ups).
const MIN_TASK: usize = 64 * 1024;

/// As `reference::copy`: moves bits, NaN payloads included. x must span `p.span()`.
pub fn copy(p: &CopyParams, x: &[f32], y: &mut [f32], threads: usize) {
    // x: (≥ p.span())  y: (p.dims)
    p.check(x, y);
    if y.is_empty() {
        return;
    }
    let rank = p.dims.len();
    let transpose = rank >= 2 && p.strides[rank - 2] == 1 && p.strides[rank - 1] != 1;
    let walk = match transpose {
        true => Walk::Strips(Strips::new(p)),
        false => Walk::Rows(Rows::new(p)),
    };
    let units = walk.units();
    let tasks = threads.clamp(1, units).min(p.len().div_ceil(MIN_TASK));
    let y = SharedMut::new(y);
    for_each_task(threads, tasks, |t| {
        let (u0, u1) = (units * t / tasks, units * (t + 1) / tasks);
        let (start, end) = (walk.y_start(u0), walk.y_start(u1));
        // SAFETY: the units of different tasks own disjoint ranges of y (y_start is
        // increasing); this task writes only y[start..end].
        let y_t = unsafe { y.part(start, end - start) };
        match &walk {
            Walk::Rows(rows) => rows.run(p, u0..u1, x, y_t),
            Walk::Strips(strips) => strips.run(p, u0..u1, x, y_t),
        }
    });
}

/// How the output is walked.
enum Walk {
    Rows(Rows),
    Strips(Strips),
}

impl Walk {
    fn units(&self) -> usize {
        match self {
            Walk::Rows(r) => r.rows * r.pieces,
            Walk::Strips(t) => t.outer * t.strips,
        }
    }

    /// Where unit `u`'s part of y starts (`units()` gives y's length).
    fn y_start(&self, u: usize) -> usize {
        match self {
            Walk::Rows(r) => u / r.pieces * r.c + u % r.pieces * PIECE,
            Walk::Strips(t) => (u / t.strips * t.r + u % t.strips * STRIP) * t.c,
        }
    }
}

/// y as rows of the innermost dim, C long, x stride `sc`; unit u is piece `u % pieces` of
/// row `u / pieces`.
struct Rows {
    rows: usize,
    c: usize,
    sc: usize,
    pieces: usize,
}

impl Rows {
    fn new(p: &CopyParams) -> Rows {
        let (c, sc) = (p.dims[p.dims.len() - 1], p.strides[p.dims.len() - 1]);
        Rows {
            rows: p.len() / c,
            c,
            sc,
            pieces: c.div_ceil(PIECE),
        }
    }

    /// Units `units`, y_t their part of y.
    fn run(&self, p: &CopyParams, units: std::ops::Range<usize>, x: &[f32], y_t: &mut [f32]) {
        if units.is_empty() {
            return;
        }
        let (first, last) = (units.start / self.pieces, (units.end - 1) / self.pieces);
        let mut odometer = Odometer::new(p, first);
        let mut at = 0;
        for row in first..=last {
            let c0 = match row == first {
                true => units.start % self.pieces * PIECE,
                false => 0,
            };
            let c1 = match row == last {
                true => ((units.end - 1) % self.pieces * PIECE + PIECE).min(self.c),
                false => self.c,
            };
            let out = &mut y_t[at..at + c1 - c0];
            let base = odometer.offset + c0 * self.sc;
            if self.sc == 1 {
                out.copy_from_slice(&x[base..base + out.len()]);
            } else {
                let x_row = &x[base..base + (out.len() - 1) * self.sc + 1];
                for (j, v) in out.iter_mut().enumerate() {
                    *v = x_row[j * self.sc];
                }
            }
            at += c1 - c0;
            odometer.next(p);
        }
    }
}

/// y as (outer, R, C) with x strides (·, 1, sc): unit u is rows `STRIP·(u % strips)..` of
/// outer index `u / strips`, a strip copied column by column.
struct Strips {
    outer: usize,
    r: usize,
    c: usize,
    sc: usize,
    strips: usize,
}

impl Strips {
    fn new(p: &CopyParams) -> Strips {
        let rank = p.dims.len();
        let (r, c) = (p.dims[rank - 2], p.dims[rank - 1]);
        Strips {
            outer: p.len() / (r * c),
            r,
            c,
            sc: p.strides[rank - 1],
            strips: r.div_ceil(STRIP),
        }
    }

    /// Units `units`, y_t their part of y.
    fn run(&self, p: &CopyParams, units: std::ops::Range<usize>, x: &[f32], y_t: &mut [f32]) {
        let mut at = 0;
        for u in units {
            let (o, r0) = (u / self.strips, u % self.strips * STRIP);
            let rows = (self.r - r0).min(STRIP);
            // Output row o·R + r0 of the dims before the innermost: outer index o, row r0.
            let base = p.offset_of((o * self.r + r0) * self.c, p.dims.len());
            let y_u = &mut y_t[at..at + rows * self.c];
            for c in 0..self.c {
                // Column c of the strip: `rows` consecutive elements of x.
                let x_c = &x[base + c * self.sc..base + c * self.sc + rows];
                for (r, &v) in x_c.iter().enumerate() {
                    y_u[r * self.c + c] = v;
                }
            }
            at += rows * self.c;
        }
    }
}

/// x's offset of consecutive output rows (every dim but the innermost): adding the stride
/// of the row dim, and from the indices again (divisions) when it wraps.
struct Odometer {
    /// Output row.
    row: usize,
    /// Its index in the row dim (the one before the innermost).
    i: usize,
    /// Its x offset.
    offset: usize,
}

impl Odometer {
    fn new(p: &CopyParams, row: usize) -> Odometer {
        let rank = p.dims.len();
        Odometer {
            row,
            i: if rank >= 2 { row % p.dims[rank - 2] } else { 0 },
            offset: p.offset_of(row, rank - 1),
        }
    }

    fn next(&mut self, p: &CopyParams) {
        let rank = p.dims.len();
        self.row += 1;
        if rank < 2 {
            return;
        }
        self.i += 1;
        if self.i == p.dims[rank - 2] {
            *self = Odometer::new(p, self.row);
        } else {
            self.offset += p.strides[rank - 2];
        }
    }
}
