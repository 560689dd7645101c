//! The int8 depthwise conv for planes of short rows (`Blocked::new` says which): L
//! channels at a time (S's lanes), one vector holding one pixel of each, as the f32
//! kernel's `conv2d/cpu/depthwise/blocked.rs` does. On the grid (`layout.rs`) a 7-wide
//! output fills 49 of 64 lanes, most of its vectors straddle rows (masked stores), and a
//! plane's per-row set-up is paid for 7 rows; here every vector is full and the set-up is
//! paid once per block of L planes.
//!
//! Per block of L channels of one image:
//! 1. each channel's plane as (q − zp) in f32, contiguous (`Convert::row` over the whole
//!    plane), then gathered pixel by pixel into `xb` (hp, wp, L), zero-padded (the
//!    padding is cleared once per task: later blocks write only the interior);
//! 2. each output row in chunks of P pixels, P accumulators: per tap one vector of the
//!    block's weights and P input vectors (exact sums, as on the grid: `grid.rs`), then
//!    each pixel requantized (`requant.rs`, each lane its channel's multiplier and bias)
//!    into `yb` (oh·ow, L);
//! 3. per channel, L pixels at a time gathered from `yb` and stored (`Out`).

use std::ops::Range;

use super::layout::Convert;
use super::requant::{Out, Requant};
use crate::conv2d::Conv2dParams;
use crate::quantize::qconv::QIn;
use crate::simd::Simd;

/// Widest output row this path takes. Measured against the grid, avx512, 1 thread, bytes
/// in and out, best of 6 alternated runs on a shared machine: 960 7×7 3×3 planes 80 → 52
/// µs, 576 14×14 → 7×7 3×3 s2 113 → 53, 960 7×7 5×5 143 → 89; at 14 and 28 wide no faster
/// (384 14×14 3×3: 132 vs 127) or slower (120 28×28 5×5: 279 vs 213, and 96 at 28 wide
/// 287 vs 239).
const MAX_OW: usize = 8;

/// Output pixels per chunk of a row (accumulators).
const P: usize = 8;

/// A conv's constants for this path, in blocks of `l` channels.
pub(super) struct Blocked {
    l: usize,
    /// The padded input block's rows and columns: chunks read P whole pixels, so the
    /// columns cover the last chunk's reach too.
    hp: usize,
    wp: usize,
    /// (blocks, kh·kw, l): each tap's weights of a block's channels, zero past c.
    w: Vec<f32>,
    /// (blocks · l): each channel's multiplier and bias, zero past c.
    mult: Vec<f32>,
    bias: Vec<f32>,
}

impl Blocked {
    /// For vectors of `l` lanes, where the path suits the conv (vectors of 8 or more
    /// lanes, rows at most `MAX_OW` wide, at least half a block of channels) or `force`
    /// says. w: (c, kh·kw), the weights as f32; mult, bias: (c).
    pub fn new(
        p: &Conv2dParams,
        w: &[f32],
        [mult, bias]: [&[f32]; 2],
        l: usize,
        force: bool,
    ) -> Option<Blocked> {
        let (oh, ow) = p.output_hw();
        let suits = l >= 8 && ow <= MAX_OW && 2 * p.c_in >= l;
        if !(suits || force) {
            return None;
        }
        let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
        let hp = ((oh - 1) * sh + (p.kh - 1) * dh + 1).max(ph + p.h);
        let wp = ((ow.div_ceil(P) * P - 1) * sw + (p.kw - 1) * dw + 1).max(pw + p.w);
        let (c, taps) = (p.c_in, p.kh * p.kw);
        let blocks = c.div_ceil(l);
        let mut packed = vec![0.0; blocks * taps * l];
        let (mut m, mut b) = (vec![0.0; blocks * l], vec![0.0; blocks * l]);
        for ch in 0..c {
            let (blk, j) = (ch / l, ch % l);
            for t in 0..taps {
                packed[(blk * taps + t) * l + j] = w[ch * taps + t];
            }
            (m[ch], b[ch]) = (mult[ch], bias[ch]);
        }
        Some(Blocked {
            l,
            hp,
            wp,
            w: packed,
            mult: m,
            bias: b,
        })
    }

    /// Floats of scratch one task needs: xb (hp, wp, l), the block's planes (l, h, w),
    /// yb (oh·ow, l).
    pub fn scratch_len(&self, p: &Conv2dParams) -> usize {
        let (oh, ow) = p.output_hw();
        (self.hp * self.wp + p.h * p.w + oh * ow) * self.l
    }

    /// Units of work: (image, block of l channels).
    pub fn blocks(&self, p: &Conv2dParams) -> usize {
        p.n * p.c_in.div_ceil(self.l)
    }

    /// Blocks `blocks` of (n, c / l) into y (n, c, oh, ow). Needs S's features, with
    /// S::LANES = l; y is the whole output, whose planes of these blocks no other task
    /// writes; x has the conv's input shape; `scratch` holds `scratch_len` floats.
    #[inline(always)]
    pub unsafe fn run<S: Simd, O: Out>(
        &self,
        p: &Conv2dParams,
        (cv, req): (&Convert<S>, &Requant<S>),
        x: QIn<'_>,
        y: *mut O,
        blocks: Range<usize>,
        scratch: &mut [f32],
    ) {
        let l = self.l;
        debug_assert_eq!(l, S::LANES);
        let ((oh, ow), hw, taps) = (p.output_hw(), p.h * p.w, p.kh * p.kw);
        let (c, per_img, out) = (p.c_in, p.c_in.div_ceil(l), oh * ow);
        let (xb, rest) = scratch[..self.scratch_len(p)].split_at_mut(self.hp * self.wp * l);
        let (planes, yb) = rest.split_at_mut(hw * l);
        xb.fill(0.0);
        let (xb, planes, yb) = (xb.as_mut_ptr(), planes.as_mut_ptr(), yb.as_mut_ptr());
        let zero = S::splat(0.0);
        for blk in blocks {
            let (img, cb) = (blk / per_img, blk % per_img);
            let (c0, nc) = (cb * l, l.min(c - cb * l));
            let plane0 = img * c + c0;
            // 1. The block's planes as (q − zp), then pixel (iy, ix) of each into
            //    xb[iy + ph][ix + pw].
            for j in 0..nc {
                cv.row(x, (plane0 + j) * hw, hw, planes.add(j * hw));
            }
            for iy in 0..p.h {
                let row = xb.add(((iy + p.pad[0]) * self.wp + p.pad[1]) * l);
                for ix in 0..p.w {
                    let v = S::load_lanes(planes.add(iy * p.w + ix), hw, 0..nc, zero);
                    S::store(row.add(ix * l), v);
                }
            }
            // 2. yb[oy·ow + ox] = requantized Σ w[ky][kx] · xb[oy·sh + ky·dh][ox·sw + kx·dw]
            let w = self.w[cb * taps * l..][..taps * l].as_ptr();
            let mult = S::load(self.mult[cb * l..].as_ptr());
            let bias = S::load(self.bias[cb * l..].as_ptr());
            for oy in 0..oh {
                for ox0 in (0..ow).step_by(P) {
                    let acc = self.chunk::<S>(p, xb, w, [oy, ox0]);
                    for (q, acc) in acc.into_iter().enumerate().take(ow - ox0) {
                        let at = yb.add((oy * ow + ox0 + q) * l);
                        S::store(at, req.quantize(acc, mult, bias));
                    }
                }
            }
            // 3. y[plane0 + j][i] = yb[i][j], l pixels at a time.
            for j in 0..nc {
                let y_c = y.add((plane0 + j) * out);
                for i in (0..out).step_by(l) {
                    let n = l.min(out - i);
                    let q = S::load_lanes(yb.add(i * l + j), l, 0..n, zero);
                    match n == l {
                        true => O::put::<S>(y_c.add(i), req, q),
                        false => O::put_lanes::<S>(y_c.add(i), req, q, 0..n),
                    }
                }
            }
        }
    }

    /// The sums of output row oy's pixels ox0..ox0 + P: per tap one weight vector load,
    /// P input loads and FMAs. Needs S's features; xb and w as `run` has them.
    #[inline(always)]
    unsafe fn chunk<S: Simd>(
        &self,
        p: &Conv2dParams,
        xb: *const f32,
        w: *const f32,
        [oy, ox0]: [usize; 2],
    ) -> [S::V; P] {
        let l = self.l;
        let ([sh, sw], [dh, dw]) = (p.stride, p.dilation);
        let mut acc = [S::splat(0.0); P];
        for ky in 0..p.kh {
            let row = xb.add(((oy * sh + ky * dh) * self.wp + ox0 * sw) * l);
            for kx in 0..p.kw {
                let wv = S::load(w.add((ky * p.kw + kx) * l));
                let at = row.add(kx * dw * l);
                for (q, acc) in acc.iter_mut().enumerate() {
                    *acc = S::fma(wv, S::load(at.add(q * sw * l)), *acc);
                }
            }
        }
        acc
    }
}
