//! The depthwise path for small planes (see `applies`): LANES channels at a time, one
//! vector holding one pixel of each, as an NCHWc layout would, but only inside the kernel.
//! A plane-wide vector wastes most of its lanes on a 7-wide row (7 of 16) and pays a
//! plane's set-up for 49 outputs; a channel vector is always full.
//!
//! Per block of LANES channels (one image):
//! 1. Gather the block's input into `xb`: (hp, wp, LANES), zero-padded, one vector per
//!    pixel. The padding is zeroed once per call: later blocks rewrite only the interior.
//! 2. Each output row in chunks of P pixels, P accumulators: per tap one weight vector (the
//!    block's LANES weights of that tap, packed in `new`) and P input vectors. Stride 2 is
//!    only an address step. Each output sums bias then taps in (ky, kx) order, as the other
//!    paths do: the same bits.
//! 3. Write `yb`: (oh·ow, LANES), then per channel gather LANES pixels at a time back to the
//!    NCHW plane, with the residual and activation (`store_epilogue`).

use std::ops::Range;

use crate::conv2d::Conv2dParams;
use crate::simd::{store_epilogue, Simd};

use super::{DepthwiseCpu, Io};

/// Widest output row this path takes for every kernel, and for 5×5 at stride 1, where
/// `row_taps_sliding` computes it. Measured against the padded path in the same process,
/// in turns, 1 thread (`layer_speed --path blocked --vs padded`), padded time / blocked:
/// 7 wide 1.65–2.6× (avx2 1.07–1.45×); 5×5 s1 at 14 and 28 wide 1.02–1.35× (avx2
/// 1.02–1.26×); but 3×3 s1 at 14 0.82–0.91× and 5×5 s2 at 28 0.91–1.11×, and 0.36–0.84×
/// at 56 and 112.
const MAX_OW: usize = 8;
const MAX_OW_5X5_S1: usize = 28;

/// Output pixels per chunk of a row (accumulators).
const P: usize = 8;

/// Whether the blocked path computes `p`: 3×3 or 5×5, stride 1 or 2 on both axes,
/// dilation 1, output rows at most `MAX_OW` wide (`MAX_OW_5X5_S1` for 5×5 stride 1).
pub(super) fn applies(p: &Conv2dParams) -> bool {
    let (_, ow) = p.output_hw();
    match super::padded::shape(p) {
        Some((5, 1)) => ow <= MAX_OW_5X5_S1,
        Some(_) => ow <= MAX_OW,
        None => false,
    }
}

/// (hp, wp): the padded input block's rows and columns. Chunks read P whole pixels, so the
/// columns cover the last chunk's padding too.
fn padded_hw(p: &Conv2dParams) -> (usize, usize) {
    let (oh, ow) = p.output_hw();
    let (k, st) = (p.kh, p.stride[0]);
    let hp = ((oh - 1) * st + k).max(p.pad[0] + p.h);
    let wp = ((ow.div_ceil(P) * P - 1) * st + k).max(p.pad[1] + p.w);
    (hp, wp)
}

/// Scratch floats per task: xb (hp, wp, lanes) then yb (oh·ow, lanes).
pub(super) fn scratch_floats(p: &Conv2dParams, lanes: usize) -> usize {
    let ((hp, wp), (oh, ow)) = (padded_hw(p), p.output_hw());
    (hp * wp + oh * ow) * lanes
}

/// The weights and bias in blocks of `lanes` channels, zero past c: w (blocks, kh·kw,
/// lanes), b (blocks, lanes).
pub(super) fn pack(p: &Conv2dParams, weight: &[f32], bias: &[f32], lanes: usize) -> Vec<f32> {
    let (c, taps) = (p.c_in, p.kh * p.kw);
    let blocks = c.div_ceil(lanes);
    let mut packed = vec![0.0; blocks * (taps + 1) * lanes];
    let (w, b) = packed.split_at_mut(blocks * taps * lanes);
    for ch in 0..c {
        let (blk, l) = (ch / lanes, ch % lanes);
        for t in 0..taps {
            w[(blk * taps + t) * lanes + l] = weight[ch * taps + t];
        }
        b[blk * lanes + l] = bias[ch];
    }
    packed
}

/// Blocks `blocks` of (n, c.div_ceil(LANES)). Needs S's features; no other task writes
/// these blocks' planes of y; `scratch` holds `scratch_floats` floats; `dw.blocked` was
/// packed for S::LANES.
#[inline(always)]
pub(super) unsafe fn blocks<S: Simd, const K: usize, const ST: usize>(
    dw: &DepthwiseCpu,
    blocks: Range<usize>,
    io: Io,
    scratch: &mut [f32],
) {
    let p = &dw.p;
    let l = S::LANES;
    let (c, (oh, ow), (hp, wp)) = (p.c_in, p.output_hw(), padded_hw(p));
    let (hw, out, taps, per_img) = (p.h * p.w, oh * ow, K * K, c.div_ceil(l));
    let (xb, yb) = scratch[..scratch_floats(p, l)].split_at_mut(hp * wp * l);
    xb.fill(0.0);
    let (w_all, b_all) = dw.blocked.split_at(per_img * taps * l);
    for blk in blocks {
        let (img, cb) = (blk / per_img, blk % per_img);
        let (c0, nc) = (cb * l, l.min(c - cb * l));
        let plane0 = img * c + c0;
        // 1. x[plane0 + j][iy][ix] -> xb[iy + ph][ix + pw][j]
        let x0 = io.x[plane0 * hw..].as_ptr();
        for iy in 0..p.h {
            let row = xb[((iy + p.pad[0]) * wp + p.pad[1]) * l..].as_mut_ptr();
            for ix in 0..p.w {
                let v = S::load_lanes(x0.add(iy * p.w + ix), hw, 0..nc, S::splat(0.0));
                S::store(row.add(ix * l), v);
            }
        }
        // 2. yb[oy][ox][j] = bias[j] + Σ w[j][ky][kx] · xb[oy·ST + ky][ox·ST + kx][j]
        let w = w_all[cb * taps * l..][..taps * l].as_ptr();
        let bias = S::load(b_all[cb * l..].as_ptr());
        for oy in 0..oh {
            for ox0 in (0..ow).step_by(P) {
                let mut acc = [bias; P];
                for ky in 0..K {
                    let x_row = xb[((oy * ST + ky) * wp + ox0 * ST) * l..].as_ptr();
                    if ST == 1 && K == 5 {
                        row_taps_sliding::<S, K>(x_row, w.add(ky * K * l), l, &mut acc);
                    } else {
                        row_taps::<S, K, ST>(x_row, w.add(ky * K * l), l, &mut acc);
                    }
                }
                let dst = yb[(oy * ow + ox0) * l..].as_mut_ptr();
                for (q, acc) in acc.iter().enumerate().take(ow - ox0) {
                    S::store(dst.add(q * l), *acc);
                }
            }
        }
        // 3. y[plane0 + j][q] = act(yb[q][j] + residual), LANES pixels at a time
        for j in 0..nc {
            let plane = plane0 + j;
            let r = io.residual.map(|r| &r[plane * out..][..out]);
            // SAFETY: this task alone writes the planes of its blocks.
            let y_c = io.y_plane(plane);
            for q0 in (0..out).step_by(l) {
                let n = l.min(out - q0);
                let v = S::load_lanes(yb[q0 * l + j..].as_ptr(), l, 0..n, S::splat(0.0));
                store_epilogue::<S>(v, r, io.act, q0, n, y_c);
            }
        }
    }
}

/// One kernel row's taps into P accumulators, a load per tap and output: acc[q] +=
/// w[kx] · x_row[q·ST + kx] for kx in 0..K, in kx order. Needs S's features; x_row holds
/// (P − 1)·ST + K pixels and w K weight vectors, `l` floats apart.
#[inline(always)]
unsafe fn row_taps<S: Simd, const K: usize, const ST: usize>(
    x_row: *const f32,
    w: *const f32,
    l: usize,
    acc: &mut [S::V; P],
) {
    for kx in 0..K {
        let wv = S::load(w.add(kx * l));
        for (q, acc) in acc.iter_mut().enumerate() {
            *acc = S::fma(wv, S::load(x_row.add((q * ST + kx) * l)), *acc);
        }
    }
}

/// As `row_taps` at stride 1, each input pixel loaded once for every output it feeds (5×5:
/// 12 loads for 40 FMAs, not 40), the K weights in registers; each output still adds its
/// taps in kx order. Measured against the padded path in the same process, avx512, 1
/// thread: 5×5 at 14 and 28 wide 1.14–1.30× faster than `row_taps` made it (0.93–1.06×); at
/// 3×3, and at stride 2, LLVM leaves the loops rolled and it lost 1.5–3×, so they keep
/// `row_taps`.
#[inline(always)]
unsafe fn row_taps_sliding<S: Simd, const K: usize>(
    x_row: *const f32,
    w: *const f32,
    l: usize,
    acc: &mut [S::V; P],
) {
    let wv: [S::V; K] = std::array::from_fn(|kx| S::load(w.add(kx * l)));
    for i in 0..P + K - 1 {
        let v = S::load(x_row.add(i * l));
        for (q, acc) in acc.iter_mut().enumerate() {
            if let Some(kx) = i.checked_sub(q).filter(|&kx| kx < K) {
                *acc = S::fma(wv[kx], v, *acc);
            }
        }
    }
}
