//! One (image, channel) plane of the input as the depthwise kernel reads it: each value
//! as (q − zp), its quantized integer less the zero point, in f32, in zero-padded phase
//! planes, as `qconv/planes.rs` lays out its bytes.
//!
//! The padded plane (h + 2·ph rows, w + 2·pw columns; the padding 0.0, what the
//! reference's skipped taps add) is split for a stride s (per axis) into s·s phase planes
//! by (row mod s, column mod s), hq × wq each. Output (oy, ox) of tap (ky, kx) reads
//! padded row oy·sh + ky·dh, which lies in phase row (ky·dh) mod sh at phase-plane row
//! oy + (ky·dh) div sh; columns likewise. Over the grid of oh × wq columns j = oy·wq + ox,
//! the values one tap reads are then the run `planes[offset + j]`: every tap of every
//! stride and dilation is a plain vector load, and the grid columns with ox ≥ ow (past
//! the output row's end) are computed and dropped. The grid packs short rows together
//! (a 7×7 output's 63 columns are four 16-lane vectors, not seven).

use crate::conv2d::Conv2dParams;
use crate::quantize::lanes::Grid;
use crate::quantize::qconv::QIn;
use crate::quantize::QuantParams;
use crate::simd::Simd;

/// Most lanes any ISA's vector has: what the scratch's slack is sized for.
const MAX_LANES: usize = 16;

/// Where one conv's phase planes lie in a task's scratch, and how a plane fills them.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    sw: usize,
    pw: usize,
    w: usize,
    hq: usize,
    /// A phase plane's row length: the grid's row length.
    pub wq: usize,
    /// The output's rows and columns.
    pub oh: usize,
    pub ow: usize,
    /// Which phase planes some tap reads (a 1×1 stride-2 conv reads one of four).
    used: Vec<bool>,
    /// Per input row: its phase row's first phase plane (phase_row·sw) and where its
    /// row starts in that plane; None where no tap reads the row's phases. Worked out
    /// once: two divisions per row were a fifth of a 7×7 plane's time.
    rows: Vec<Option<(usize, usize)>>,
    /// Per tap (ky·kw + kx): where its run starts in the planes.
    pub offs: Vec<usize>,
    /// Floats of the phase planes with the slack the last vectors read past them.
    planes_len: usize,
    /// Floats of the padded row a plane's rows are converted into first where the stride
    /// along w is 3 or more (0 for 1 and 2, whose rows are converted into place).
    row_len: usize,
}

impl Layout {
    pub fn new(p: &Conv2dParams) -> Layout {
        let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
        let (hq, wq) = ((p.h + 2 * ph).div_ceil(sh), (p.w + 2 * pw).div_ceil(sw));
        let (oh, ow) = p.output_hw();
        let mut used = vec![false; sh * sw];
        let mut offs = Vec::with_capacity(p.kh * p.kw);
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let (dy, dx) = (ky * dh, kx * dw);
                let phase = (dy % sh) * sw + dx % sw;
                used[phase] = true;
                offs.push(phase * hq * wq + dy / sh * wq + dx / sw);
            }
        }
        let rows = (0..p.h)
            .map(|iy| {
                let py = iy + ph;
                let phase_row = py % sh * sw;
                let read = used[phase_row..phase_row + sw].contains(&true);
                read.then_some((phase_row, py / sh * wq))
            })
            .collect();
        // The last vector of the grid starts before oh·wq and reads MAX_LANES from there.
        let reach = offs.iter().max().copied().unwrap_or(0) + oh * wq + MAX_LANES;
        let planes_len = (sh * sw * hq * wq).max(reach);
        // A copy strided by 3 or more reads up to LANES vectors of sw past the row's wq cells.
        let row_len = if sw <= 2 {
            0
        } else {
            (wq + MAX_LANES + 1) * sw
        };
        Layout {
            sw,
            pw,
            w: p.w,
            hq,
            wq,
            oh,
            ow,
            used,
            rows,
            offs,
            planes_len,
            row_len,
        }
    }

    /// Floats of scratch one task needs: the planes, then the row.
    pub fn scratch_len(&self) -> usize {
        self.planes_len + self.row_len
    }

    /// Splits a task's scratch into the planes and the row, both zeroed: the padding is
    /// never written after this, as every plane's values land in the same cells.
    pub fn clear<'a>(&self, scratch: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        let (planes, rest) = scratch.split_at_mut(self.planes_len);
        let row = &mut rest[..self.row_len];
        planes.fill(0.0);
        row.fill(0.0);
        (planes, row)
    }

    /// The plane (h, w) at x[at..] into the phase planes at `planes`, each value as
    /// (q − zp) by `cv`; `row` is the row buffer (`clear`ed). Needs S's features; `planes`
    /// and `row` are what `clear` gave.
    #[inline(always)]
    pub unsafe fn fill<S: Simd>(
        &self,
        x: QIn<'_>,
        at: usize,
        cv: &Convert<S>,
        planes: *mut f32,
        row: *mut f32,
    ) {
        let (sw, plane) = (self.sw, self.hq * self.wq);
        for (iy, row_at) in self.rows.iter().enumerate() {
            let Some((phase_row, row_at)) = *row_at else {
                continue;
            };
            let dst = |px: usize| planes.add((phase_row + px) * plane + row_at);
            let src = at + iy * self.w;
            if sw == 1 {
                cv.row(x, src, self.w, dst(0).add(self.pw));
                continue;
            }
            if sw == 2 {
                // Column ix lands in phase (ix + pw) mod 2 at (ix + pw) div 2.
                let pw = self.pw;
                let at = |first: usize| {
                    let phase = (first + pw) % 2;
                    self.used[phase_row + phase].then(|| dst(phase).add((first + pw) / 2))
                };
                cv.row_pairs(x, src, self.w, [at(0), at(1)]);
                continue;
            }
            // Stride 3 or more along w: the padded row first, then each phase's every sw-th
            // value.
            cv.row(x, src, self.w, row.add(self.pw));
            for px in 0..sw {
                if self.used[phase_row + px] {
                    self.deinterleave::<S>(row.add(px), dst(px));
                }
            }
        }
    }

    /// dst[i] = src[i·sw] for i in 0..wq (sw ≥ 3), whole vectors (a masked store last, so
    /// that the next phase-plane row, or the padding, is not overwritten).
    #[inline(always)]
    unsafe fn deinterleave<S: Simd>(&self, src: *const f32, dst: *mut f32) {
        let (sw, wq) = (self.sw, self.wq);
        let mut i = 0;
        while i < wq {
            let v = S::gather(src.add(sw * i), sw);
            if i + S::LANES <= wq {
                S::store(dst.add(i), v);
            } else {
                S::store_part(dst.add(i), wq - i, v);
            }
            i += S::LANES;
        }
    }
}

/// How an input value becomes (q − zp): an f32 quantized as PT2E does (NaN → 0), a byte
/// less its shift; then less the zero point. Exact: small integers.
pub(super) struct Convert<S: Simd> {
    grid: Grid<S>,
    minus_zp: S::V,
    /// −(byte_shift + zp).
    minus_byte_zp: S::V,
}

impl<S: Simd> Convert<S> {
    #[inline(always)]
    pub unsafe fn new(q: &QuantParams) -> Convert<S> {
        let zp = q.zero_point as f32;
        Convert {
            grid: Grid::new(q),
            minus_zp: S::splat(-zp),
            minus_byte_zp: S::splat(-(q.dtype.byte_shift() as f32 + zp)),
        }
    }

    /// (q − zp) of x[at..at + n] in lanes 0..n (n ≤ LANES; the others are not x's).
    #[inline(always)]
    unsafe fn load(&self, x: QIn<'_>, at: usize, n: usize) -> S::V {
        let l = S::LANES;
        match x {
            QIn::F32(x) => {
                let src = x[at..at + n].as_ptr();
                let v = match n == l {
                    true => S::load(src),
                    false => S::load_lanes(src, 1, 0..n, S::splat(0.0)),
                };
                S::add(self.grid.quantize_or_zero(v), self.minus_zp)
            }
            QIn::U8(x) => {
                // load_u8 reads LANES bytes: past the run where x goes on (those lanes are
                // not stored), else through a buffer, byte by byte (a copy of a variable
                // length is a call to memcpy).
                let v = if at + l <= x.len() {
                    S::load_u8(x[at..].as_ptr())
                } else {
                    let mut tail = [0u8; MAX_LANES];
                    for (t, &b) in tail.iter_mut().zip(&x[at..at + n]) {
                        *t = b;
                    }
                    S::load_u8(tail.as_ptr())
                };
                S::add(v, self.minus_byte_zp)
            }
        }
    }

    /// dst[0..n] = (q − zp) of x[at..at + n], a masked vector last.
    #[inline(always)]
    pub unsafe fn row(&self, x: QIn<'_>, at: usize, n: usize, dst: *mut f32) {
        let l = S::LANES;
        let mut i = 0;
        while i + l <= n {
            S::store(dst.add(i), self.load(x, at + i, l));
            i += l;
        }
        if i < n {
            S::store_part(dst.add(i), n - i, self.load(x, at + i, n - i));
        }
    }

    /// Stride 2: x[at..at + n]'s values at even offsets to evens[0..], its odd ones to
    /// odds[0..] (either None: not stored), two vectors at a time, unzipped in registers:
    /// through a row buffer, the loads waited on the masked store of the row's tail.
    #[inline(always)]
    unsafe fn row_pairs(
        &self,
        x: QIn<'_>,
        at: usize,
        n: usize,
        [evens, odds]: [Option<*mut f32>; 2],
    ) {
        let l = S::LANES;
        let mut i = 0;
        while i < n {
            let (na, nb) = ((n - i).min(l), (n - i).saturating_sub(l).min(l));
            let a = self.load(x, at + i, na);
            let b = if nb > 0 {
                self.load(x, at + i + l, nb)
            } else {
                a
            };
            let (even, odd) = S::unzip(a, b);
            let k = i / 2;
            for (dst, v, count) in [
                (evens, even, (na + nb).div_ceil(2)),
                (odds, odd, (na + nb) / 2),
            ] {
                match dst {
                    Some(d) if count == l => S::store(d.add(k), v),
                    Some(d) => S::store_part(d.add(k), count, v),
                    None => {}
                }
            }
            i += 2 * l;
        }
    }
}
