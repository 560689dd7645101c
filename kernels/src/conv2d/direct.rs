//! Direct conv2d for first layers: few input channels (an image's 1–4), stride 1 or 2,
//! dilation 1, groups 1, with the fused epilogue `y = act(conv + bias + residual)`.
//!
//! The im2col GEMM would pack k = c_in·kh·kw rows (27 for a 3×3 RGB stem) per pixel panel
//! for only m = c_out output channels to consume: with k and m that small the packing copy
//! and the microkernel's per-call epilogue cost as much as the FMAs. Here x is copied once
//! per run into zero-padded planes, split by row/column parity at stride 2 so that each
//! tap's inputs along an output row are contiguous, and then every output row is computed
//! straight from those planes: per chunk of NV·LANES pixels and block of 8 output
//! channels, NV vector loads and 8 broadcasts feed 8·NV FMAs per tap (the GEMM
//! microkernel's ratio), with no packing and one epilogue per output.

use crate::activation::cpu::{dispatch, store_epilogue, SharedMut, Simd};
use crate::parallel::for_each_task;
use crate::{Activation, Isa};

use super::im2col::Phases;
use super::Conv2dParams;

/// Output channels per register block.
const OC: usize = 8;

/// Whether `DirectCpu` takes this conv: an image-input layer, where it beats the GEMM.
pub fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1
        && p.c_in <= 4
        && p.dilation == [1, 1]
        && (p.stride == [1, 1] || p.stride == [2, 2])
}

/// A first-layer conv ready to run: weights re-laid for the register blocks.
pub struct DirectCpu {
    p: Conv2dParams,
    isa: Isa,
    /// (oc blocks, taps, OC): tap t = (ic, ky, kx); rows past c_out are zero.
    weight: Vec<f32>,
    /// (oc blocks · OC), zero-padded.
    bias: Vec<f32>,
    /// Per tap, where output (0, 0)'s input sits in one image's planes.
    offsets: Vec<usize>,
    /// x's padded (stride 2: parity-split) planes, per channel; one image holds c_in.
    planes: Phases,
}

impl DirectCpu {
    /// weight: (c_out, c_in, kh, kw)  bias: (c_out). Panics unless `applies(p)`.
    pub fn new(p: &Conv2dParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> DirectCpu {
        p.validate().expect("DirectCpu: invalid params");
        assert!(applies(p), "DirectCpu: not a first-layer conv: {p:?}");
        assert!(isa.is_supported(), "DirectCpu: this CPU cannot run {isa}");
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
        // Padded input (h + 2ph) × (w + 2pw); at stride 2 split into parity phases of half
        // the rows and columns. Rows leave room for the last chunk's lanes past ow (2
        // vectors of the widest ISA), which read zeros and are never stored.
        let (_, ow) = p.output_hw();
        let planes = Phases::padded(p, ow.next_multiple_of(32) + p.kw / p.stride[1] + 1);
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
        }
    }

    fn image_len(&self) -> usize {
        self.p.c_in * self.planes.per_channel()
    }

    /// Floats of scratch `run` needs: every image's padded planes.
    pub fn scratch_len(&self, _threads: usize) -> usize {
        self.p.n * self.image_len()
    }

    /// y = act(conv(x) + bias + residual); as `Conv2dCpu::run`. Allocates nothing.
    pub fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c_in, h, w)  y, residual: (n, c_out, oh, ow)
        let p = &self.p;
        let [n, c_out, oh, ow] = p.output_shape();
        p.assert_io("DirectCpu", x, y, residual);
        let planes = &mut scratch[..self.scratch_len(threads)];
        self.fill_planes(x, planes, threads);
        let planes = &*planes;
        let y = SharedMut::new(y);
        // Tasks: (image, output row), each writing its row of every output channel.
        for_each_task(threads, n * oh, |task| {
            let (img, oy) = (task / oh, task % oh);
            let xs = &planes[img * self.image_len()..][..self.image_len()];
            let r = residual.map(|r| &r[img * c_out * oh * ow..][..c_out * oh * ow]);
            // SAFETY: the ISA was checked in `new`; task (img, oy) alone writes row oy of
            // image img's planes of y.
            unsafe { dispatch!(self.isa, row_body(self, xs, r, act, img, oy, y)) }
        });
    }

    /// planes: (n, c_in, qys, qxs, hq, ws) = x zero-padded and split by parity, a task per
    /// input plane as Conv2dCpu splits its phase planes: now that 224² stems come here,
    /// this copy was the serial part of a 2-thread run (its gain is unmeasured: the shared
    /// machine's 2-thread timings were noise when it was written).
    fn fill_planes(&self, x: &[f32], planes: &mut [f32], threads: usize) {
        let (p, pc) = (&self.p, self.planes.per_channel());
        let plane = p.h * p.w;
        let dst = SharedMut::new(planes);
        for_each_task(threads, p.n * p.c_in, |c| {
            // SAFETY: task c alone writes channel plane c's pc floats of `planes`.
            let out = unsafe { dst.part(c * pc, pc) };
            self.planes.split(p, &x[c * plane..][..plane], out);
        });
    }
}

/// Output row oy of image img, every channel; NV vectors per chunk (2 on avx512, where
/// 16 accumulators fit; 1 with 16 registers).
///
/// # Safety
/// The CPU has S's features; xs is one image's planes as `fill_planes` lays them out (so
/// every tap's loads, up to a chunk past ow, stay inside them); residual and y have the
/// conv's shapes, and no other task writes row oy of image img.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_body<S: Simd>(
    d: &DirectCpu,
    xs: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    img: usize,
    oy: usize,
    y: SharedMut,
) {
    if S::LANES >= 16 {
        row::<S, 2>(d, xs, residual, act, img, oy, y)
    } else {
        row::<S, 1>(d, xs, residual, act, img, oy, y)
    }
}

/// # Safety
/// As `row_body`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row<S: Simd, const NV: usize>(
    d: &DirectCpu,
    xs: &[f32],
    residual: Option<&[f32]>,
    act: Activation,
    img: usize,
    oy: usize,
    y: SharedMut,
) {
    let p = &d.p;
    let (oh, ow) = p.output_hw();
    let taps = d.offsets.len();
    let lanes = S::LANES;
    let chunk = NV * lanes;
    let base = xs.as_ptr().add(oy * d.planes.ws());
    for ox0 in (0..ow).step_by(chunk) {
        for blk in 0..p.c_out.div_ceil(OC) {
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
                let y_row = y.part(((img * p.c_out + oc) * oh + oy) * ow, ow);
                let res = residual.map(|res| &res[(oc * oh + oy) * ow..][..ow]);
                for (v, &a) in acc.iter().enumerate() {
                    let at = ox0 + v * lanes;
                    if at >= ow {
                        break;
                    }
                    let a = S::add(a, S::splat(d.bias[oc]));
                    store_epilogue::<S>(a, res, act, at, (ow - at).min(lanes), y_row);
                }
            }
        }
    }
}
