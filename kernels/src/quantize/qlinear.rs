//! The int8 linear on the CPU: y (n, out) from x (n, in) through int8 weights (out, in),
//! computing what [`QConv2d::reference`] computes for the same layer seen as a 1×1 conv
//! on a 1×1 image (`QLinearCpu::conv_params`), bit for bit: a PT2E model's
//! `fake_quant → linear → [relu] → fake_quant` folded into one op (engine/passes/int8.rs).
//!
//! At batch 1 it is a GEMV, bound by reading the weights: they are packed once (`new`)
//! into panels of 16 output channels, `[kq][16][4]` signed bytes per panel, so that one
//! 64-byte load is one `vpdpbusd` operand (16 channels × 4 k) against a broadcast quad of
//! x, and a run streams each weight byte once (`dots.rs`). x is quantized to unsigned
//! bytes first (+128 for int8 x, as the int8 conv does, kernels/src/quantize/qconv/mod.rs),
//! so each sum carries `(zp + shift) · Σ_k w`: that compensation starts the accumulators.
//! The epilogue is the oracle's f32 steps per output channel: the sum as f32 times
//! `s_x · s_w[o]`, then the bias (a product, then a sum: no FMA), the relu, the output's
//! quantization clamped by `QConv2d::y_clamped` (kernels/src/quantize/lanes.rs's `Grid`).
//! Threads split the panels; a batch past one runs up to four rows per pass over the
//! weights.

mod dots;

#[cfg(test)]
mod tests;

use super::conv::{QConv2d, MAX_K};
use super::lanes::{Grid, Lane, OutPtr};
use super::qconv::{QIn, QOut};
use super::{reference, QIsa, QuantParams};
use crate::conv2d::Conv2dParams;
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::{dispatch, Simd};

use self::dots::{Operands, Sums};

/// Output channels per weight panel: one zmm of i32 sums.
const PANEL: usize = 16;

/// A prepared int8 linear: weights packed once, when the session is built.
pub struct QLinearCpu {
    q: QConv2d,
    qisa: QIsa,
    /// Quads of k: in_features / 4, rounded up (the weights padded with zeros).
    kq: usize,
    /// Per panel of PANEL output channels, `[kq][PANEL][4]` (module doc).
    w: Vec<i8>,
    /// (panels · PANEL): `(zp + shift) · Σ_k w` per output channel, 0 past out.
    comp: Vec<i32>,
    /// (panels · PANEL): the input's scale times the channel's weight scale.
    multiplier: Vec<f32>,
    /// (panels · PANEL): zeros where the layer has none (+0.0 changes no quantized value).
    bias: Vec<f32>,
    /// 128 for int8 inputs (shifted to u8), 0 for uint8.
    shift: u8,
}

impl QLinearCpu {
    /// The 1×1 conv on a 1×1 image that a linear of x (n, in_features) to y (n,
    /// out_features) is: the shape of the [`QConv2d`] that describes it.
    pub fn conv_params(n: usize, in_features: usize, out_features: usize) -> Conv2dParams {
        Conv2dParams {
            n,
            c_in: in_features,
            h: 1,
            w: 1,
            c_out: out_features,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// Whether `q` is a linear this kernel computes: a `conv_params` shape whose sums fit
    /// an i32 (in_features ≤ MAX_K).
    pub fn applies(q: &QConv2d) -> bool {
        let p = &q.p;
        p == &QLinearCpu::conv_params(p.n, p.c_in, p.c_out) && p.c_in <= MAX_K
    }

    /// Prepares `q` for `qisa`. w: (out, in) int8, bias: (out). Panics on invalid params,
    /// a shape `applies` refuses, wrong lengths or an unsupported `qisa`.
    pub fn new(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, qisa: QIsa) -> QLinearCpu {
        let p = &q.p;
        p.validate().expect("QLinearCpu: invalid params");
        assert!(
            qisa.is_supported(),
            "QLinearCpu: this CPU cannot run {qisa}"
        );
        assert!(
            QLinearCpu::applies(q),
            "QLinearCpu: not a linear's shape, or k past what an i32 sum holds"
        );
        let (k, out) = (p.c_in, p.c_out);
        assert_eq!(w.len(), out * k, "QLinearCpu: weight length");
        assert_eq!(q.w_scale.len(), out, "QLinearCpu: weight scales");
        bias.inspect(|b| assert_eq!(b.len(), out, "QLinearCpu: bias length"));
        let (kq, padded) = (k.div_ceil(4), out.div_ceil(PANEL) * PANEL);
        let shift = q.x.dtype.byte_shift();
        let zp_u = q.x.zero_point + shift;
        let mut packed = vec![0i8; padded / PANEL * kq * PANEL * 4];
        let mut comp = vec![0i32; padded];
        for (o, row) in w.chunks_exact(k).enumerate() {
            let panel = &mut packed[o / PANEL * kq * PANEL * 4..][..kq * PANEL * 4];
            for (kk, &v) in row.iter().enumerate() {
                panel[(kk / 4 * PANEL + o % PANEL) * 4 + kk % 4] = v;
            }
            let sum: i32 = row.iter().map(|&v| i32::from(v)).sum();
            // Wrapping, as the kernels' sums wrap: the end result fits an i32 (MAX_K),
            // a part of it need not.
            comp[o] = zp_u.wrapping_mul(sum);
        }
        let mut multiplier = vec![0.0; padded];
        for (m, &s) in multiplier.iter_mut().zip(&q.w_scale) {
            *m = q.x.scale * s;
        }
        let mut padded_bias = vec![0.0; padded];
        if let Some(b) = bias {
            padded_bias[..out].copy_from_slice(b);
        }
        QLinearCpu {
            q: q.clone(),
            qisa,
            kq,
            w: packed,
            comp,
            multiplier,
            bias: padded_bias,
            shift: shift as u8,
        }
    }

    /// The path it runs.
    pub fn qisa(&self) -> QIsa {
        self.qisa
    }

    /// Floats of scratch `run` needs: x as bytes, each row padded to a whole quad (the
    /// same for any number of threads).
    pub fn scratch_len(&self, _threads: usize) -> usize {
        // n rows of 4·kq bytes, counted in floats.
        self.q.p.n * self.kq
    }

    /// y (n, out) = the linear's quantized output, dequantized, from x (n, in).
    /// Allocates nothing, locks nothing.
    pub fn run(&self, x: &[f32], y: &mut [f32], scratch: &mut [f32], threads: usize) {
        self.run_io(QIn::F32(x), QOut::F32(y), scratch, threads)
    }

    /// As `run`, with x and y each f32 or bytes, as `QConvCpu::run_io` reads and writes
    /// them (`q + 128` for int8, `q` for uint8). Allocates nothing, locks nothing.
    pub fn run_io(&self, x: QIn<'_>, y: QOut<'_>, scratch: &mut [f32], threads: usize) {
        let p = &self.q.p;
        let (n, k, out) = (p.n, p.c_in, p.c_out);
        assert_eq!(x.len(), n * k, "QLinearCpu: x length");
        assert_eq!(y.len(), n * out, "QLinearCpu: y length");
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "QLinearCpu: scratch too short"
        );
        let stride = 4 * self.kq;
        // SAFETY: the floats' bytes, for as long as `scratch` is borrowed; any byte is a u8.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), n * stride)
        };
        // Bytes whose rows are whole quads are read in place.
        let x: &[u8] = match x {
            QIn::U8(x) if k == stride => x,
            _ => {
                self.fill_x(x, buf);
                buf
            }
        };
        let y = match y {
            QOut::F32(y) => OutPtr::F32(SharedMut::new(y).as_mut_ptr()),
            QOut::U8(y) => OutPtr::U8(y.as_mut_ptr()),
        };
        let panels = out.div_ceil(PANEL);
        let shares = threads.clamp(1, panels);
        for_each_task(threads, shares, |s| {
            let (lo, hi) = (panels * s / shares, panels * (s + 1) / shares);
            // SAFETY: share s alone writes the output channels of panels lo..hi.
            unsafe { self.panels(x, lo..hi, y) }
        });
    }

    /// x as rows of `4·kq` bytes, each value quantized (f32) or copied (bytes), plus the
    /// shift; the padding past in_features 0 (its weights are 0).
    fn fill_x(&self, x: QIn<'_>, buf: &mut [u8]) {
        let (k, stride) = (self.q.p.c_in, 4 * self.kq);
        for (r, dst) in buf.chunks_exact_mut(stride).enumerate() {
            let (row, pad) = dst.split_at_mut(k);
            match x {
                QIn::F32(x) => {
                    let (src, q, shift) = (&x[r * k..][..k], &self.q.x, self.shift);
                    // SAFETY: dispatch! checks the ISA.
                    unsafe { dispatch!(self.qisa.float_isa(), quantize_row(q, shift, src, row)) }
                }
                QIn::U8(x) => row.copy_from_slice(&x[r * k..][..k]),
            }
            pad.fill(0);
        }
    }

    /// Output channels of `panels` for every row, from x's bytes (rows of 4·kq).
    ///
    /// # Safety
    /// `y` must be the whole output, and no other thread may write these channels.
    unsafe fn panels(&self, x: &[u8], panels: std::ops::Range<usize>, y: OutPtr) {
        let n = self.q.p.n;
        let (stride, panel_len) = (4 * self.kq, self.kq * PANEL * 4);
        let (most_panels, most_rows) = dots::block(self.qisa);
        let mut sums: Sums = [0; dots::SUMS];
        for r0 in (0..n).step_by(most_rows) {
            let rows = most_rows.min(n - r0);
            let mut p0 = panels.start;
            while p0 < panels.end {
                let count = most_panels.min(panels.end - p0);
                let o = Operands {
                    w: self.w[p0 * panel_len..].as_ptr(),
                    panel_len,
                    panels: count,
                    comp: self.comp[p0 * PANEL..].as_ptr(),
                    x: x[r0 * stride..].as_ptr(),
                    stride,
                    rows,
                    kq: self.kq,
                };
                dots::sums(self.qisa, &o, &mut sums);
                let at = Block {
                    r0,
                    rows,
                    p0,
                    panels: count,
                    stride: most_panels,
                };
                let c = self;
                dispatch!(self.qisa.float_isa(), store_block(c, &sums, at, y));
                p0 += count;
            }
        }
    }
}

/// Where a block of sums goes: rows `r0..r0 + rows`, panels `p0..p0 + panels`, sums
/// for row r and panel p at `(r · stride + p) · PANEL`.
#[derive(Clone, Copy)]
struct Block {
    r0: usize,
    rows: usize,
    p0: usize,
    panels: usize,
    stride: usize,
}

/// `dst[i] = quantize(q, src[i]) + shift`, the reference's f32 steps. Needs S's features.
#[inline(always)]
unsafe fn quantize_row<S: Simd>(q: &QuantParams, shift: u8, src: &[f32], dst: &mut [u8]) {
    let (grid, plus) = (Grid::<S>::new(q), S::splat(f32::from(shift)));
    let mut i = 0;
    while i + S::LANES <= src.len() {
        let v = grid.quantize_or_zero(S::load(src.as_ptr().add(i)));
        S::store_u8(dst.as_mut_ptr().add(i), S::add(v, plus));
        i += S::LANES;
    }
    for j in i..src.len() {
        dst[j] = (reference::quantize(q, src[j]) + i32::from(shift)) as u8;
    }
}

/// A block's sums requantized into y. Needs S's features; `y` as for `panels`.
#[inline(always)]
unsafe fn store_block<S: Simd>(c: &QLinearCpu, sums: &Sums, at: Block, y: OutPtr) {
    match y {
        OutPtr::F32(y) => store_rows::<S, f32>(c, sums, at, y),
        OutPtr::U8(y) => store_rows::<S, u8>(c, sums, at, y),
    }
}

/// `store_block` for one output type: whole panels straight into y, the last partial one
/// through a buffer.
#[inline(always)]
unsafe fn store_rows<S: Simd, T: Lane>(c: &QLinearCpu, sums: &Sums, at: Block, y: *mut T) {
    let out = c.q.p.c_out;
    let (grid, relu) = (Grid::<S>::new(&c.q.y_clamped()), c.q.relu);
    for r in 0..at.rows {
        for p in 0..at.panels {
            let o = (at.p0 + p) * PANEL;
            let acc = &sums[(r * at.stride + p) * PANEL..][..PANEL];
            let dst = y.add((at.r0 + r) * out + o);
            let scale = [&c.multiplier[o..][..PANEL], &c.bias[o..][..PANEL]];
            if o + PANEL <= out {
                requantize::<S, T>(acc, scale, &grid, relu, dst);
                continue;
            }
            let mut part = [T::default(); PANEL];
            requantize::<S, T>(acc, scale, &grid, relu, part.as_mut_ptr());
            std::slice::from_raw_parts_mut(dst, out - o).copy_from_slice(&part[..out - o]);
        }
    }
}

/// `dst[0..PANEL] = quantize(y, relu(acc · mult + bias))` lane by lane, the oracle's f32
/// steps (a NaN, from a NaN bias, quantizes to 0 as the oracle's does). Needs S's
/// features.
#[inline(always)]
unsafe fn requantize<S: Simd, T: Lane>(
    acc: &[i32],
    [mult, bias]: [&[f32]; 2],
    grid: &Grid<S>,
    relu: bool,
    dst: *mut T,
) {
    let zero = S::splat(0.0);
    let mut i = 0;
    while i + S::LANES <= PANEL {
        let product = S::mul(
            S::load_i32(acc.as_ptr().add(i)),
            S::load(mult.as_ptr().add(i)),
        );
        let mut v = S::add(product, S::load(bias.as_ptr().add(i)));
        if relu {
            v = S::max(v, zero);
        }
        T::put::<S>(dst.add(i), grid, grid.quantize_or_zero(v));
        i += S::LANES;
    }
}
