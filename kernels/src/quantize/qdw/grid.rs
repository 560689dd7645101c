//! One plane's output: the taps' sums over the grid (`layout.rs`), vector by vector, then
//! requantized (`requant.rs`) and stored to the output row by row.
//!
//! The sums are f32 FMAs of integer-valued floats: |q − zp| ≤ 255 and |w| ≤ 128, so a
//! product is at most 32640 and a sum of up to `MAX_TAPS` of them stays below 2^24, where
//! every integer is a float: each FMA is exact, and so is the sum in any order. Each vector
//! sums its taps in two halves (even and odd taps) and each step runs `U` vectors, so that
//! 2·U chains of FMAs overlap.

use std::ops::Range;

use super::layout::Layout;
use super::requant::{Out, Requant};
use crate::simd::Simd;

/// Most taps whose sums stay exact in f32: 514 · 255 · 128 < 2^24 ≤ 515 · 255 · 128.
pub const MAX_TAPS: usize = (1 << 24) / (255 * 128);

/// Vectors per step.
const U: usize = 4;

/// A plane's taps: the sums of U vectors of the grid.
pub(super) trait Taps<S: Simd> {
    /// The sums of the grid's vectors at `xq`, `xq + LANES`, … (N of them). Needs S's
    /// features; xq's runs at every tap offset hold N·LANES floats.
    unsafe fn sums<const N: usize>(&self, xq: *const f32) -> [S::V; N];
}

/// T taps (3×3, 5×5: any stride, pad or dilation), the loop unrolled; each weight
/// broadcast from memory as it is read, one load per N vectors' loads and FMAs (splatted
/// into registers once per plane, the 25 of a 5×5 cost more than a 7×7 plane's sums).
pub(super) struct Fixed<'a, const T: usize> {
    pub offs: &'a [usize; T],
    pub w: &'a [f32; T],
}

impl<S: Simd, const T: usize> Taps<S> for Fixed<'_, T> {
    #[inline(always)]
    unsafe fn sums<const N: usize>(&self, xq: *const f32) -> [S::V; N] {
        pairs::<S, N>(xq, T, |t| (self.offs[t], S::splat(self.w[t])))
    }
}

/// Any taps, as `Fixed`.
pub(super) struct Any<'a> {
    pub offs: &'a [usize],
    pub w: &'a [f32],
}

impl<S: Simd> Taps<S> for Any<'_> {
    #[inline(always)]
    unsafe fn sums<const N: usize>(&self, xq: *const f32) -> [S::V; N] {
        pairs::<S, N>(xq, self.offs.len(), |t| (self.offs[t], S::splat(self.w[t])))
    }
}

/// The sums of N vectors at xq over `taps` taps, tap t's offset and weight `tap(t)`: even
/// taps into one set of accumulators, odd ones into another, two taps per loop step (so
/// that the accumulators stay in registers where the loop is not unrolled: choosing the
/// set per tap put them on the stack, and a 5×5 ran 5× slower).
#[inline(always)]
unsafe fn pairs<S: Simd, const N: usize>(
    xq: *const f32,
    taps: usize,
    tap: impl Fn(usize) -> (usize, S::V),
) -> [S::V; N] {
    let zero = S::splat(0.0);
    let (mut even, mut odd) = ([zero; N], [zero; N]);
    let l = S::LANES;
    let mut t = 0;
    while t + 2 <= taps {
        let ((o0, w0), (o1, w1)) = (tap(t), tap(t + 1));
        let (p0, p1) = (xq.add(o0), xq.add(o1));
        for u in 0..N {
            even[u] = S::fma(w0, S::load(p0.add(u * l)), even[u]);
            odd[u] = S::fma(w1, S::load(p1.add(u * l)), odd[u]);
        }
        t += 2;
    }
    if t < taps {
        let (o, w) = tap(t);
        for (u, acc) in even.iter_mut().enumerate() {
            *acc = S::fma(w, S::load(xq.add(o + u * l)), *acc);
        }
    }
    std::array::from_fn(|u| S::add(even[u], odd[u]))
}

/// A channel's requantize constants.
pub(super) struct Epilogue<'a, S: Simd> {
    /// s_x · s_w[c].
    pub mult: S::V,
    pub bias: S::V,
    /// The conv's.
    pub req: &'a Requant<S>,
}

/// Output plane `y` (oh × ow of O) from the phase planes at `xq`, each vector stored by
/// `table`'s runs where the plane has one (`Runs`). Needs S's features; `xq` is a task's
/// planes (`Layout::clear`, filled), no other task writes `y`'s plane, and `table` was
/// made for S's lanes.
#[inline(always)]
pub(super) unsafe fn plane<S: Simd, O: Out, K: Taps<S>>(
    lay: &Layout,
    table: Option<&Runs>,
    taps: &K,
    xq: *const f32,
    epi: &Epilogue<'_, S>,
    y: *mut O,
) {
    let l = S::LANES;
    let vectors = (lay.oh * lay.wq).div_ceil(l);
    let mut at = Cursor { oy: 0, ox: 0 };
    let mut v = 0;
    while v + U <= vectors {
        for (u, acc) in taps.sums::<U>(xq.add(v * l)).into_iter().enumerate() {
            store(lay, table, epi, v + u, acc, &mut at, y);
        }
        v += U;
    }
    for v in v..vectors {
        let [acc] = taps.sums::<1>(xq.add(v * l));
        store(lay, table, epi, v, acc, &mut at, y);
    }
}

/// Vector v of the grid, its sums `acc`, requantized and stored: by `table`'s runs, or
/// where `at` says (`store_at`). Needs S's features; as for `plane`. A function, not a
/// closure: a closure holding intrinsics may be left out of line, without S's features,
/// as one made whole planes 10× slower.
#[inline(always)]
unsafe fn store<S: Simd, O: Out>(
    lay: &Layout,
    table: Option<&Runs>,
    epi: &Epilogue<'_, S>,
    v: usize,
    acc: S::V,
    at: &mut Cursor,
    y: *mut O,
) {
    let q = epi.req.quantize(acc, epi.mult, epi.bias);
    let Some(t) = table else {
        return store_at(lay, epi, q, at, y);
    };
    for r in t.of(v) {
        let [lo, hi] = r.lanes.map(usize::from);
        if hi - lo == S::LANES {
            O::put::<S>(y.offset(r.at), epi.req, q);
        } else {
            O::put_lanes::<S>(y.wrapping_offset(r.at), epi.req, q, lo..hi);
        }
    }
}

/// Where the next vector's first lane lies on the grid.
struct Cursor {
    oy: usize,
    ox: usize,
}

/// One vector of quantized lanes stored where `at` says: whole where its lanes are one
/// output row's run, else each row's run of it masked; then `at` moves a vector on.
#[inline(always)]
unsafe fn store_at<S: Simd, O: Out>(
    lay: &Layout,
    epi: &Epilogue<'_, S>,
    q: S::V,
    at: &mut Cursor,
    y: *mut O,
) {
    let (l, ow, wq) = (S::LANES, lay.ow, lay.wq);
    let Cursor { oy, ox } = *at;
    if ox + l <= ow {
        O::put::<S>(y.add(oy * ow + ox), epi.req, q);
    } else {
        for (p, lanes) in Runs::of_vector(lay, l, [oy, ox]) {
            O::put_lanes::<S>(y.wrapping_offset(p), epi.req, q, lanes);
        }
    }
    at.ox += l;
    while at.ox >= wq {
        at.ox -= wq;
        at.oy += 1;
    }
}

/// A small plane's runs (`Runs::of_vector`), every vector's, worked out once per conv: on
/// a 7×7 output most vectors hold parts of two or three rows, whose masked stores were a
/// third of the layer's time, and working out the runs as they were stored made 960 7×7
/// and 384 14×14 planes 5–10% slower than this table (avx512, 1 thread).
pub(super) struct Runs {
    /// Vector v's runs are `runs[first[v]..first[v + 1]]`.
    first: Vec<usize>,
    runs: Vec<Run>,
}

/// Lanes `lanes` of a vector go to the output elements `at + lanes`.
#[derive(Debug, Clone, Copy)]
struct Run {
    at: isize,
    lanes: [u8; 2],
}

/// Planes of at most this many vectors get a `Runs` table: few vectors of a wider plane
/// straddle two rows, and the table would grow with the plane.
const MAX_TABLE_VECTORS: usize = 64;

impl Runs {
    /// The table for vectors of `l` lanes, or None for a plane of more than
    /// `MAX_TABLE_VECTORS` vectors.
    pub fn new(lay: &Layout, l: usize) -> Option<Runs> {
        let vectors = (lay.oh * lay.wq).div_ceil(l);
        if vectors > MAX_TABLE_VECTORS {
            return None;
        }
        let (mut first, mut runs) = (vec![0], Vec::new());
        for v in 0..vectors {
            let j = v * l;
            for (at, lanes) in Runs::of_vector(lay, l, [j / lay.wq, j % lay.wq]) {
                let lanes = [lanes.start, lanes.end].map(|x| x as u8);
                runs.push(Run { at, lanes });
            }
            first.push(runs.len());
        }
        Some(Runs { first, runs })
    }

    /// The runs of a vector of `l` lanes from grid row oy, column ox: each output row's
    /// valid columns among its lanes.
    #[inline(always)]
    fn of_vector(lay: &Layout, l: usize, [oy, ox]: [usize; 2]) -> RunIter {
        RunIter {
            oh: lay.oh,
            ow: lay.ow,
            wq: lay.wq,
            l,
            ry: oy,
            rx: ox,
            lane: 0,
        }
    }

    /// Vector v's runs.
    #[inline(always)]
    fn of(&self, v: usize) -> &[Run] {
        &self.runs[self.first[v]..self.first[v + 1]]
    }
}

/// The runs of a vector (`Runs::of_vector`).
struct RunIter {
    oh: usize,
    ow: usize,
    wq: usize,
    l: usize,
    /// The next run's output row and column, and its first lane.
    ry: usize,
    rx: usize,
    lane: usize,
}

impl Iterator for RunIter {
    /// Lanes `.1` go to the output elements `.0 + lanes` (.0 may be negative).
    type Item = (isize, Range<usize>);

    #[inline(always)]
    fn next(&mut self) -> Option<(isize, Range<usize>)> {
        while self.lane < self.l && self.ry < self.oh {
            let (ry, rx, lane) = (self.ry, self.rx, self.lane);
            (self.lane, self.ry, self.rx) = (lane + self.wq - rx, ry + 1, 0);
            if rx < self.ow {
                let lanes = lane..lane + (self.ow - rx).min(self.l - lane);
                return Some(((ry * self.ow + rx) as isize - lane as isize, lanes));
            }
        }
        None
    }
}
