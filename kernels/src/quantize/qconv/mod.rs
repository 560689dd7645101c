//! The int8 conv on the CPU, computing what [`QConv2d::reference`] computes, bit for bit:
//! x (f32) quantized by the input's quantization into phase planes of bytes
//! (`planes.rs`), an integer GEMM per (image, group) of those bytes against the int8
//! weights (`pack.rs`, `tiles.rs`: `vpdpbusd` with VNNI), then the requantize epilogue
//! (`epilogue.rs`): scale, bias, relu, the output's quantization. `run` writes the output
//! dequantized, as f32 on the quantization's grid (what a PT2E model's next op reads);
//! `run_io` reads and writes bytes too, where the engine keeps int8 values as bytes
//! between int8 ops (an unpadded stride-1 conv reads those in place as its planes).
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. An int8 input is shifted to u8 by +128
//! (a uint8 one is not), so each sum carries `(zp + shift) · Σ_k w` too: that
//! compensation is taken off where the accumulators start, and padding holds the shifted
//! zero point, so it adds `(zp − zp) · w = 0` as the reference's skipped taps do.

mod epilogue;
mod pack;
mod planes;
mod tiles;

#[cfg(test)]
mod tests;

use self::planes::Planes;
use super::conv::{QConv2d, MAX_K};
use super::lanes::OutPtr;
use super::qadd::QAdd;
use super::QIsa;
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::dispatch;

/// Output channels per A panel and microkernel tile.
const MR: usize = 8;
/// Grid columns per B panel and microkernel tile.
const NR: usize = 48;

/// A prepared int8 conv: weights packed once, when the session is built.
pub struct QConvCpu {
    q: QConv2d,
    qisa: QIsa,
    planes: Planes,
    /// Per group and MR panel: the packed weights (pack.rs).
    a: Vec<i8>,
    /// Per group and padded output channel: `(zp + shift) · Σ_k w`.
    comp: Vec<i32>,
    /// Per output channel: the input's scale times the channel's weight scale.
    multiplier: Vec<f32>,
    /// (c_out): zeros where the conv has none (adding +0.0 changes no quantized value).
    bias: Vec<f32>,
    /// The output's quantization as the epilogue clamps: `QConv2d::y_clamped`.
    y: super::QuantParams,
    /// im2col row kk's run, from its group's first plane byte; rows past k read 0.
    rows: Vec<usize>,
    /// 128 for int8 inputs (shifted to u8), 0 for uint8.
    shift: u8,
    /// An add fused after the conv (`with_add`).
    add: Option<QAdd>,
}

impl QConvCpu {
    /// Whether the integer kernel can compute `q`: its sums fit an i32 (k ≤ MAX_K).
    pub fn applies(q: &QConv2d) -> bool {
        let [_, cg_in, kh, kw] = q.p.weight_shape();
        cg_in * kh * kw <= MAX_K
    }

    /// Prepares `q` for `qisa`. w: (c_out, c_in/groups, kh, kw) int8, bias: (c_out),
    /// finite. Panics on invalid params, wrong lengths, a bias that is not finite, a conv
    /// `applies` refuses or an unsupported `qisa`.
    pub fn new(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, qisa: QIsa) -> QConvCpu {
        let p = &q.p;
        p.validate().expect("QConvCpu: invalid params");
        assert!(qisa.is_supported(), "QConvCpu: this CPU cannot run {qisa}");
        assert!(
            QConvCpu::applies(q),
            "QConvCpu: k past what an i32 sum holds"
        );
        let [c_out, cg_in, kh, kw] = p.weight_shape();
        let (m, k) = (c_out / p.groups, cg_in * kh * kw);
        assert_eq!(w.len(), c_out * k, "QConvCpu: weight length");
        assert_eq!(q.w_scale.len(), c_out, "QConvCpu: weight scales");
        bias.inspect(|b| assert_eq!(b.len(), c_out, "QConvCpu: bias length"));
        // The epilogue's shortcut holds for finite values only (epilogue.rs).
        let finite = bias.is_none_or(|b| b.iter().all(|v| v.is_finite()));
        assert!(finite, "QConvCpu: a bias that is not finite");
        let shift = q.x.dtype.byte_shift() as u8;
        let (a, sums) = pack::pack_a(w, p.groups, m, k);
        let zp_u = q.x.zero_point + i32::from(shift);
        let planes = Planes::new(p);
        let mut rows = vec![0; k.div_ceil(4) * 4];
        for (kk, row) in rows.iter_mut().enumerate().take(k) {
            let (ci, ky, kx) = (kk / (kh * kw), kk / kw % kh, kk % kw);
            let tap = planes.tap_offset(ky * p.dilation[0], kx * p.dilation[1]);
            *row = ci * planes.per_channel() + tap;
        }
        QConvCpu {
            multiplier: q.w_scale.iter().map(|&s| q.x.scale * s).collect(),
            bias: bias.map_or_else(|| vec![0.0; c_out], <[f32]>::to_vec),
            comp: sums.iter().map(|&s| zp_u * s).collect(),
            y: q.y_clamped(),
            q: q.clone(),
            qisa,
            planes,
            a,
            rows,
            shift,
            add: None,
        }
    }

    /// The conv followed by the int8 add `add` of its output (the add's first input,
    /// quantized as the conv's output) and a residual read as bytes (`run_add`), in one
    /// pass: the epilogue takes QAdd's steps on each requantized value, bit for bit what
    /// the two ops give (a ResNet block's last conv and its residual add). Panics where
    /// the add's first input is not quantized as the conv's output.
    pub fn with_add(mut self, add: QAdd) -> QConvCpu {
        assert_eq!(
            add.a, self.q.y,
            "QConvCpu: the add's first input is the conv's output"
        );
        self.add = Some(add);
        self
    }

    /// The fused add, if any.
    pub fn add(&self) -> Option<&QAdd> {
        self.add.as_ref()
    }

    /// The path it runs.
    pub fn qisa(&self) -> QIsa {
        self.qisa
    }

    /// Bytes of the phase planes, all images, with the runs' slack.
    fn planes_len(&self) -> usize {
        let p = &self.q.p;
        p.n * p.c_in * self.planes.per_channel() + self.planes.slack(NR)
    }

    /// Floats of scratch `run` needs with `threads` threads: the planes, then one B panel
    /// per thread (bytes, counted in floats).
    pub fn scratch_len(&self, threads: usize) -> usize {
        let bytes = self.planes_len() + threads.max(1) * self.rows.len() * NR;
        bytes.div_ceil(4)
    }

    /// y = the conv's quantized output, dequantized (module doc), from x (n, c_in, h, w);
    /// y: (n, c_out, oh, ow). Allocates nothing, locks nothing.
    pub fn run(&self, x: &[f32], y: &mut [f32], scratch: &mut [f32], threads: usize) {
        self.run_io(QIn::F32(x), QOut::F32(y), scratch, threads)
    }

    /// As `run`, with x and y each either f32 or bytes: a value stored as bytes holds its
    /// quantized integers q as `q + 128` for int8, `q` for uint8 (what `vpdpbusd` reads),
    /// x by the input's quantization and y by the output's. Between two int8 convs that is
    /// a quarter of the bytes, and the reader copies instead of quantizing.
    pub fn run_io(&self, x: QIn<'_>, y: QOut<'_>, scratch: &mut [f32], threads: usize) {
        assert!(self.add.is_none(), "QConvCpu: a fused add needs run_add");
        self.run_inner(x, None, y, scratch, threads)
    }

    /// As `run_io`, with the fused add (`with_add`): y = add(conv(x), residual), the
    /// residual (the output's shape) as bytes by the add's second quantization, y by the
    /// add's output quantization. Panics without a fused add.
    pub fn run_add(
        &self,
        x: QIn<'_>,
        residual: &[u8],
        y: QOut<'_>,
        scratch: &mut [f32],
        threads: usize,
    ) {
        assert!(self.add.is_some(), "QConvCpu: run_add without a fused add");
        assert_eq!(residual.len(), y.len(), "QConvCpu: residual length");
        self.run_inner(x, Some(residual), y, scratch, threads)
    }

    fn run_inner(
        &self,
        x: QIn<'_>,
        residual: Option<&[u8]>,
        y: QOut<'_>,
        scratch: &mut [f32],
        threads: usize,
    ) {
        let p = &self.q.p;
        let [n, c_out, oh, ow] = p.output_shape();
        assert_eq!(x.len(), n * p.c_in * p.h * p.w, "QConvCpu: x length");
        assert_eq!(y.len(), n * c_out * oh * ow, "QConvCpu: y length");
        let threads = threads.max(1);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "QConvCpu: scratch too short"
        );
        // SAFETY: the floats' bytes, for as long as `scratch` is borrowed; any byte is a u8.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), scratch.len() * 4)
        };
        let (planes, panels) = bytes.split_at_mut(self.planes_len());
        // Bytes of an unpadded stride-1 conv are their planes already: read in place.
        let planes: &[u8] = match x {
            QIn::U8(x) if self.planes.is_x(self.planes.per_channel()) => x,
            _ => {
                self.fill_planes(x, planes, threads);
                planes
            }
        };

        let (oh, _) = p.output_hw();
        let m = p.c_out / p.groups;
        let (m_panels, cols) = (m.div_ceil(MR), oh * self.planes.wq);
        let n_panels = cols.div_ceil(NR);
        // Few column panels (7×7 outputs have 2): split the channels too, so that every
        // thread has work.
        let base = p.n * p.groups * n_panels;
        let splits = (4 * threads).div_ceil(base).clamp(1, m_panels);
        let items = base * splits;
        let shares = threads.min(items);
        let panel_len = self.rows.len() * NR;
        let y = match y {
            QOut::F32(y) => OutPtr::F32(SharedMut::new(y).as_mut_ptr()),
            QOut::U8(y) => OutPtr::U8(y.as_mut_ptr()),
        };
        let panels = SharedBytes(panels.as_mut_ptr());
        // Read only (the pointer is mutable for SharedBytes' sake).
        let res = SharedBytes(residual.map_or(std::ptr::null_mut(), |r| r.as_ptr().cast_mut()));
        let per_image = p.c_in * self.planes.per_channel();
        let cg = p.c_in / p.groups * self.planes.per_channel();
        for_each_task(threads, shares, |s| {
            // SAFETY: share s alone uses B panel s, inside `panels` (scratch_len).
            let b = unsafe { std::slice::from_raw_parts_mut(panels.at(s * panel_len), panel_len) };
            for item in items * s / shares..items * (s + 1) / shares {
                let (split, rest) = (item % splits, item / splits);
                let (panel, rest) = (rest % n_panels, rest / n_panels);
                let (g, img) = (rest % p.groups, rest / p.groups);
                pack::pack_b(
                    &planes[img * per_image + g * cg..],
                    &self.rows,
                    panel * NR,
                    b,
                );
                let (lo, hi) = (m_panels * split / splits, m_panels * (split + 1) / splits);
                for mp in lo..hi {
                    // SAFETY: this item alone writes y's elements of these channels and
                    // columns; B's panel is packed whole.
                    unsafe { self.tile(img, g, mp, b, panel * NR, y, res.at(0)) };
                }
            }
        });
    }

    /// Quantizes x into the phase planes (copies it, for bytes), one channel plane per
    /// task.
    fn fill_planes(&self, x: QIn<'_>, planes: &mut [u8], threads: usize) {
        let p = &self.q.p;
        let (pc, hw) = (self.planes.per_channel(), p.h * p.w);
        let pad = (self.q.x.zero_point + i32::from(self.shift)) as u8;
        let dst = SharedBytes(planes.as_mut_ptr());
        for_each_task(threads, p.n * p.c_in, |c| {
            // SAFETY: task c alone writes channel plane c; dispatch! checks the ISA.
            unsafe {
                let out = std::slice::from_raw_parts_mut(dst.at(c * pc), pc);
                let (pl, q, shift) = (&self.planes, &self.q.x, self.shift);
                match x {
                    QIn::F32(x) => {
                        let src = &x[c * hw..][..hw];
                        dispatch!(
                            self.qisa.float_isa(),
                            fill_channel(pl, q, shift, pad, src, out)
                        );
                    }
                    QIn::U8(x) => pl.copy(&x[c * hw..][..hw], pad, out),
                }
            }
        });
    }
}

/// `Planes::fill` under dispatch!.
#[inline(always)]
unsafe fn fill_channel<S: crate::simd::Simd>(
    planes: &Planes,
    q: &super::QuantParams,
    shift: u8,
    pad: u8,
    x: &[f32],
    out: &mut [u8],
) {
    planes.fill::<S>(q, shift, pad, x, out)
}

/// The int8 conv's input: f32 values, or bytes (`QConvCpu::run_io`).
#[derive(Clone, Copy)]
pub enum QIn<'a> {
    /// Any f32 values, quantized as read.
    F32(&'a [f32]),
    /// Quantized values as bytes.
    U8(&'a [u8]),
}

impl QIn<'_> {
    /// Elements.
    pub fn len(&self) -> usize {
        match self {
            QIn::F32(x) => x.len(),
            QIn::U8(x) => x.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The int8 conv's output: dequantized f32 values, or bytes (`QConvCpu::run_io`).
pub enum QOut<'a> {
    /// The quantized values dequantized.
    F32(&'a mut [f32]),
    /// The quantized values as bytes.
    U8(&'a mut [u8]),
}

impl QOut<'_> {
    /// Elements.
    pub fn len(&self) -> usize {
        match self {
            QOut::F32(y) => y.len(),
            QOut::U8(y) => y.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A byte buffer the tasks of one run write disjoint parts of.
#[derive(Clone, Copy)]
struct SharedBytes(*mut u8);
// SAFETY: the tasks that share it write disjoint ranges (see each use).
unsafe impl Send for SharedBytes {}
// SAFETY: as above.
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    /// The byte `i` bytes in (a method, so closures capture the whole Sync wrapper).
    fn at(self, i: usize) -> *mut u8 {
        self.0.wrapping_add(i)
    }
}
