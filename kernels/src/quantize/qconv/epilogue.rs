//! One tile of the int8 conv: the microkernel hands its exact sums over as it finishes
//! (`Epilogue::emit`, inlined into it: no tile of sums zeroed, stored and read back by
//! another function), which requantizes them in the steps of
//! [`QConv2d::reference`](crate::quantize::conv::QConv2d::reference) (a product, then a
//! sum: no FMA) and stores them: straight into y where the grid is the output (unpadded
//! stride-1 convs: wq = ow) and the tile is whole, else into a tile buffer whose valid
//! grid columns are then copied. On short-k 1×1 convs the epilogue costs more than the
//! microkernel's sums, so every vector op in `emit` counts.

use super::{tiles, QConvCpu, MR, NR};
use crate::quantize::lanes::{Grid, Lane, OutPtr};
use crate::quantize::qadd::QAdd;
use crate::quantize::unzip::copy_run;
use crate::quantize::QuantParams;
use crate::simd::Simd;
use std::mem::MaybeUninit;

impl QConvCpu {
    /// Image `img`, group `g`, channel panel `mp`, grid columns `j0..j0 + NR` (B's panel
    /// `b`, packed) into y; with a fused add (`QConvCpu::with_add`), plus `res`, the
    /// residual's bytes (null without).
    ///
    /// # Safety
    /// `y` must be the whole output and `res` null or as long, and no other thread may
    /// write these elements.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        &self,
        img: usize,
        g: usize,
        mp: usize,
        b: &[u8],
        j0: usize,
        y: OutPtr,
        res: *const u8,
    ) {
        match y {
            OutPtr::F32(y) => self.tile_into(img, g, mp, b, j0, y, res),
            OutPtr::U8(y) => self.tile_into(img, g, mp, b, j0, y, res),
        }
    }

    /// `tile` for one output type.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_into<T: Lane>(
        &self,
        img: usize,
        g: usize,
        mp: usize,
        b: &[u8],
        j0: usize,
        y: *mut T,
        res: *const u8,
    ) {
        let p = &self.q.p;
        let (oh, ow) = p.output_hw();
        let m = p.c_out / p.groups;
        let (kq, m_panels) = (self.rows.len() / 4, m.div_ceil(MR));
        let panel = g * m_panels + mp;
        let a = self.a[panel * kq * MR * 4..].as_ptr();
        let comp: &[i32; MR] = self.comp[panel * MR..][..MR].try_into().expect("MR sums");
        let (oc0, rows) = (g * m + mp * MR, MR.min(m - mp * MR));
        let (wq, end) = (self.planes.wq, (oh * self.planes.wq).min(j0 + NR));
        let straight = wq == ow && end == j0 + NR;
        let first = (img * p.c_out + oc0) * oh * ow;
        let plane0 = y.add(first);
        let mut buf = MaybeUninit::<[T; MR * NR]>::uninit();
        let mut res_buf = MaybeUninit::<[u8; MR * NR]>::uninit();
        let mut job = TileJob {
            mult: [0.0; MR],
            bias: [0.0; MR],
            rows,
            y: self.y,
            relu: self.q.relu,
            add: self.add.map(|add| (add, std::ptr::null())),
            dst: buf.as_mut_ptr().cast::<T>(),
            ld: NR,
        };
        job.mult[..rows].copy_from_slice(&self.multiplier[oc0..][..rows]);
        job.bias[..rows].copy_from_slice(&self.bias[oc0..][..rows]);
        let res0 = res.wrapping_add(first);
        if straight {
            (job.dst, job.ld) = (plane0.add(j0), oh * ow);
            if let Some((_, r)) = &mut job.add {
                *r = res0.add(j0);
            }
        } else if let Some((_, r)) = &mut job.add {
            // The residual's values in the tile's grid order, as emit reads them (the
            // columns past the output's rows stay 0: computed, then dropped).
            let grid = res_buf.as_mut_ptr().cast::<u8>();
            grid.write_bytes(0, MR * NR);
            self.grid_runs(j0, end, rows, |r, j, at, n| {
                copy_run(res0.add(r * oh * ow + at), grid.add(r * NR + j - j0), n);
            });
            *r = grid;
        }
        tiles::tile(self.qisa, a, b.as_ptr(), kq, comp, end - j0, &job);
        if straight {
            return;
        }
        // The valid grid columns of each row written above (emit wrote all the tile's
        // columns up to `end` and more).
        let buf = buf.as_ptr().cast::<T>();
        self.grid_runs(j0, end, rows, |r, j, at, n| {
            let src = buf.add(r * NR + j - j0);
            let bytes = n * std::mem::size_of::<T>();
            copy_run(src.cast(), plane0.add(r * oh * ow + at).cast(), bytes);
        });
    }

    /// For each of the tile's `rows` and each run of grid columns `j..j + n` within
    /// `j0..end` that lies on one output row, `f(r, j, at, n)`, `at` the run's first
    /// element in an output channel's plane.
    #[inline(always)]
    fn grid_runs(
        &self,
        j0: usize,
        end: usize,
        rows: usize,
        mut f: impl FnMut(usize, usize, usize, usize),
    ) {
        let (_, ow) = self.q.p.output_hw();
        let wq = self.planes.wq;
        for r in 0..rows {
            let mut j = j0;
            while j < end {
                let (oy, ox) = (j / wq, j % wq);
                let run = (wq - ox).min(end - j);
                if ox < ow {
                    f(r, j, oy * ow + ox, run.min(ow - ox));
                }
                j += run;
            }
        }
    }
}

/// What one tile's epilogue needs, as plain values: the microkernel, which has the
/// CPU features, splats them (`Epilogue::new`).
pub(super) struct TileJob<T> {
    /// Per tile row: the input's scale times the channel's weight scale (0 past `rows`).
    mult: [f32; MR],
    /// Per tile row: the bias (0 past `rows`).
    bias: [f32; MR],
    /// Rows that are output channels (the last panel may have fewer than MR).
    rows: usize,
    /// The output's quantization, its range narrowed by the conv's clamp.
    y: QuantParams,
    relu: bool,
    /// A fused add (`QConvCpu::with_add`) and its residual's bytes, row r, column t at
    /// `[r * ld + t]` as dst.
    add: Option<(QAdd, *const u8)>,
    /// Row r, column t of the tile goes to `dst[r * ld + t]`.
    dst: *mut T,
    ld: usize,
}

/// A `TileJob` with its constants in registers. Every method needs S's features and is
/// inlined into the microkernel, which has them.
pub(super) struct Epilogue<S: Simd, T> {
    mult: [f32; MR],
    bias: [f32; MR],
    rows: usize,
    grid: Grid<S>,
    inv: S::V,
    /// The clamp of `v · inv_scale` before it is rounded: qmin and qmax less the zero
    /// point, the low end 0 under a relu (`Epilogue::new`).
    lo: S::V,
    hi: S::V,
    dst: *mut T,
    ld: usize,
    add: Option<FusedAdd<S>>,
}

/// A fused add's constants: the conv's output dequantized by `a_scale` (the add's first
/// input is the conv's output), the residual's grid, the add's output grid, its relu.
struct FusedAdd<S: Simd> {
    a_scale: S::V,
    b: Grid<S>,
    y: Grid<S>,
    relu: bool,
    res: *const u8,
}

impl<S: Simd, T: Lane> Epilogue<S, T> {
    /// Copies the job into locals, which a store through `dst` cannot alias, so the
    /// compiler keeps them in registers across the tile.
    #[inline(always)]
    pub(super) unsafe fn new(job: &TileJob<T>) -> Epilogue<S, T> {
        let y = &job.y;
        let lo = (y.qmin - y.zero_point) as f32;
        Epilogue {
            mult: job.mult,
            bias: job.bias,
            rows: job.rows,
            grid: Grid::new(y),
            inv: S::splat(y.inv_scale),
            lo: S::splat(if job.relu { lo.max(0.0) } else { lo }),
            hi: S::splat((y.qmax - y.zero_point) as f32),
            dst: job.dst,
            ld: job.ld,
            // A match, not a closure: a closure is not inlined into the microkernel, and
            // splatted the constants without its CPU features, tile by tile.
            add: match &job.add {
                Some((q, res)) => Some(FusedAdd {
                    a_scale: S::splat(q.a.scale),
                    b: Grid::new(&q.b),
                    y: Grid::new(&q.y),
                    relu: q.relu,
                    res: *res,
                }),
                None => None,
            },
        }
    }

    /// Row r's sums at tile columns `col..col + S::LANES`, as f32 (exact: converted from
    /// the i32 sums as the reference converts them): requantized and stored.
    ///
    /// The reference's `clamp(round(v · inv) + zp, qmin, qmax)` (v after the relu) in
    /// fewer steps, equal for every finite v (the bias is finite: `QConvCpu::new`): the
    /// clamp's ends are integers, so clamping `v · inv` to them before rounding rounds
    /// to the same integers, and the zero point is added only where the value is stored;
    /// `max(v, 0) · inv = max(v · inv, 0)` as inv > 0, so the relu is the clamp's low end.
    #[inline(always)]
    pub(super) unsafe fn emit(&self, r: usize, col: usize, sums: S::V) {
        if r >= self.rows {
            return;
        }
        let v = S::add(S::mul(sums, S::splat(self.mult[r])), S::splat(self.bias[r]));
        let centered = S::round(S::min(self.hi, S::max(self.lo, S::mul(v, self.inv))));
        let at = r * self.ld + col;
        let Some(add) = &self.add else {
            return T::put_centered::<S>(self.dst.add(at), &self.grid, centered);
        };
        // QAdd's steps (qadd.rs) on the conv's integers q − zp: (q − zp) · scale, plus the
        // residual dequantized, the relu, the add's quantization. A −0.0 (a small negative
        // value rounded to the zero point) adds as +0.0 does: the residual's term is never
        // −0.0.
        let a = S::mul(centered, add.a_scale);
        let b = add.b.dequantize(add.b.unshift(S::load_u8(add.res.add(at))));
        let sum = S::add(a, b);
        let sum = if add.relu {
            S::max(sum, S::splat(0.0))
        } else {
            sum
        };
        T::put::<S>(self.dst.add(at), &add.y, add.y.quantize(sum));
    }
}
