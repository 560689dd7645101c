//! The depthwise path for any kernel, stride, pad and dilation, straight from x.
//!
//! Loop 2: output rows; the kernel rows `ky` that read inside the input are clipped once.
//! Loop 3: chunks of LANES outputs along the row, one accumulator register per chunk, all
//!   kh×kw taps added into it. Whole chunks tile the row's interior (outputs whose every
//!   tap reads inside the row) and load whole vectors: contiguous for stride 1, two loads
//!   and a deinterleave for stride 2, a gather otherwise. The rest (the chunks touching the
//!   left/right padding, and every chunk of a row shorter than two vectors) load only their
//!   valid lanes with masks: borders cost a few vector ops, not a scalar loop. Those masked
//!   chunks run column by column (loops 2 and 3 swapped), so their lane masks are worked
//!   out once.

use std::ops::Range;

use crate::simd::Simd;
use crate::taps::{output_taps, tap_outputs};

use super::{DepthwiseCpu, Io, Plane};

/// Planes `planes` of (n*c), for stride ST along w (0: any stride, by gathers). Needs S's
/// features; no other task writes these planes of y. Takes no scratch (`_scratch` is empty).
#[inline(always)]
pub(super) unsafe fn planes<S: Simd, const ST: usize>(
    dw: &DepthwiseCpu,
    planes: Range<usize>,
    io: Io,
    _scratch: &mut [f32],
) {
    let p = &dw.p;
    let (oh, ow) = p.output_hw();
    let (kw, sw, pw, dw_) = (p.kw, p.stride[1], p.pad[1], p.dilation[1]);
    let lanes = S::LANES;
    // Outputs whose taps all read inside the row: tap 0 bounds them below, tap kw-1 above.
    // Whole chunks tile the interior from its start; the rest of the row is masked.
    let lo = tap_outputs(0, sw, pw, dw_, p.w).start;
    let hi = tap_outputs(kw - 1, sw, pw, dw_, p.w).end.min(ow);
    let whole_len = hi.saturating_sub(lo) / lanes * lanes;
    let whole = if whole_len == 0 {
        0..0
    } else {
        lo..lo + whole_len
    };
    // Rows whose every kernel row reads inside the input run ROWS at a time.
    let full_rows = tap_outputs(0, p.stride[0], p.pad[0], p.dilation[0], p.h).start
        ..tap_outputs(p.kh - 1, p.stride[0], p.pad[0], p.dilation[0], p.h)
            .end
            .min(oh);
    for plane in planes {
        let f = io.plane(dw, plane);
        // SAFETY: planes are disjoint between tasks.
        let y_c = io.y_plane(plane);
        if !whole.is_empty() {
            for (oy, rows) in row_groups(oh, full_rows.clone()) {
                for ox0 in whole.clone().step_by(lanes) {
                    f.chunk::<S, ST>(oy, rows, ox0, lanes, None, y_c);
                }
            }
        }
        for segment in [0..whole.start, whole.end..ow] {
            for ox0 in segment.clone().step_by(lanes) {
                let n = lanes.min(segment.end - ox0);
                // Which lanes each tap may load depends on the column only: once per chunk.
                let mut table: [Range<usize>; MAX_KW] = Default::default();
                for (kx, lanes) in table.iter_mut().enumerate().take(kw) {
                    *lanes = f.lanes::<ST>(kx, ox0, n);
                }
                for (oy, rows) in row_groups(oh, full_rows.clone()) {
                    f.chunk::<S, ST>(oy, rows, ox0, n, Some(&table), y_c);
                }
            }
        }
    }
}

/// Output rows `0..oh` as (first row, count): ROWS at a time inside `full`, else one.
fn row_groups(oh: usize, full: Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    let mut oy = 0;
    std::iter::from_fn(move || {
        let rows = if oy >= full.start && oy + ROWS <= full.end {
            ROWS
        } else {
            1
        };
        let group = (oy < oh).then_some((oy, rows));
        oy += rows;
        group
    })
}

impl Plane<'_> {
    /// Outputs `ox0..ox0 + n` of `rows` output rows from oy0 (1, or ROWS when every kernel
    /// row of each reads inside the input): `rows` accumulators, so the FMA chains
    /// overlap instead of waiting on each other (one chain is 9 FMAs × 4 cycles for 3×3).
    /// `masks: None` is a whole chunk, every tap inside the row; else the lanes each tap
    /// `kx` may load (zeros elsewhere), from `lanes`.
    #[inline(always)]
    unsafe fn chunk<S: Simd, const ST: usize>(
        &self,
        oy0: usize,
        rows: usize,
        ox0: usize,
        n: usize,
        masks: Option<&[Range<usize>; MAX_KW]>,
        y_c: &mut [f32],
    ) {
        if rows == ROWS {
            self.chunk_rows::<S, ST, ROWS>(oy0, 0..self.p.kh, ox0, n, masks, y_c)
        } else {
            let p = self.p;
            let taps_y = output_taps(oy0, p.stride[0], p.pad[0], p.dilation[0], p.kh, p.h);
            self.chunk_rows::<S, ST, 1>(oy0, taps_y, ox0, n, masks, y_c)
        }
    }

    #[inline(always)]
    unsafe fn chunk_rows<S: Simd, const ST: usize, const R: usize>(
        &self,
        oy0: usize,
        taps_y: Range<usize>,
        ox0: usize,
        n: usize,
        masks: Option<&[Range<usize>; MAX_KW]>,
        y_c: &mut [f32],
    ) {
        let p = self.p;
        let ([kw, sh], [ph, pw], [dh, dw]) = ([p.kw, p.stride[0]], p.pad, p.dilation);
        let sw = if ST == 0 { p.stride[1] } else { ST };
        let mut acc = [S::splat(self.b); R];
        for ky in taps_y {
            for (kx, &wv) in self.w[ky * kw..][..kw].iter().enumerate() {
                let wv = S::splat(wv);
                // Input column of lane 0 through tap kx: negative in the left padding, where
                // a masked chunk never loads it.
                let ix0 = (ox0 * sw + kx * dw) as isize - pw as isize;
                for (r, acc) in acc.iter_mut().enumerate() {
                    // The input row is inside the input: taps_y is clipped for it.
                    let x_row = self.x.as_ptr().add(((oy0 + r) * sh + ky * dh - ph) * p.w);
                    let src = x_row.wrapping_offset(ix0);
                    let v = match masks {
                        None if ST == 1 => S::load(src),
                        None if ST == 2 => S::load_even(src),
                        None => S::gather(src, sw),
                        Some(table) => {
                            let lanes = match table.get(kx) {
                                Some(lanes) => lanes.clone(),
                                None => self.lanes::<ST>(kx, ox0, n),
                            };
                            S::load_lanes(src, sw, lanes, S::splat(0.0))
                        }
                    };
                    *acc = S::fma(wv, v, *acc);
                }
            }
        }
        for (r, acc) in acc.into_iter().enumerate() {
            self.store::<S>(acc, oy0 + r, ox0, n, y_c);
        }
    }

    /// The lanes of the chunk `ox0..ox0 + n` whose tap kx reads inside the row.
    #[inline(always)]
    fn lanes<const ST: usize>(&self, kx: usize, ox0: usize, n: usize) -> Range<usize> {
        let p = self.p;
        // A constant stride turns tap_outputs' divisions into shifts.
        let sw = if ST == 0 { p.stride[1] } else { ST };
        let valid = tap_outputs(kx, sw, p.pad[1], p.dilation[1], p.w);
        let end = valid.end.clamp(ox0, ox0 + n);
        valid.start.clamp(ox0, end) - ox0..end - ox0
    }
}

/// Output rows computed together where no kernel row is clipped.
const ROWS: usize = 4;

/// Kernel widths up to this keep their masked chunks' lane ranges in a table.
const MAX_KW: usize = 8;
