//! The int8 depthwise conv's path on CPUs with AVX-512 VNNI and VBMI: integer sums by
//! `vpdpbusd` straight from the input's bytes, where the grid path (`grid.rs`) converts
//! every input to f32 and sums with one FMA per tap.
//!
//! Each (image, channel) plane is written as bytes (q plus the byte shift, as the int8
//! GEMM reads them: qconv/planes.rs) into a padded plane whose padding holds the shifted
//! zero point. Per output row and 16 outputs, for each kernel row: one 64-byte load of
//! the padded input row from the first output's first tap, `vpermb` into 16 quads of the
//! bytes each output's taps read (output t, tap i of the quad: byte `t·s + i·d`; a row
//! of more than 4 taps is several quads), one `vpdpbusd` against the row's four weights
//! (0 past the row's taps). The accumulators start at −(shifted zero point) · Σw, so a
//! padding tap adds (zp − zp) · w = 0 as the reference's skipped taps do, and the sums
//! are the reference's integers: exact in f32 (at most `MAX_TAPS` taps), then requantized
//! by the f32 path's steps (requant.rs), its bits.
//!
//! A 3×3 conv's 16 outputs cost 3 loads, 3 permutes and 3 dot products, where the grid
//! path spends 9 loads and 9 FMAs and converts every input byte to f32 first.

use super::requant::{Out, Requant};
use crate::conv2d::Conv2dParams;
use crate::quantize::conv::QConv2d;
use crate::quantize::lanes::quantize_bytes;
use crate::quantize::qconv::QIn;
use crate::quantize::unzip::copy_run;
use crate::quantize::QuantParams;
use crate::simd::{Avx512, Simd};
use std::arch::x86_64::*;
use std::ops::Range;

/// Outputs per vector: 16 i32 lanes.
const LANES: usize = 16;
/// Bytes one load brings, which every output of a vector reads its taps from.
const WINDOW: usize = 64;

/// A depthwise conv's constants for this path.
pub(super) struct Rows {
    kh: usize,
    /// Quads per kernel row: kw.div_ceil(4).
    quads: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    ph: usize,
    pw: usize,
    /// Padded plane: rows and row length (the input's w + 2·pw, then WINDOW of slack
    /// that the last vectors' loads read).
    hp: usize,
    wp: usize,
    /// Per channel, kernel row and quad: the quad's four weights as one i32.
    w: Vec<i32>,
    /// Per channel: (zp + shift) · Σw.
    comp: Vec<i32>,
    /// Per quad of a row: the `vpermb` indices (lane 4t + i: byte t·s + (4·quad + i)·d).
    idx: Vec<[u8; WINDOW]>,
    /// The shifted zero point, the padding's byte.
    pad: u8,
}

impl Rows {
    /// The path's constants for `q` (weights (c, kh·kw)), where this CPU has the path and
    /// each vector's taps lie within one load; None otherwise.
    pub fn new(q: &QConv2d, w: &[i8]) -> Option<Rows> {
        let p: &Conv2dParams = &q.p;
        let [sh, sw] = p.stride;
        let [dh, dw] = p.dilation;
        let reach = (LANES - 1) * sw + (p.kw - 1) * dw + 1;
        let cpu = std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
            && std::arch::is_x86_feature_detected!("avx512bw");
        if !cpu || reach > WINDOW {
            return None;
        }
        let quads = p.kw.div_ceil(4);
        let pad = q.x.zero_point + q.x.dtype.byte_shift();
        let taps = p.kh * p.kw;
        let mut quad_w = Vec::with_capacity(p.c_in * p.kh * quads);
        let mut comp = Vec::with_capacity(p.c_in);
        for ch in w.chunks_exact(taps) {
            for row in ch.chunks_exact(p.kw) {
                for quad in row.chunks(4) {
                    let mut b = [0u8; 4];
                    for (d, &v) in b.iter_mut().zip(quad) {
                        *d = v as u8;
                    }
                    quad_w.push(i32::from_le_bytes(b));
                }
            }
            comp.push(pad * ch.iter().map(|&v| i32::from(v)).sum::<i32>());
        }
        let idx = (0..quads)
            .map(|quad| {
                let mut lanes = [0u8; WINDOW];
                for t in 0..LANES {
                    for i in 0..4 {
                        // Taps past the row read byte 0: their weight is 0.
                        let tap = 4 * quad + i;
                        if tap < p.kw {
                            lanes[4 * t + i] = (t * sw + tap * dw) as u8;
                        }
                    }
                }
                lanes
            })
            .collect();
        Some(Rows {
            kh: p.kh,
            quads,
            sh,
            sw,
            dh,
            ph: p.pad[0],
            pw: p.pad[1],
            hp: p.h + 2 * p.pad[0],
            wp: p.w + 2 * p.pad[1] + WINDOW,
            w: quad_w,
            comp,
            idx,
            pad: pad as u8,
        })
    }

    /// Floats of scratch a task needs: the padded plane's bytes.
    pub fn scratch_len(&self) -> usize {
        (self.hp * self.wp).div_ceil(4)
    }

    /// Planes `range` of (n·c) of conv `q` into y, with its per-channel multipliers and
    /// biases and the requantize steps' NaN rule (`nan_free`: requant.rs).
    ///
    /// # Safety
    /// The CPU must have the features `new` checked; y is the whole output, whose planes
    /// `range` no other task writes; `scratch` holds `scratch_len` floats.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run<O: Out>(
        &self,
        q: &QConv2d,
        [mult, bias]: [&[f32]; 2],
        nan_free: bool,
        x: QIn<'_>,
        y: *mut O,
        range: Range<usize>,
        scratch: &mut [f32],
    ) {
        let p = &q.p;
        let (oh, ow) = p.output_hw();
        let plane =
            std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), self.hp * self.wp);
        let req = Requant::<Avx512>::new::<O>(q, nan_free);
        // The padding: rows above and below, and each row's ends, never written after.
        plane.fill(self.pad);
        for pl in range {
            let c = pl % p.c_in;
            self.fill(x, pl * p.h * p.w, [p.h, p.w], &q.x, plane);
            let ch = Channel {
                start: _mm512_set1_epi32(-self.comp[c]),
                mult: Avx512::splat(mult[c]),
                bias: Avx512::splat(bias[c]),
                req: &req,
            };
            let w = &self.w[c * self.kh * self.quads..][..self.kh * self.quads];
            let job = PlaneJob {
                plane,
                w,
                ch: &ch,
                oh,
                ow,
                out: y.add(pl * oh * ow),
            };
            match (self.kh, self.quads) {
                (3, 1) => self.plane::<O, 3, 1>(&job),
                (5, 2) => self.plane::<O, 5, 2>(&job),
                _ => self.plane_any(&job),
            }
        }
    }

    /// One plane's outputs, KH kernel rows of Q quads, the weights and indices in
    /// registers: two vectors a step (two chains of dot products in flight), then one,
    /// then the row's tail masked.
    #[inline(always)]
    unsafe fn plane<O: Out, const KH: usize, const Q: usize>(&self, job: &PlaneJob<'_, O>) {
        let PlaneJob {
            plane,
            w,
            ch,
            oh,
            ow,
            out,
        } = *job;
        let wv: [[__m512i; Q]; KH] =
            std::array::from_fn(|ky| std::array::from_fn(|q| _mm512_set1_epi32(w[ky * Q + q])));
        let idx: [__m512i; Q] =
            std::array::from_fn(|q| _mm512_loadu_si512(self.idx[q].as_ptr().cast()));
        let sums = |rows: &[*const u8; KH], at: usize| {
            let mut acc = ch.start;
            for (row, wr) in rows.iter().zip(&wv) {
                let v = _mm512_loadu_si512(row.add(at).cast());
                for (ix, wq) in idx.iter().zip(wr) {
                    acc = _mm512_dpbusd_epi32(acc, _mm512_permutexvar_epi8(*ix, v), *wq);
                }
            }
            acc
        };
        for oy in 0..oh {
            let row0 = plane.as_ptr().add(oy * self.sh * self.wp);
            let rows: [*const u8; KH] = std::array::from_fn(|ky| row0.add(ky * self.dh * self.wp));
            let out_row = out.add(oy * ow);
            let mut ox = 0;
            while ox + 2 * LANES <= ow {
                let (a, b) = (
                    sums(&rows, ox * self.sw),
                    sums(&rows, (ox + LANES) * self.sw),
                );
                ch.store(out_row.add(ox), a, LANES);
                ch.store(out_row.add(ox + LANES), b, LANES);
                ox += 2 * LANES;
            }
            while ox < ow {
                ch.store(out_row.add(ox), sums(&rows, ox * self.sw), ow - ox);
                ox += LANES;
            }
        }
    }

    /// `plane` for any kernel, the loops not unrolled.
    #[inline(always)]
    unsafe fn plane_any<O: Out>(&self, job: &PlaneJob<'_, O>) {
        let (w, ch, ow) = (job.w, job.ch, job.ow);
        for oy in 0..job.oh {
            let row0 = job.plane.as_ptr().add(oy * self.sh * self.wp);
            for ox in (0..ow).step_by(LANES) {
                let mut acc = ch.start;
                for ky in 0..self.kh {
                    let src = row0.add(ky * self.dh * self.wp + ox * self.sw);
                    let v = _mm512_loadu_si512(src.cast());
                    for quad in 0..self.quads {
                        let ix = _mm512_loadu_si512(self.idx[quad].as_ptr().cast());
                        let wq = _mm512_set1_epi32(w[ky * self.quads + quad]);
                        acc = _mm512_dpbusd_epi32(acc, _mm512_permutexvar_epi8(ix, v), wq);
                    }
                }
                ch.store(job.out.add(oy * ow + ox), acc, ow - ox);
            }
        }
    }

    /// The input plane at x[at..] (h, w) into the padded plane's interior, as bytes
    /// (quantized by `q` where f32). Needs the path's features.
    #[inline(always)]
    unsafe fn fill(
        &self,
        x: QIn<'_>,
        at: usize,
        [h, w]: [usize; 2],
        q: &QuantParams,
        plane: &mut [u8],
    ) {
        let shift = q.dtype.byte_shift() as u8;
        for iy in 0..h {
            let dst = &mut plane[(iy + self.ph) * self.wp + self.pw..][..w];
            match x {
                QIn::U8(x) => copy_run(x[at + iy * w..][..w].as_ptr(), dst.as_mut_ptr(), w),
                QIn::F32(x) => quantize_bytes::<Avx512>(q, shift, &x[at + iy * w..][..w], dst),
            }
        }
    }
}

/// One (image, channel) plane's work: its padded input plane, weights (kernel row, quad),
/// constants and output.
struct PlaneJob<'a, O> {
    plane: &'a [u8],
    w: &'a [i32],
    ch: &'a Channel<'a>,
    oh: usize,
    ow: usize,
    out: *mut O,
}

impl<O> Clone for PlaneJob<'_, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<O> Copy for PlaneJob<'_, O> {}

/// One channel's constants: where the sums start, the requantize steps' multiplier and
/// bias.
struct Channel<'a> {
    start: __m512i,
    mult: __m512,
    bias: __m512,
    req: &'a Requant<Avx512>,
}

impl Channel<'_> {
    /// The sums `acc` requantized, stored to `at[..n.min(LANES)]`. Needs the path's
    /// features.
    #[inline(always)]
    unsafe fn store<O: Out>(&self, at: *mut O, acc: __m512i, n: usize) {
        let v = self
            .req
            .quantize(_mm512_cvtepi32_ps(acc), self.mult, self.bias);
        if n >= LANES {
            O::put::<Avx512>(at, self.req, v);
        } else {
            O::put_lanes::<Avx512>(at, self.req, v, 0..n);
        }
    }
}
