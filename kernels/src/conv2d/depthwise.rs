//! Depthwise conv2d on the CPU (groups = c_in = c_out), any kernel, stride, pad and
//! dilation, with the fused epilogue `y = act(conv + bias + residual)`.
//!
//! Loop 1: (image, channel) planes, split over threads (`parallel::for_each_task`).
//! Loop 2: output rows; the kernel rows `ky` that read inside the input are clipped once.
//! Loop 3: chunks of LANES outputs along the row, one accumulator register per chunk, all
//!   kh×kw taps added into it. Whole chunks tile the row's interior (outputs whose every
//!   tap reads inside the row) and load whole vectors: contiguous for stride 1, two loads
//!   and a deinterleave for stride 2, a gather otherwise. The rest (the chunks touching the
//!   left/right padding, and every chunk of a row shorter than two vectors) load only their
//!   valid lanes with masks: borders cost a few vector ops, not a scalar loop (on
//!   MobileNetV2's 7×7 and 14×14 layers they are the whole row). Those masked chunks run
//!   column by column (loops 2 and 3 swapped), so their lane masks are worked out once.
//!
//! 3×3 at stride 1 or 2 (all of MobileNetV2's) takes `planes_3x3` instead: a zero-padded,
//! stride-deinterleaved copy of each plane, then mask-free 9-FMA chunks, two output rows
//! per pass. MobileNetV2's 17 layers, 1 thread, noisy shared Zen 4: avx512 3.9 -> 2.5 ms,
//! avx2 6.2 -> 2.7 ms.

use std::ops::Range;

use crate::activation::cpu::{dispatch, output_taps, store_epilogue, tap_outputs, SharedMut, Simd};
use crate::parallel::for_each_task;
use crate::{Activation, Isa};

use super::Conv2dParams;

/// A depthwise conv with its weights, ready to run.
pub struct DepthwiseCpu {
    p: Conv2dParams,
    /// (c, kh*kw): the conv weight as given, one tap row per channel.
    weight: Vec<f32>,
    /// (c); zeros when the conv has no bias.
    bias: Vec<f32>,
    isa: Isa,
}

impl DepthwiseCpu {
    /// None when `p` is not depthwise with multiplier 1. `p` must be validated.
    pub fn new(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
    ) -> Option<DepthwiseCpu> {
        if p.depthwise_multiplier() != Some(1) {
            return None;
        }
        assert!(isa.is_supported(), "depthwise: this CPU cannot run {isa}");
        // w: (c, 1, kh, kw)  bias: (c)
        assert_eq!(weight.len(), p.c_in * p.kh * p.kw, "depthwise: w length");
        bias.inspect(|b| assert_eq!(b.len(), p.c_in, "depthwise: bias length"));
        Some(DepthwiseCpu {
            p: *p,
            weight: weight.to_vec(),
            bias: bias.map_or_else(|| vec![0.0; p.c_in], <[f32]>::to_vec),
            isa,
        })
    }

    /// Floats of scratch `run` needs with `threads` threads: one padded plane copy (or a
    /// batch of small ones) per task for the 3×3 path; nothing for the others.
    pub fn scratch_len(&self, threads: usize) -> usize {
        self.scratch_per_task() * threads.clamp(1, self.p.n * self.p.c_in)
    }

    fn scratch_per_task(&self) -> usize {
        let Some(st) = three_by_three_stride(&self.p) else {
            return 0;
        };
        let (oh, ow) = self.p.output_hw();
        // As `planes_3x3` sizes its planes, with the widest vector (16 lanes) as the bound.
        let wq = (ow + 2 / st).div_ceil(16) * 16;
        (((oh - 1) * st + 3) * st * wq).max(SCRATCH_FLOATS)
    }

    /// y = act(dwconv(x) + bias + residual); residual has y's shape. `scratch` holds at
    /// least `scratch_len(threads)` floats; its contents on entry do not matter.
    pub fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c, h, w)  residual, y: (n, c, oh, ow)
        let p = &self.p;
        let [n, c, _, _] = p.output_shape();
        p.assert_io("depthwise", x, y, residual);
        // One task per thread, each a contiguous range of planes: set-up (dispatch, shape
        // arithmetic) is paid per task, not per plane (MobileNetV2 has 7,136 planes, most 7x7 or 14x14).
        let (planes, tasks) = (n * c, threads.clamp(1, n * c));
        let per_task = self.scratch_per_task();
        assert!(
            scratch.len() >= per_task * tasks,
            "depthwise: scratch length"
        );
        let y = SharedMut::new(y);
        let scratch = SharedMut::new(scratch);
        for_each_task(threads, tasks, |t| {
            let range = planes * t / tasks..planes * (t + 1) / tasks;
            // SAFETY: the lengths are asserted above, and tasks own disjoint plane ranges
            // and disjoint scratch parts; dispatch! checks the ISA.
            unsafe {
                let scratch = scratch.part(t * per_task, per_task);
                dispatch!(
                    self.isa,
                    planes_body(self, range, x, residual, act, y, scratch)
                )
            }
        });
    }
}

/// Loop 1's body: planes `planes` of (n*c). Needs S's features; x, residual and y have
/// the shapes `run` asserts, and no other task writes these planes of y.
#[inline(always)]
unsafe fn planes_body<S: Simd>(
    dw: &DepthwiseCpu,
    planes: Range<usize>,
    x: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    y: SharedMut,
    scratch: &mut [f32],
) {
    match three_by_three_stride(&dw.p) {
        Some(1) => return planes_3x3::<S, 1>(dw, planes, x, residual, act, y, scratch),
        Some(2) => return planes_3x3::<S, 2>(dw, planes, x, residual, act, y, scratch),
        _ => {}
    }
    match dw.p.stride[1] {
        1 => planes_strided::<S, 1>(dw, planes, x, residual, act, y),
        2 => planes_strided::<S, 2>(dw, planes, x, residual, act, y),
        _ => planes_strided::<S, 0>(dw, planes, x, residual, act, y),
    }
}

/// The stride of a conv the 3×3 path takes: 3×3, dilation 1, stride 1 or 2 on both axes.
fn three_by_three_stride(p: &Conv2dParams) -> Option<usize> {
    let square = [p.kh, p.kw] == [3, 3] && p.dilation == [1, 1] && p.stride[0] == p.stride[1];
    (square && matches!(p.stride[0], 1 | 2)).then_some(p.stride[0])
}

/// As `planes_body`, for stride ST along w (0: any stride, by gathers).
#[inline(always)]
unsafe fn planes_strided<S: Simd, const ST: usize>(
    dw: &DepthwiseCpu,
    planes: Range<usize>,
    x: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    y: SharedMut,
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
    let taps = p.kh * kw;
    // Rows whose every kernel row reads inside the input run ROWS at a time.
    let full_rows = tap_outputs(0, p.stride[0], p.pad[0], p.dilation[0], p.h).start
        ..tap_outputs(p.kh - 1, p.stride[0], p.pad[0], p.dilation[0], p.h)
            .end
            .min(oh);
    for plane in planes {
        let ch = plane % p.c_in;
        let f = Plane {
            p,
            ow,
            x: &x[plane * p.h * p.w..][..p.h * p.w],
            w: &dw.weight[ch * taps..][..taps],
            b: dw.bias[ch],
            r: residual.map(|r| &r[plane * oh * ow..][..oh * ow]),
            act,
        };
        // SAFETY: planes are disjoint between tasks.
        let y_c = y.part(plane * oh * ow, oh * ow);
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

/// 3×3, stride ST (1 or 2) on both axes, dilation 1, any padding: every plane is first
/// copied into a zero-padded scratch plane (one per task, so its padding is written once),
/// row by row as ST phase rows `xq[py][φ][i] = x[py - ph][ST*i + φ - pw]` (stride 2:
/// evens and odds, deinterleaved once per input row instead of once per tap). Then every
/// output chunk is 9 plain loads and 9 FMAs with the weights in registers: no masks, no
/// clipped taps, borders cost only the copy's masked loads at the row ends.
#[inline(always)]
unsafe fn planes_3x3<S: Simd, const ST: usize>(
    dw: &DepthwiseCpu,
    planes: Range<usize>,
    x: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    y: SharedMut,
    scratch: &mut [f32],
) {
    let p = &dw.p;
    let (oh, ow) = p.output_hw();
    let (lanes, ph, pw) = (S::LANES, p.pad[0], p.pad[1]);
    // Tap kx reads phase kx % ST at offset kx / ST: wq covers the last chunk's lanes.
    let wq = (ow + 2 / ST).div_ceil(lanes) * lanes;
    let (rs, hq) = (ST * wq, (oh - 1) * ST + 3);
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
    // Per phase, the i whose element ST*i + φ - pw lies inside the row.
    let valid: [Range<usize>; ST] = std::array::from_fn(|ph_| tap_outputs(ph_, ST, pw, 1, p.w));
    for first in planes.clone().step_by(batch) {
        let group = first..(first + batch).min(planes.end);
        for (plane, xq) in group.clone().zip(xq.chunks_exact_mut(plane_len)) {
            let x_c = &x[plane * p.h * p.w..][..p.h * p.w];
            for py in rows_in.clone() {
                let x_row = x_c[(py - ph) * p.w..].as_ptr();
                for (ph_, valid) in valid.iter().enumerate() {
                    let dst = xq[py * rs + ph_ * wq..][..wq].as_mut_ptr();
                    copy_phase::<S, ST>(x_row, ph_ as isize - pw as isize, valid, dst, wq);
                }
            }
        }
        for (plane, xq) in group.zip(xq.chunks_exact(plane_len)) {
            let ch = plane % p.c_in;
            let f = Plane {
                p,
                ow,
                x: &x[plane * p.h * p.w..][..p.h * p.w],
                w: &dw.weight[ch * 9..][..9],
                b: dw.bias[ch],
                r: residual.map(|r| &r[plane * oh * ow..][..oh * ow]),
                act,
            };
            let wv: [S::V; 9] = std::array::from_fn(|t| S::splat(f.w[t]));
            // SAFETY: planes are disjoint between tasks.
            let y_c = y.part(plane * oh * ow, oh * ow);
            let xq = xq.as_ptr();
            let mut oy = 0;
            while oy + ROWS_3X3 <= oh {
                rows_3x3::<S, ST, ROWS_3X3>(&f, xq, [rs, wq], &wv, oy, y_c);
                oy += ROWS_3X3;
            }
            for oy in oy..oh {
                rows_3x3::<S, ST, 1>(&f, xq, [rs, wq], &wv, oy, y_c);
            }
        }
    }
}

/// Output rows oy0..oy0 + R of a 3×3 plane from its padded copy `xq` (row stride rs,
/// phase stride wq): each loaded input vector feeds every output row that reads it
/// (R = 2 at stride 1: 12 loads for 18 FMAs instead of 18), and the R accumulator chains
/// overlap. Each output still sums its taps in (ky, kx) order: the same bits as R = 1.
#[inline(always)]
unsafe fn rows_3x3<S: Simd, const ST: usize, const R: usize>(
    f: &Plane,
    xq: *const f32,
    [rs, wq]: [usize; 2],
    wv: &[S::V; 9],
    oy0: usize,
    y_c: &mut [f32],
) {
    let base = xq.add(oy0 * ST * rs);
    for ox0 in (0..f.ow).step_by(S::LANES) {
        let mut acc = [S::splat(f.b); R];
        // Input row t (from oy0's first) is kernel row ky = t - r*ST of output row r.
        for t in 0..(R - 1) * ST + 3 {
            for kx in 0..3 {
                let v = S::load(base.add(t * rs + (kx % ST) * wq + ox0 + kx / ST));
                for (r, acc) in acc.iter_mut().enumerate() {
                    if let Some(ky) = t.checked_sub(r * ST).filter(|&ky| ky < 3) {
                        *acc = S::fma(wv[ky * 3 + kx], v, *acc);
                    }
                }
            }
        }
        for (r, acc) in acc.into_iter().enumerate() {
            f.store::<S>(acc, oy0 + r, ox0, S::LANES.min(f.ow - ox0), y_c);
        }
    }
}

/// Output rows the 3×3 path computes per pass.
const ROWS_3X3: usize = 2;

/// dst[i] = x_row[ST*i + off] for i in 0..wq (a multiple of LANES), zero outside `valid`,
/// the i whose element lies inside the row.
#[inline(always)]
unsafe fn copy_phase<S: Simd, const ST: usize>(
    x_row: *const f32,
    off: isize,
    valid: &Range<usize>,
    dst: *mut f32,
    wq: usize,
) {
    let lanes = S::LANES;
    for i0 in (0..wq).step_by(lanes) {
        let end = valid.end.clamp(i0, i0 + lanes);
        let lanes_in = valid.start.clamp(i0, end) - i0..end - i0;
        // Before the row when the chunk starts in the left padding: only valid lanes load.
        let src = x_row.wrapping_offset((ST * i0) as isize + off);
        let v = if lanes_in == (0..lanes) {
            if ST == 1 {
                S::load(src)
            } else {
                S::load_even(src)
            }
        } else {
            S::load_lanes(src, ST, lanes_in, S::splat(0.0))
        };
        S::store(dst.add(i0), v);
    }
}

/// The 3×3 path's scratch per task, in floats (16 KiB: half of Zen 4's L1d).
const SCRATCH_FLOATS: usize = 4096;

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

/// One (image, channel) plane's inputs.
struct Plane<'a> {
    p: &'a Conv2dParams,
    ow: usize,
    /// (h, w)
    x: &'a [f32],
    /// (kh, kw)
    w: &'a [f32],
    b: f32,
    /// (oh, ow)
    r: Option<&'a [f32]>,
    act: Activation,
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

    /// The epilogue: y[oy, ox0..ox0+n] = act(acc + residual).
    #[inline(always)]
    unsafe fn store<S: Simd>(&self, acc: S::V, oy: usize, ox0: usize, n: usize, y_c: &mut [f32]) {
        store_epilogue::<S>(acc, self.r, self.act, oy * self.ow + ox0, n, y_c);
    }
}

/// Output rows computed together where no kernel row is clipped.
const ROWS: usize = 4;

/// Kernel widths up to this keep their masked chunks' lane ranges in a table.
const MAX_KW: usize = 8;
