//! max_pool2d and avg_pool2d on the CPU, vectorised along the output row as depthwise
//! conv is: whole chunks of LANES outputs tile the row's interior (every tap inside the
//! row: plain, deinterleaving or gathering loads for stride 1, 2, other); the chunks at
//! the borders load only their valid lanes, padding filled with -inf (max) or 0 (avg).
//! Planes are split over threads.
//!
//! Max pooling with rows that fit `ROW_MAX` goes separable instead (`max_separable`): per
//! output row, the max over the kh input rows into a -inf-padded row buffer (contiguous
//! loads), then the max over kw taps along it. That is kh + kw vector ops per output chunk
//! instead of kh·kw, and no border chunks: the padding is real -inf in the buffer.

use std::ops::Range;

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::taps::{output_taps, tap_outputs};
use crate::Isa;

use super::Pool2dParams;

/// As `reference::max_pool2d`: padding is -inf, a NaN in a window makes it NaN. Exact.
pub fn max_pool2d(isa: Isa, p: &Pool2dParams, x: &[f32], y: &mut [f32], threads: usize) {
    pool(isa, p, x, y, threads, Kind::Max);
}

/// As `reference::avg_pool2d`, PyTorch's divisor rules included.
pub fn avg_pool2d(isa: Isa, p: &Pool2dParams, x: &[f32], y: &mut [f32], threads: usize) {
    assert_eq!(p.dilation, [1, 1], "avg_pool2d: dilation must be [1, 1]");
    pool(isa, p, x, y, threads, Kind::Avg);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Max,
    Avg,
}

fn pool(isa: Isa, p: &Pool2dParams, x: &[f32], y: &mut [f32], threads: usize, kind: Kind) {
    // x: (n, c, h, w)  y: (n, c, oh, ow)
    let (oh, ow) = p.output_hw();
    let planes = p.n * p.c;
    assert_eq!(x.len(), planes * p.h * p.w, "pool2d: x length");
    assert_eq!(y.len(), planes * oh * ow, "pool2d: y length");
    let tasks = threads.clamp(1, planes);
    let y = SharedMut::new(y);
    let separable = kind == Kind::Max && row_fits(p);
    for_each_task(threads, tasks, |t| {
        let range = planes * t / tasks..planes * (t + 1) / tasks;
        // SAFETY: lengths asserted above; tasks own disjoint planes; dispatch! checks the ISA.
        unsafe {
            if separable {
                dispatch!(isa, max_separable_body(p, range, x, y))
            } else {
                dispatch!(isa, planes_body(p, kind, range, x, y))
            }
        }
    });
}

/// Floats of the separable path's row buffer (on the stack: 8 KiB).
const ROW_MAX: usize = 2048;
/// Widest vector of any ISA, in floats.
const LANES_MAX: usize = 16;

/// Whether every load of `max_separable` stays inside the row buffer: the last chunk's
/// last lane through the last tap, plus a load_even's second vector.
fn row_fits(p: &Pool2dParams) -> bool {
    let (_, ow) = p.output_hw();
    let reach = ow.next_multiple_of(LANES_MAX) * p.stride[1]
        + (p.kernel[1] - 1) * p.dilation[1]
        + 2 * LANES_MAX;
    p.pad[1] + p.w + LANES_MAX <= ROW_MAX && reach <= ROW_MAX
}

#[inline(always)]
unsafe fn max_separable_body<S: Simd>(
    p: &Pool2dParams,
    planes: Range<usize>,
    x: &[f32],
    y: SharedMut,
) {
    match p.stride[1] {
        1 => max_separable::<S, 1>(p, planes, x, y),
        2 => max_separable::<S, 2>(p, planes, x, y),
        _ => max_separable::<S, 0>(p, planes, x, y),
    }
}

/// Max pool of `planes`, separable (see the module doc). Needs S's features, `row_fits(p)`,
/// and x, y as `pool` asserted them; only this task writes `planes` of y.
#[inline(always)]
unsafe fn max_separable<S: Simd, const ST: usize>(
    p: &Pool2dParams,
    planes: Range<usize>,
    x: &[f32],
    y: SharedMut,
) {
    let (oh, ow) = p.output_hw();
    let ([kh, kw], [sh, _], [ph, pw], [dh, dw]) = (p.kernel, p.stride, p.pad, p.dilation);
    let sw = if ST == 0 { p.stride[1] } else { ST };
    let lanes = S::LANES;
    let fill = S::splat(f32::NEG_INFINITY);
    // row[pw + ix] = max over the window's rows at input column ix; -inf elsewhere.
    let mut row = [f32::NEG_INFINITY; ROW_MAX];
    let r = row.as_mut_ptr().add(pw);
    for plane in planes {
        let x_c = &x[plane * p.h * p.w..][..p.h * p.w];
        // SAFETY: planes are disjoint between tasks.
        let y_c = y.part(plane * oh * ow, oh * ow);
        for (oy, y_row) in y_c.chunks_exact_mut(ow).enumerate() {
            let taps_y = output_taps(oy, sh, ph, dh, kh, p.h);
            let rows = taps_y
                .clone()
                .map(|ky| x_c.as_ptr().add((oy * sh + ky * dh - ph) * p.w));
            for ix in (0..p.w).step_by(lanes) {
                let n = lanes.min(p.w - ix);
                let mut acc = fill;
                for src in rows.clone() {
                    let v = if n == lanes {
                        S::load(src.add(ix))
                    } else {
                        S::load_lanes(src.add(ix), 1, 0..n, fill)
                    };
                    acc = S::max_nan(acc, v);
                }
                // Whole vectors: lanes past w land in the right padding, which is -inf
                // (acc's fill) or beyond every tap's reach.
                S::store(r.add(ix), acc);
            }
            for ox0 in (0..ow).step_by(lanes) {
                let mut acc = fill;
                for kx in 0..kw {
                    let src = row.as_ptr().add(ox0 * sw + kx * dw);
                    let v = match ST {
                        1 => S::load(src),
                        2 => S::load_even(src),
                        _ => S::gather(src, sw),
                    };
                    acc = S::max_nan(acc, v);
                }
                let n = lanes.min(ow - ox0);
                if n == lanes {
                    S::store(y_row[ox0..].as_mut_ptr(), acc);
                } else {
                    S::store_part(y_row[ox0..].as_mut_ptr(), n, acc);
                }
            }
        }
    }
}

/// Needs S's features; x and y have `pool`'s asserted shapes, and only this task writes
/// `planes` of y.
#[inline(always)]
unsafe fn planes_body<S: Simd>(
    p: &Pool2dParams,
    kind: Kind,
    planes: Range<usize>,
    x: &[f32],
    y: SharedMut,
) {
    match p.stride[1] {
        1 => planes_strided::<S, 1>(p, kind, planes, x, y),
        2 => planes_strided::<S, 2>(p, kind, planes, x, y),
        _ => planes_strided::<S, 0>(p, kind, planes, x, y),
    }
}

#[inline(always)]
unsafe fn planes_strided<S: Simd, const ST: usize>(
    p: &Pool2dParams,
    kind: Kind,
    planes: Range<usize>,
    x: &[f32],
    y: SharedMut,
) {
    let (oh, ow) = p.output_hw();
    let ([kh, kw], [sh, _], [ph, pw], [dh, dw]) = (p.kernel, p.stride, p.pad, p.dilation);
    let sw = if ST == 0 { p.stride[1] } else { ST };
    let lanes = S::LANES;
    assert!(lanes <= 16);
    // Whole chunks tile the interior (every tap inside the row) from its start.
    let lo = tap_outputs(0, sw, pw, dw, p.w).start;
    let hi = tap_outputs(kw - 1, sw, pw, dw, p.w).end.min(ow);
    let whole_len = hi.saturating_sub(lo) / lanes * lanes;
    let whole = if whole_len == 0 {
        0..0
    } else {
        lo..lo + whole_len
    };
    let fill = S::splat(if kind == Kind::Max {
        f32::NEG_INFINITY
    } else {
        0.0
    });
    for plane in planes {
        let x_c = &x[plane * p.h * p.w..][..p.h * p.w];
        // SAFETY: planes are disjoint between tasks.
        let y_c = y.part(plane * oh * ow, oh * ow);
        for (oy, y_row) in y_c.chunks_exact_mut(ow).enumerate() {
            let taps_y = output_taps(oy, sh, ph, dh, kh, p.h);
            // Avg pool: the window's height before clipping to the input (PyTorch's pool_h).
            let pool_h = (oy * sh + kh).min(p.h + 2 * ph) - oy * sh;
            let rows_div = if p.count_include_pad {
                pool_h
            } else {
                taps_y.len()
            };
            let chunks = whole.clone().step_by(lanes).map(|ox0| (ox0, lanes, true));
            let border = |seg: Range<usize>| {
                seg.clone()
                    .step_by(lanes)
                    .map(move |o| (o, lanes.min(seg.end - o), false))
            };
            for (ox0, n, is_whole) in chunks
                .chain(border(0..whole.start))
                .chain(border(whole.end..ow))
            {
                let mut acc = fill;
                for ky in taps_y.clone() {
                    let x_row = x_c.as_ptr().add((oy * sh + ky * dh - ph) * p.w);
                    for kx in 0..kw {
                        // Input column of lane 0 through tap kx; negative in the left padding,
                        // where a border chunk never loads it.
                        let src =
                            x_row.wrapping_offset((ox0 * sw + kx * dw) as isize - pw as isize);
                        let v = match is_whole {
                            true if ST == 1 => S::load(src),
                            true if ST == 2 => S::load_even(src),
                            true => S::gather(src, sw),
                            false => {
                                let valid = tap_outputs(kx, sw, pw, dw, p.w);
                                let end = valid.end.clamp(ox0, ox0 + n);
                                let lanes = valid.start.clamp(ox0, end) - ox0..end - ox0;
                                S::load_lanes(src, sw, lanes, fill)
                            }
                        };
                        acc = match kind {
                            Kind::Max => S::max_nan(acc, v),
                            Kind::Avg => S::add(acc, v),
                        };
                    }
                }
                if kind == Kind::Avg {
                    acc = S::mul(acc, avg_scale::<S>(p, ox0, n, is_whole, rows_div));
                }
                if n == lanes {
                    S::store(y_row[ox0..].as_mut_ptr(), acc);
                } else {
                    S::store_part(y_row[ox0..].as_mut_ptr(), n, acc);
                }
            }
        }
    }
}

/// 1 / divisor for outputs ox0..ox0+n of a row whose rows factor is `rows_div`; 0 where
/// the window holds no input (the output is then 0, as in the reference).
#[inline(always)]
unsafe fn avg_scale<S: Simd>(
    p: &Pool2dParams,
    ox0: usize,
    n: usize,
    is_whole: bool,
    rows_div: usize,
) -> S::V {
    let inv = |div: usize| if div == 0 { 0.0 } else { 1.0 / div as f32 };
    let [kw, sw, pw] = [p.kernel[1], p.stride[1], p.pad[1]];
    if is_whole {
        // Every tap is inside the input: both divisors count the whole kernel width.
        return S::splat(inv(rows_div * kw));
    }
    let mut scale = [0.0f32; 16];
    for (j, s) in scale.iter_mut().enumerate().take(n) {
        let ox = ox0 + j;
        let cols = if p.count_include_pad {
            (ox * sw + kw).min(p.w + 2 * pw) - ox * sw
        } else {
            output_taps(ox, sw, pw, 1, kw, p.w).len()
        };
        *s = inv(rows_div * cols);
    }
    S::load_lanes(scale.as_ptr(), 1, 0..n, S::splat(0.0))
}
