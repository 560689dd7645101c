//! Direct conv2d, stride 1 or 2, dilation 1, groups 1, with the fused epilogue
//! `y = act(conv + bias + residual)`: first layers (an image's 1–4 channels) and the dense
//! convs on wide planes that Winograd does not take (`applies`).
//!
//! The im2col GEMM packs k = c_in·kh·kw rows per pixel panel for m = c_out output channels
//! to consume: with k or m small (27 for a 3×3 RGB stem) the packing copy and the
//! microkernel's per-call epilogue cost as much as the FMAs, and at stride 2 it first
//! splits all of x into phase planes, which go to memory and come back for the packing
//! (a YOLO 16→32 3×3 stride-2 conv on 320² spent 60% of its time in the split and the
//! pack). Here each worker takes bands of output rows; for a band it copies the input
//! rows the band reads into zero-padded planes, split by row/column parity at stride 2 so
//! that each tap's inputs along an output row are contiguous, small enough to stay in L2
//! (`STAGE_FLOATS`), and computes the band's rows straight from them: per chunk of
//! NV·LANES pixels and block of 8 output channels, NV vector loads and 8 broadcasts feed
//! 8·NV FMAs per tap (the GEMM microkernel's ratio), with no packing and one epilogue per
//! output.

use crate::gemm::for_each_panel_range;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, store_epilogue, Simd};
use crate::{Activation, Isa};

use super::im2col::Phases;
use crate::conv2d::Conv2dParams;

/// Output channels per register block.
const OC: usize = 8;

/// Most floats of one band's staged input planes: a worker's band stays in L2 (1 MiB on
/// Zen 4, 2 MiB on the Xeons) beside the weights it streams.
const STAGE_FLOATS: usize = 64 << 10;

/// Bands per image `new` cuts at least, rows allowing, so that 2–4 threads get even shares
/// (an image's bands are the work units).
const MIN_BANDS: usize = 8;

/// Whether `DirectCpu` can compute this conv: stride 1 or 2 on both axes, dilation 1, one
/// group. `ConvAlgorithm::choose` (cpu/mod.rs) decides where it should.
pub fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1 && p.dilation == [1, 1] && (p.stride == [1, 1] || p.stride == [2, 2])
}

/// A direct conv ready to run: weights re-laid for the register blocks.
pub struct DirectCpu {
    p: Conv2dParams,
    isa: Isa,
    /// (oc blocks, taps, OC): tap t = (ic, ky, kx); rows past c_out are zero.
    weight: Vec<f32>,
    /// (oc blocks · OC), zero-padded.
    bias: Vec<f32>,
    /// Per tap, where the band's first output row's input sits in a band's planes.
    offsets: Vec<usize>,
    /// One band's padded (stride 2: parity-split) planes, per channel: `band_rows` output
    /// rows read `planes.hq` phase rows.
    planes: Phases,
    /// Output rows per band.
    band_rows: usize,
}

/// The whole padded (stride 2: parity-split) planes of one channel of x. Rows leave room
/// for the last chunk's lanes past ow, which read zeros and are never stored: a row's
/// chunks end at ow rounded up to 16 (`row_body`).
fn planes(p: &Conv2dParams) -> Phases {
    let (_, ow) = p.output_hw();
    Phases::padded(p, ow.next_multiple_of(16) + p.kw / p.stride[1] + 1)
}

impl DirectCpu {
    /// weight: (c_out, c_in, kh, kw)  bias: (c_out). Panics unless `applies(p)`.
    pub fn new(p: &Conv2dParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> DirectCpu {
        // Padded input (h + 2ph) × (w + 2pw); at stride 2 split into parity phases of half
        // the rows and columns. A band of b output rows reads b + (kh − 1) / s phase rows
        // of every phase.
        assert!(applies(p), "DirectCpu: not a stride 1/2 dense conv: {p:?}");
        let whole = planes(p);
        let row_floats = p.c_in * whole.with_rows(1).per_channel();
        let oh = p.output_hw().0.max(1);
        // At least MIN_BANDS bands where the rows allow: a stem's 112 output rows in 3
        // bands of 47 left one of 2 threads a third of the work.
        let band_rows = (STAGE_FLOATS / row_floats.max(1))
            .saturating_sub((p.kh - 1) / whole.stride())
            .min(oh.div_ceil(MIN_BANDS))
            .clamp(1, oh);
        DirectCpu::with_band_rows(p, weight, bias, isa, band_rows)
    }

    /// As `new`, with bands of `band_rows` output rows (≥ 1) whatever their size: `new`
    /// picks the most that fit `STAGE_FLOATS`; tests cut small convs into bands with it.
    pub fn with_band_rows(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        band_rows: usize,
    ) -> DirectCpu {
        p.validate().expect("DirectCpu: invalid params");
        assert!(applies(p), "DirectCpu: not a stride 1/2 dense conv: {p:?}");
        assert!(isa.is_supported(), "DirectCpu: this CPU cannot run {isa}");
        assert!(band_rows >= 1, "DirectCpu: bands of no rows");
        let taps = p.c_in * p.kh * p.kw;
        assert_eq!(weight.len(), p.c_out * taps, "DirectCpu: weight length");
        bias.inspect(|b| assert_eq!(b.len(), p.c_out, "DirectCpu: bias length"));
        let blocks = p.c_out.div_ceil(OC);
        let mut w = vec![0.0; blocks * taps * OC];
        for (oc, row) in weight.chunks_exact(taps).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                w[((oc / OC) * taps + t) * OC + oc % OC] = v;
            }
        }
        let mut b = vec![0.0; blocks * OC];
        if let Some(bias) = bias {
            b[..p.c_out].copy_from_slice(bias);
        }
        let whole = planes(p);
        let planes = whole.with_rows(band_rows + (p.kh - 1) / whole.stride());
        let mut offsets = Vec::with_capacity(taps);
        for ic in 0..p.c_in {
            for ky in 0..p.kh {
                for kx in 0..p.kw {
                    offsets.push(ic * planes.per_channel() + planes.tap_offset(ky, kx));
                }
            }
        }
        DirectCpu {
            p: *p,
            isa,
            weight: w,
            bias: b,
            offsets,
            planes,
            band_rows,
        }
    }

    fn band_len(&self) -> usize {
        self.p.c_in * self.planes.per_channel()
    }

    /// Floats of scratch `run` needs: one band's planes per worker.
    pub fn scratch_len(&self, threads: usize) -> usize {
        threads.max(1) * self.band_len()
    }

    /// y = act(conv(x · in_scale) + bias + residual); as `Conv2dCpu::run_scaled`: each
    /// input row is multiplied by its channel's scale as a band stages it. Allocates
    /// nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn run_scaled(
        &self,
        x: &[f32],
        in_scale: Option<&[f32]>,
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c_in, h, w)  y, residual: (n, c_out, oh, ow)  scratch: (workers, band)
        let p = &self.p;
        let [n, c_out, oh, ow] = p.output_shape();
        p.assert_io("DirectCpu", x, y, residual);
        in_scale.inspect(|s| p.assert_in_scale("DirectCpu", s));
        let band_len = self.band_len();
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "DirectCpu: scratch too short"
        );
        let bands = oh.div_ceil(self.band_rows);
        let (y, stage) = (SharedMut::new(y), SharedMut::new(scratch));
        let image = p.c_in * p.h * p.w;
        // Workers: contiguous runs of (image, band), each staging its band's rows into its
        // own part of scratch.
        for_each_panel_range(threads, n, bands, |wk, img, range| {
            // SAFETY: worker wk alone uses part wk of scratch.
            let xs = unsafe { stage.part(wk * band_len, band_len) };
            let x_img = &x[img * image..][..image];
            let s_img = in_scale.map(|s| &s[img * p.c_in..][..p.c_in]);
            let r = residual.map(|r| &r[img * c_out * oh * ow..][..c_out * oh * ow]);
            for band in range {
                let oy0 = band * self.band_rows;
                let rows = self.band_rows.min(oh - oy0);
                self.stage(x_img, s_img, oy0, xs);
                for row in 0..rows {
                    // SAFETY: the ISA was checked in `new`; this worker alone writes rows
                    // oy0.. of image img's planes of y.
                    unsafe { dispatch!(self.isa, row_body(self, xs, r, act, img, oy0, row, y)) }
                }
            }
        });
    }

    /// xs: (c_in, qys, qxs, hq, ws) = the phase rows output rows oy0.. of one image read,
    /// times the image's in_scale (c_in) when given.
    fn stage(&self, x_img: &[f32], s_img: Option<&[f32]>, oy0: usize, xs: &mut [f32]) {
        let (p, pc) = (&self.p, self.planes.per_channel());
        let plane = p.h * p.w;
        for (ic, out) in xs.chunks_exact_mut(pc).enumerate() {
            let x_c = &x_img[ic * plane..][..plane];
            let scale = s_img.map(|s| s[ic]);
            self.planes.split_rows(p, x_c, oy0, scale, out);
        }
    }
}

/// Output row oy0 + row of image img, every channel, from the band's planes xs staged at
/// oy0: chunks of NV·LANES pixels (NV = 2 on avx512, where 16 accumulators fit; 1 with 16
/// registers), the last one a single vector where that covers the rest of the row (a
/// 40-wide row is 32 + 16 lanes, not 2 × 32; an 80-wide one 2 × 32 + 16).
///
/// # Safety
/// The CPU has S's features; xs is a band's planes as `DirectCpu::stage` lays them out
/// (so every tap's loads, up to a chunk past ow, stay inside them); residual and y have
/// the conv's shapes, and no other task writes row oy0 + row of image img.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_body<S: Simd>(
    d: &DirectCpu,
    xs: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    img: usize,
    oy0: usize,
    row: usize,
    y: SharedMut,
) {
    let base = xs.as_ptr().add(row * d.planes.ws());
    let out = Out {
        residual,
        act,
        img,
        oy: oy0 + row,
        y,
    };
    let (ow, lanes) = (d.p.output_hw().1, S::LANES);
    for blk in 0..d.p.c_out.div_ceil(OC) {
        let mut ox0 = 0;
        while ox0 < ow {
            if S::LANES >= 16 && ow - ox0 > lanes {
                chunk::<S, 2>(d, base, &out, blk, ox0);
                ox0 += 2 * lanes;
            } else {
                chunk::<S, 1>(d, base, &out, blk, ox0);
                ox0 += lanes;
            }
        }
    }
}

/// Where a chunk's outputs go: row oy of image img of y, with the epilogue's residual and
/// activation.
struct Out<'a> {
    residual: Option<&'a [f32]>,
    act: Activation,
    img: usize,
    oy: usize,
    y: SharedMut<'a>,
}

/// Output channels blk·8.. at pixels ox0.. of one row: NV·LANES pixels, those past ow
/// computed from the zero slack and not stored.
///
/// # Safety
/// As `row_body`; base is the staged planes advanced to the output row.
#[inline(always)]
unsafe fn chunk<S: Simd, const NV: usize>(
    d: &DirectCpu,
    base: *const f32,
    out: &Out,
    blk: usize,
    ox0: usize,
) {
    let p = &d.p;
    let (oh, ow) = p.output_hw();
    let (taps, lanes) = (d.offsets.len(), S::LANES);
    let w = d.weight[blk * taps * OC..][..taps * OC].as_ptr();
    let mut acc = [[S::splat(0.0); NV]; OC];
    for (t, &off) in d.offsets.iter().enumerate() {
        // In bounds: ws leaves a chunk of zeros past ow (see `new`).
        let src = base.add(off + ox0);
        let b: [S::V; NV] = std::array::from_fn(|v| S::load(src.add(v * lanes)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let wv = S::splat(*w.add(t * OC + r));
            for (acc, &b) in acc.iter_mut().zip(&b) {
                *acc = S::fma(wv, b, *acc);
            }
        }
    }
    let oc0 = blk * OC;
    for (r, acc) in acc.iter().enumerate().take(p.c_out - oc0) {
        let oc = oc0 + r;
        // SAFETY: this task alone writes row oy of every channel of image img.
        let y_row = out
            .y
            .part(((out.img * p.c_out + oc) * oh + out.oy) * ow, ow);
        let res = out
            .residual
            .map(|res| &res[(oc * oh + out.oy) * ow..][..ow]);
        for (v, &a) in acc.iter().enumerate() {
            let at = ox0 + v * lanes;
            if at >= ow {
                break;
            }
            let a = S::add(a, S::splat(d.bias[oc]));
            store_epilogue::<S>(a, res, out.act, at, (ow - at).min(lanes), y_row);
        }
    }
}
