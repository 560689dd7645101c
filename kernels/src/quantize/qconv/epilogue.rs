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
use crate::quantize::QuantParams;
use crate::simd::Simd;
use std::mem::MaybeUninit;

impl QConvCpu {
    /// Image `img`, group `g`, channel panel `mp`, grid columns `j0..j0 + NR` (B's panel
    /// `b`, packed) into y.
    ///
    /// # Safety
    /// `y` must be the whole output, and no other thread may write these elements.
    pub(super) unsafe fn tile(
        &self,
        img: usize,
        g: usize,
        mp: usize,
        b: &[u8],
        j0: usize,
        y: OutPtr,
    ) {
        match y {
            OutPtr::F32(y) => self.tile_into(img, g, mp, b, j0, y),
            OutPtr::U8(y) => self.tile_into(img, g, mp, b, j0, y),
        }
    }

    /// `tile` for one output type.
    unsafe fn tile_into<T: Lane>(
        &self,
        img: usize,
        g: usize,
        mp: usize,
        b: &[u8],
        j0: usize,
        y: *mut T,
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
        let plane0 = y.add((img * p.c_out + oc0) * oh * ow);
        let mut buf = MaybeUninit::<[T; MR * NR]>::uninit();
        let mut job = TileJob {
            mult: [0.0; MR],
            bias: [0.0; MR],
            rows,
            y: self.y,
            relu: self.q.relu,
            dst: buf.as_mut_ptr().cast::<T>(),
            ld: NR,
        };
        job.mult[..rows].copy_from_slice(&self.multiplier[oc0..][..rows]);
        job.bias[..rows].copy_from_slice(&self.bias[oc0..][..rows]);
        if straight {
            (job.dst, job.ld) = (plane0.add(j0), oh * ow);
        }
        tiles::tile(self.qisa, a, b.as_ptr(), kq, comp, end - j0, &job);
        if straight {
            return;
        }
        // The valid grid columns of each row written above (emit wrote all the tile's
        // columns up to `end` and more).
        let buf = buf.as_ptr().cast::<T>();
        for r in 0..rows {
            let plane = plane0.add(r * oh * ow);
            let mut j = j0;
            while j < end {
                let (oy, ox) = (j / wq, j % wq);
                let run = (wq - ox).min(end - j);
                if ox < ow {
                    let n = run.min(ow - ox);
                    std::ptr::copy_nonoverlapping(
                        buf.add(r * NR + j - j0),
                        plane.add(oy * ow + ox),
                        n,
                    );
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
        T::put_centered::<S>(self.dst.add(r * self.ld + col), &self.grid, centered);
    }
}
