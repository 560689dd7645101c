//! The int8 depthwise conv on the CPU (groups = c_in = c_out), computing what
//! [`QConv2d::reference`] computes, bit for bit. The int8 GEMM (`qconv/`) computes 8
//! output channels per panel, so a depthwise conv's one channel per group would waste 7
//! of 8 rows; here each (image, channel) plane is its own small conv instead:
//!
//! 1. the plane's input, quantized as read (f32) or as it is (bytes), written as
//!    (q − zp) in f32 into zero-padded phase planes in scratch (`layout.rs`);
//! 2. per vector of output grid columns, the taps' exact sums by f32 FMAs, then the
//!    requantize steps: scale, bias, relu, the output's (clamped) quantization, stored as
//!    f32 or bytes (`grid.rs`, `requant.rs`).
//!
//! Planes of short rows (7×7 outputs) go a block of channels at a time instead, one
//! vector holding one pixel of each (`blocked.rs`). On CPUs with AVX-512 VNNI and VBMI
//! every plane sums its bytes with `vpdpbusd` instead (`vbmi.rs`), without step 1's f32.
//! Planes, or blocks, are split over the threads in contiguous runs, each thread with its
//! own scratch part.

mod blocked;
mod grid;
mod layout;
mod requant;
#[cfg(target_arch = "x86_64")]
mod vbmi;

#[cfg(test)]
mod tests;

use std::ops::Range;

use self::blocked::Blocked;
use self::grid::{Any, Epilogue, Fixed, Runs, Taps};
use self::layout::{Convert, Layout};
use self::requant::{Out, Requant};
use super::conv::QConv2d;
use super::lanes::OutPtr;
use super::qconv::{QIn, QOut};
use super::QIsa;
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::{dispatch, Simd};

pub use self::grid::MAX_TAPS;

/// A prepared int8 depthwise conv: the weights as f32 once, when the session is built.
pub struct QDepthwiseCpu {
    q: QConv2d,
    qisa: QIsa,
    layout: Layout,
    /// The grid vectors' runs of a small plane, for the path's lanes (grid.rs).
    runs: Option<Runs>,
    /// The blocked path's constants, where it takes the conv (blocked.rs).
    blocked: Option<Blocked>,
    /// The `vpdpbusd` path's constants, where it takes the conv (vbmi.rs).
    #[cfg(target_arch = "x86_64")]
    rows: Option<vbmi::Rows>,
    /// (c, kh·kw): the int8 weights as f32.
    w: Vec<f32>,
    /// Per channel: the input's scale times the channel's weight scale.
    multiplier: Vec<f32>,
    /// (c): zeros where the conv has none (adding +0.0 changes no quantized value).
    bias: Vec<f32>,
    /// Every bias and multiplier finite: no sum is NaN (requant.rs).
    nan_free: bool,
}

impl QDepthwiseCpu {
    /// Whether this kernel computes `q`: a depthwise conv (groups = c_in = c_out) of at
    /// most [`MAX_TAPS`] taps, whose sums f32 holds exactly.
    pub fn applies(q: &QConv2d) -> bool {
        let p = &q.p;
        let taps = p.kh.checked_mul(p.kw);
        p.groups == p.c_in && p.c_out == p.c_in && taps.is_some_and(|t| t <= MAX_TAPS)
    }

    /// Prepares `q` for `qisa`. w: (c, 1, kh, kw) int8, bias: (c). Panics on invalid
    /// params, wrong lengths, a conv `applies` refuses or an unsupported `qisa`.
    pub fn new(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, qisa: QIsa) -> QDepthwiseCpu {
        let p = &q.p;
        p.validate().expect("QDepthwiseCpu: invalid params");
        assert!(
            qisa.is_supported(),
            "QDepthwiseCpu: this CPU cannot run {qisa}"
        );
        assert!(
            QDepthwiseCpu::applies(q),
            "QDepthwiseCpu: not a depthwise conv of at most {MAX_TAPS} taps"
        );
        let c = p.c_in;
        assert_eq!(w.len(), c * p.kh * p.kw, "QDepthwiseCpu: weight length");
        assert_eq!(q.w_scale.len(), c, "QDepthwiseCpu: weight scales");
        bias.inspect(|b| assert_eq!(b.len(), c, "QDepthwiseCpu: bias length"));
        let multiplier: Vec<f32> = q.w_scale.iter().map(|&s| q.x.scale * s).collect();
        let bias = bias.map_or_else(|| vec![0.0; c], <[f32]>::to_vec);
        let layout = Layout::new(p);
        // SAFETY: dispatch! checks the ISA; `lanes` reads a constant.
        let lanes = unsafe { dispatch!(qisa.float_isa(), lanes()) };
        // The byte sums take every plane size they can (7×7 outputs too: 54 µs against
        // the blocked path's 70 for MobileNetV3's 960 channels, Zen 4).
        #[cfg(target_arch = "x86_64")]
        let rows = match qisa {
            QIsa::Avx512Vnni => vbmi::Rows::new(q, w),
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        let taken = rows.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        let taken = false;
        let w_f32 = w_f32(w);
        let blocked =
            Blocked::new(p, &w_f32, [&multiplier, &bias], lanes, false).filter(|_| !taken);
        QDepthwiseCpu {
            runs: Runs::new(&layout, lanes),
            blocked,
            #[cfg(target_arch = "x86_64")]
            rows,
            layout,
            w: w_f32,
            nan_free: multiplier.iter().chain(&bias).all(|v| v.is_finite()),
            multiplier,
            bias,
            q: q.clone(),
            qisa,
        }
    }

    /// The path it runs: its f32 vectors are `qisa.float_isa()`'s.
    pub fn qisa(&self) -> QIsa {
        self.qisa
    }

    /// Whether it sums bytes by `vpdpbusd` (vbmi.rs) rather than floats.
    pub fn sums_bytes(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.rows.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// This conv on the `vpdpbusd` path where `on` and the CPU has it (any plane size),
    /// else off it (tests check every path on every shape).
    #[cfg(test)]
    pub(crate) fn with_byte_sums(mut self, on: bool) -> QDepthwiseCpu {
        #[cfg(target_arch = "x86_64")]
        {
            let w: Vec<i8> = self.w.iter().map(|&v| v as i8).collect();
            let fits = on && self.qisa == QIsa::Avx512Vnni;
            self.rows = vbmi::Rows::new(&self.q, &w).filter(|_| fits);
        }
        if on && self.sums_bytes() {
            self.blocked = None;
        }
        self
    }

    /// This conv on the blocked path where `on` (any conv), else on the grid (tests
    /// check both on every shape).
    #[cfg(test)]
    pub(crate) fn with_blocked(mut self, on: bool) -> QDepthwiseCpu {
        let (m, b) = (&self.multiplier[..], &self.bias[..]);
        // SAFETY: dispatch! checks the ISA; `lanes` reads a constant.
        let lanes = unsafe { dispatch!(self.qisa.float_isa(), lanes()) };
        self.blocked = Blocked::new(&self.q.p, &self.w, [m, b], lanes, true).filter(|_| on);
        self.with_byte_sums(false)
    }

    /// Floats of scratch `run_io` needs with `threads` threads: one part per thread.
    pub fn scratch_len(&self, threads: usize) -> usize {
        self.per_share() * self.shares(threads)
    }

    /// Units of work: planes of (n·c), or blocks of channels (blocked.rs).
    fn units(&self) -> usize {
        let p = &self.q.p;
        self.blocked.as_ref().map_or(p.n * p.c_in, |b| b.blocks(p))
    }

    /// Threads that get work: no more than there are units.
    fn shares(&self, threads: usize) -> usize {
        threads.clamp(1, self.units().max(1))
    }

    /// Floats of scratch per share.
    fn per_share(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = &self.rows {
            return r.scratch_len();
        }
        match &self.blocked {
            Some(b) => b.scratch_len(&self.q.p),
            None => self.layout.scratch_len(),
        }
    }

    /// y = the conv's quantized output, dequantized, from x (n, c, h, w); y: (n, c, oh,
    /// ow). Allocates nothing, locks nothing.
    pub fn run(&self, x: &[f32], y: &mut [f32], scratch: &mut [f32], threads: usize) {
        self.run_io(QIn::F32(x), QOut::F32(y), scratch, threads)
    }

    /// As `run`, with x and y each either f32 or bytes, as `QConvCpu::run_io` reads and
    /// writes them (a byte holds q + 128 for int8, q for uint8).
    ///
    /// [`QConvCpu::run_io`]: super::qconv::QConvCpu::run_io
    pub fn run_io(&self, x: QIn<'_>, y: QOut<'_>, scratch: &mut [f32], threads: usize) {
        let p = &self.q.p;
        let [n, c, oh, ow] = p.output_shape();
        assert_eq!(x.len(), n * c * p.h * p.w, "QDepthwiseCpu: x length");
        assert_eq!(y.len(), n * c * oh * ow, "QDepthwiseCpu: y length");
        let (shares, per_share) = (self.shares(threads), self.per_share());
        assert!(
            scratch.len() >= shares * per_share,
            "QDepthwiseCpu: scratch too short"
        );
        let y = match y {
            QOut::F32(y) => OutPtr::F32(SharedMut::new(y).as_mut_ptr()),
            QOut::U8(y) => OutPtr::U8(y.as_mut_ptr()),
        };
        let scratch = SharedMut::new(&mut scratch[..shares * per_share]);
        let (units, isa) = (self.units(), self.qisa.float_isa());
        for_each_task(threads, shares, |s| {
            let range = units * s / shares..units * (s + 1) / shares;
            // SAFETY: share s alone uses scratch part s and writes its units' planes of y
            // (the lengths are checked above); dispatch! checks the ISA.
            unsafe {
                let part = scratch.part(s * per_share, per_share);
                let k = self;
                #[cfg(target_arch = "x86_64")]
                if let Some(r) = &self.rows {
                    // SAFETY: Rows::new checked the CPU's features.
                    let mb = [&self.multiplier[..], &self.bias[..]];
                    return match y {
                        OutPtr::F32(y) => r.run(&self.q, mb, self.nan_free, x, y, range, part),
                        OutPtr::U8(y) => r.run(&self.q, mb, self.nan_free, x, y, range, part),
                    };
                }
                match (&self.blocked, self.layout.offs.len()) {
                    (Some(_), _) => dispatch!(isa, blocks(k, x, y, range, part)),
                    (None, 9) => dispatch!(isa, planes_9(k, x, y, range, part)),
                    (None, 25) => dispatch!(isa, planes_25(k, x, y, range, part)),
                    (None, _) => dispatch!(isa, planes_any(k, x, y, range, part)),
                }
            }
        });
    }

    /// Planes `range` of (n·c) into y, their taps made by `taps` per channel. Needs S's
    /// features; y is the whole output, whose planes `range` no other task writes;
    /// `scratch` holds `Layout::scratch_len` floats.
    #[inline(always)]
    unsafe fn planes<'a, S: Simd, O: Out, K: Taps<S>>(
        &'a self,
        x: QIn<'_>,
        y: *mut O,
        range: Range<usize>,
        scratch: &mut [f32],
        taps: impl Fn(&'a [f32]) -> K,
    ) {
        let (p, lay) = (&self.q.p, &self.layout);
        let (hw, out, t) = (p.h * p.w, lay.oh * lay.ow, p.kh * p.kw);
        let (xq, row) = lay.clear(scratch);
        let (xq, row) = (xq.as_mut_ptr(), row.as_mut_ptr());
        let cv = Convert::<S>::new(&self.q.x);
        let req = Requant::<S>::new::<O>(&self.q, self.nan_free);
        for plane in range {
            lay.fill::<S>(x, plane * hw, &cv, xq, row);
            let c = plane % p.c_in;
            let epi = Epilogue {
                mult: S::splat(self.multiplier[c]),
                bias: S::splat(self.bias[c]),
                req: &req,
            };
            let k = taps(&self.w[c * t..][..t]);
            let runs = self.runs.as_ref();
            grid::plane::<S, O, K>(lay, runs, &k, xq, &epi, y.add(plane * out));
        }
    }

    /// `planes` for T taps with the weights in registers, either output type.
    #[inline(always)]
    unsafe fn planes_fixed<'a, S: Simd, const T: usize>(
        &'a self,
        x: QIn<'_>,
        y: OutPtr,
        range: Range<usize>,
        scratch: &mut [f32],
    ) {
        let offs: &[usize; T] = self.layout.offs[..].try_into().expect("T taps");
        let taps = |w: &'a [f32]| Fixed::<T> {
            offs,
            w: w.try_into().expect("T weights"),
        };
        match y {
            OutPtr::F32(y) => self.planes::<S, f32, _>(x, y, range, scratch, taps),
            OutPtr::U8(y) => self.planes::<S, u8, _>(x, y, range, scratch, taps),
        }
    }
}

/// Blocks `range` on the blocked path under dispatch!: `Blocked::run`'s contract.
#[inline(always)]
unsafe fn blocks<S: Simd>(
    k: &QDepthwiseCpu,
    x: QIn<'_>,
    y: OutPtr,
    range: Range<usize>,
    s: &mut [f32],
) {
    let b = k.blocked.as_ref().expect("the blocked path's constants");
    let (p, cv) = (&k.q.p, Convert::<S>::new(&k.q.x));
    match y {
        OutPtr::F32(y) => {
            let req = Requant::<S>::new::<f32>(&k.q, k.nan_free);
            b.run::<S, f32>(p, (&cv, &req), x, y, range, s)
        }
        OutPtr::U8(y) => {
            let req = Requant::<S>::new::<u8>(&k.q, k.nan_free);
            b.run::<S, u8>(p, (&cv, &req), x, y, range, s)
        }
    }
}

/// S's lanes. Needs nothing: a constant.
#[inline(always)]
unsafe fn lanes<S: Simd>() -> usize {
    S::LANES
}

/// 3×3 kernels (any stride, pad, dilation) under dispatch!: `planes_fixed`'s contract.
#[inline(always)]
unsafe fn planes_9<S: Simd>(
    k: &QDepthwiseCpu,
    x: QIn<'_>,
    y: OutPtr,
    range: Range<usize>,
    s: &mut [f32],
) {
    k.planes_fixed::<S, 9>(x, y, range, s)
}

/// 5×5 kernels, as `planes_9`.
#[inline(always)]
unsafe fn planes_25<S: Simd>(
    k: &QDepthwiseCpu,
    x: QIn<'_>,
    y: OutPtr,
    range: Range<usize>,
    s: &mut [f32],
) {
    k.planes_fixed::<S, 25>(x, y, range, s)
}

/// Any other kernel, the weights read per tap, as `planes_9`.
#[inline(always)]
unsafe fn planes_any<S: Simd>(
    k: &QDepthwiseCpu,
    x: QIn<'_>,
    y: OutPtr,
    range: Range<usize>,
    s: &mut [f32],
) {
    let offs = &k.layout.offs[..];
    let taps = |w| Any { offs, w };
    match y {
        OutPtr::F32(y) => k.planes::<S, f32, _>(x, y, range, s, taps),
        OutPtr::U8(y) => k.planes::<S, u8, _>(x, y, range, s, taps),
    }
}

/// The int8 weights as f32.
fn w_f32(w: &[i8]) -> Vec<f32> {
    w.iter().map(|&v| f32::from(v)).collect()
}
