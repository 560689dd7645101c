//! The depthwise path for K×K kernels (K = 3 or 5), stride ST = 1 or 2 on both axes,
//! dilation 1, any padding. Every plane is first copied into a zero-padded scratch plane
//! (one per task, so its padding is written once), row by row as ST phase rows
//! `xq[py][φ][i] = x[py - ph][ST*i + φ - pw]` (stride 2: evens and odds, deinterleaved once
//! per input row instead of once per tap). Then every output chunk is K² plain loads and
//! FMAs with the weights in registers: no masks, no clipped taps; borders cost only the
//! copy's masked loads at the row ends.
//!
//! Measured against `strided.rs`, 1 thread: MobileNetV2's 17 3×3 layers (noisy shared Zen 4)
//! avx512 3.9 -> 2.5 ms, avx2 6.2 -> 2.7 ms; the 5×5 layers of MobileNetV3-Large (Xeon
//! model 207, avx512, `layer_speed`, best of 7 alternated runs) 72@56² s2 766 -> 211 µs,
//! 120@28² s1 294 -> 141, 672@14² s2 765 -> 258, 960@7² s1 597 -> 257.

use std::ops::Range;

use crate::conv2d::Conv2dParams;
use crate::simd::Simd;
use crate::taps::tap_outputs;

use super::{DepthwiseCpu, Io, Plane};

/// (K, ST) of a conv this path takes: K×K with K 3 or 5, dilation 1, stride ST 1 or 2 on
/// both axes.
pub(super) fn shape(p: &Conv2dParams) -> Option<(usize, usize)> {
    let square = p.kh == p.kw && p.dilation == [1, 1] && p.stride[0] == p.stride[1];
    (square && matches!(p.kh, 3 | 5) && matches!(p.stride[0], 1 | 2)).then_some((p.kh, p.stride[0]))
}

/// Scratch floats per task for a (K, ST) conv: one padded plane, or a batch of small ones.
pub(super) fn scratch_floats(p: &Conv2dParams, k: usize, st: usize) -> usize {
    let (oh, ow) = p.output_hw();
    // As `planes` sizes its planes, with the widest vector (16 lanes) as the bound.
    let wq = (ow + (k - 1) / st).div_ceil(16) * 16;
    (((oh - 1) * st + k) * st * wq).max(SCRATCH_FLOATS)
}

/// Planes `planes` of (n*c) for a K×K kernel (T = K² taps: a separate parameter, as
/// stable Rust cannot size an array by K * K). Needs S's features; no other task writes
/// these planes of y; `scratch` holds `scratch_floats` floats.
#[inline(always)]
pub(super) unsafe fn planes<S: Simd, const K: usize, const ST: usize, const T: usize>(
    dw: &DepthwiseCpu,
    planes: Range<usize>,
    io: Io,
    scratch: &mut [f32],
) {
    let p = &dw.p;
    let (oh, ow) = p.output_hw();
    let (lanes, ph, pw) = (S::LANES, p.pad[0], p.pad[1]);
    assert_eq!(T, K * K, "padded depthwise: taps");
    // Tap kx reads phase kx % ST at offset kx / ST: wq covers the last chunk's lanes.
    let wq = (ow + (K - 1) / ST).div_ceil(lanes) * lanes;
    let (rs, hq) = (ST * wq, (oh - 1) * ST + K);
    // Planes are copied and computed in batches that fill SCRATCH_FLOATS, so that a small
    // plane's loads do not chase its copy's in-flight stores. Measured: no clear change on
    // 960x7x7 (the machine was noisy); it also bounds the scratch to L1 for small planes.
    let plane_len = hq * rs;
    let batch = (SCRATCH_FLOATS / plane_len).clamp(1, planes.len().max(1));
    // xq: (batch, hq, ST, wq), rows py of the padded input; rows outside the input stay zero.
    // Zeroed once per call: the padding rows and lanes are never written after this.
    let xq = &mut scratch[..batch * plane_len];
    xq.fill(0.0);
    let rows_in = ph.min(hq)..(ph + p.h).min(hq);
    // Per phase, how its row is copied: the i whose element ST*i + φ - pw lies inside the row.
    let plans: [PhaseCopy; ST] =
        std::array::from_fn(|ph_| PhaseCopy::new(tap_outputs(ph_, ST, pw, 1, p.w), lanes));
    for first in planes.clone().step_by(batch) {
        let group = first..(first + batch).min(planes.end);
        for (plane, xq) in group.clone().zip(xq.chunks_exact_mut(plane_len)) {
            let x_c = &io.x[plane * p.h * p.w..][..p.h * p.w];
            for py in rows_in.clone() {
                let x_row = x_c[(py - ph) * p.w..].as_ptr();
                for (ph_, plan) in plans.iter().enumerate() {
                    let dst = xq[py * rs + ph_ * wq..][..wq].as_mut_ptr();
                    plan.copy::<S, ST>(x_row, ph_ as isize - pw as isize, dst);
                }
            }
        }
        for (plane, xq) in group.zip(xq.chunks_exact(plane_len)) {
            let f = io.plane(dw, plane);
            let wv: [S::V; T] = std::array::from_fn(|t| S::splat(f.w[t]));
            // SAFETY: planes are disjoint between tasks.
            let y_c = io.y_plane(plane);
            let xq = xq.as_ptr();
            let rows = rows_per_pass(K);
            let mut oy = 0;
            while oy + rows <= oh {
                match rows {
                    2 => rows_kxk::<S, K, ST, T, 2>(&f, xq, [rs, wq], &wv, oy, y_c),
                    _ => rows_kxk::<S, K, ST, T, 4>(&f, xq, [rs, wq], &wv, oy, y_c),
                }
                oy += rows;
            }
            for oy in oy..oh {
                rows_kxk::<S, K, ST, T, 1>(&f, xq, [rs, wq], &wv, oy, y_c);
            }
        }
    }
}

/// Output rows oy0..oy0 + R of a K×K plane from its padded copy `xq` (row stride rs,
/// phase stride wq): each loaded input vector feeds every output row that reads it
/// (3×3, R = 2 at stride 1: 12 loads for 18 FMAs instead of 18), and the R accumulator
/// chains overlap. Each output still sums its taps in (ky, kx) order: the same bits as R = 1.
#[inline(always)]
unsafe fn rows_kxk<S: Simd, const K: usize, const ST: usize, const T: usize, const R: usize>(
    f: &Plane,
    xq: *const f32,
    [rs, wq]: [usize; 2],
    wv: &[S::V; T],
    oy0: usize,
    y_c: &mut [f32],
) {
    let base = xq.add(oy0 * ST * rs);
    for ox0 in (0..f.ow).step_by(S::LANES) {
        let mut acc = [S::splat(f.b); R];
        // Input row t (from oy0's first) is kernel row ky = t - r*ST of output row r.
        for t in 0..(R - 1) * ST + K {
            for kx in 0..K {
                let v = S::load(base.add(t * rs + (kx % ST) * wq + ox0 + kx / ST));
                for (r, acc) in acc.iter_mut().enumerate() {
                    if let Some(ky) = t.checked_sub(r * ST).filter(|&ky| ky < K) {
                        *acc = S::fma(wv[ky * K + kx], v, *acc);
                    }
                }
            }
        }
        for (r, acc) in acc.into_iter().enumerate() {
            f.store::<S>(acc, oy0 + r, ox0, S::LANES.min(f.ow - ox0), y_c);
        }
    }
}

/// Output rows per pass for a K×K kernel. 5×5: 2 beats 3 and 4 by 1.2–1.3× on avx512 and
/// 1.3–1.5× on avx2 (EfficientNet-B0's 5×5 layers, Xeon model 207).
const fn rows_per_pass(k: usize) -> usize {
    match k {
        3 => 2,
        _ => 2,
    }
}

/// How a phase row is copied: dst[i] = x_row[ST*i + off] for i in `valid` (the i whose
/// element lies inside the row), whole vectors over the chunks inside it and masked ones
/// at its two ends; the rest of dst is the scratch's zeros. Worked out once per call:
/// clamping lane ranges for every chunk of every row was 60% of a 5×5 stride-2 layer's time.
struct PhaseCopy {
    /// First elements of the whole chunks, LANES apart.
    whole: Range<usize>,
    /// (first element, lanes) of the partial chunks at either end; empty lanes for none.
    ends: [(usize, Range<usize>); 2],
}

impl PhaseCopy {
    fn new(valid: Range<usize>, lanes: usize) -> PhaseCopy {
        let (start, end) = (valid.start, valid.end.max(valid.start));
        // Whole chunks: from start rounded up to end rounded down.
        let (lo, hi) = (start.div_ceil(lanes) * lanes, end / lanes * lanes);
        if lo >= hi {
            // No whole chunk: one or two partial ones.
            let first = start / lanes * lanes;
            let head = (first, start - first..(end - first).min(lanes));
            let tail = (hi, (start.max(hi) - hi)..end - hi);
            let tail = if hi > first && hi < end {
                tail
            } else {
                (0, 0..0)
            };
            return PhaseCopy {
                whole: 0..0,
                ends: [if start < end { head } else { (0, 0..0) }, tail],
            };
        }
        let head = (lo - lanes, start + lanes - lo..lanes);
        PhaseCopy {
            whole: lo..hi,
            ends: [
                if start < lo { head } else { (0, 0..0) },
                if hi < end {
                    (hi, 0..end - hi)
                } else {
                    (0, 0..0)
                },
            ],
        }
    }

    /// Copies one row. Needs S's features; x_row[ST*i + off] is inside the row for every
    /// i in `valid`, and dst holds the row's wq floats.
    #[inline(always)]
    unsafe fn copy<S: Simd, const ST: usize>(&self, x_row: *const f32, off: isize, dst: *mut f32) {
        let src = |i: usize| x_row.wrapping_offset((ST * i) as isize + off);
        for i0 in self.whole.clone().step_by(S::LANES) {
            let v = if ST == 1 {
                S::load(src(i0))
            } else {
                S::load_even(src(i0))
            };
            S::store(dst.add(i0), v);
        }
        for (i0, lanes) in self.ends.iter().filter(|e| !e.1.is_empty()) {
            // Before the row when the chunk starts in the left padding: only valid lanes load.
            let v = S::load_lanes(src(*i0), ST, lanes.clone(), S::splat(0.0));
            S::store(dst.add(*i0), v);
        }
    }
}

/// The padded path's scratch per task, in floats (16 KiB: half of Zen 4's L1d).
const SCRATCH_FLOATS: usize = 4096;
