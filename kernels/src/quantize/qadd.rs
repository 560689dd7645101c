//! The int8 residual add: what a PT2E model's `dequantize(a) + dequantize(b) → [relu] →
//! quantize(y)` computes, in PyTorch's own f32 steps (so the reference form, bit for bit).
//! Each input and the output is f32 or bytes, as `qconv::QIn` and `QOut` say: an f32
//! input is quantized and dequantized by its quantization as read (a value already on its
//! grid comes back unchanged), a byte input is `q + 128` (int8) or `q` (uint8).

use super::qconv::{QIn, QOut};
use super::{reference, QuantParams};
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::{dispatch, Simd};
use crate::Isa;

/// One int8 add: the inputs' and the output's quantizations, and a relu before the last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QAdd {
    /// The first input's quantization.
    pub a: QuantParams,
    /// The second input's quantization.
    pub b: QuantParams,
    /// The output's quantization.
    pub y: QuantParams,
    /// A relu between the sum and the output's quantization.
    pub relu: bool,
}

/// What a byte adds to q (`QuantDtype::byte_shift`).
fn byte_shift(q: &QuantParams) -> i32 {
    q.dtype.byte_shift()
}

impl QAdd {
    /// The output's quantized integer at one element: the oracle.
    pub fn reference_at(&self, a: QIn<'_>, b: QIn<'_>, i: usize) -> i32 {
        let read = |x: QIn<'_>, q: &QuantParams| match x {
            QIn::F32(v) => reference::fake_quant(q, v[i]),
            QIn::U8(v) => reference::dequantize(q, i32::from(v[i]) - byte_shift(q)),
        };
        let mut v = read(a, &self.a) + read(b, &self.b);
        if self.relu {
            v = v.max(0.0);
        }
        reference::quantize(&self.y, v)
    }

    /// y = the add (module doc), element by element in plain loops: the test oracle.
    pub fn reference(&self, a: QIn<'_>, b: QIn<'_>, y: QOut<'_>) {
        match y {
            QOut::F32(y) => {
                for (i, y) in y.iter_mut().enumerate() {
                    *y = reference::dequantize(&self.y, self.reference_at(a, b, i));
                }
            }
            QOut::U8(y) => {
                for (i, y) in y.iter_mut().enumerate() {
                    *y = (self.reference_at(a, b, i) + byte_shift(&self.y)) as u8;
                }
            }
        }
    }

    /// y = the add on S's vectors, split over `threads` in runs of whole vectors.
    /// Allocates nothing.
    pub fn run(&self, isa: Isa, a: QIn<'_>, b: QIn<'_>, y: QOut<'_>, threads: usize) {
        let len = y.len();
        assert!(a.len() == len && b.len() == len, "QAdd: input lengths");
        // Parts of ~32K elements: one is a few µs of work.
        let parts = threads.clamp(1, len.div_ceil(32 << 10).max(1));
        let out = match y {
            QOut::F32(y) => Out::F32(SharedMut::new(y).as_mut_ptr()),
            QOut::U8(y) => Out::U8(y.as_mut_ptr()),
        };
        for_each_task(threads, parts, |t| {
            let (lo, hi) = (len * t / parts / 16 * 16, len * (t + 1) / parts / 16 * 16);
            let hi = if t + 1 == parts { len } else { hi };
            // SAFETY: part t alone writes lo..hi; dispatch! checks the ISA.
            unsafe { dispatch!(isa, add_range(self, a, b, out, lo, hi)) }
        });
    }
}

/// Where the add writes, shared by its tasks.
#[derive(Clone, Copy)]
enum Out {
    F32(*mut f32),
    U8(*mut u8),
}
// SAFETY: the tasks write disjoint ranges (`QAdd::run`).
unsafe impl Send for Out {}
// SAFETY: as above.
unsafe impl Sync for Out {}

/// Elements lo..hi. Needs S's features; `y` valid for them and written by no one else.
#[inline(always)]
unsafe fn add_range<S: Simd>(q: &QAdd, a: QIn<'_>, b: QIn<'_>, y: Out, lo: usize, hi: usize) {
    let mut i = lo;
    while i + S::LANES <= hi {
        let v = S::add(read::<S>(a, &q.a, i), read::<S>(b, &q.b, i));
        let v = if q.relu { S::max(v, S::splat(0.0)) } else { v };
        let y_q = &q.y;
        let zp = y_q.zero_point as f32;
        let qv = S::add(S::round(S::mul(v, S::splat(y_q.inv_scale))), S::splat(zp));
        let qv = S::min(
            S::splat(y_q.qmax as f32),
            S::max(S::splat(y_q.qmin as f32), qv),
        );
        match y {
            Out::F32(p) => S::store(
                p.add(i),
                S::mul(S::add(qv, S::splat(-zp)), S::splat(y_q.scale)),
            ),
            Out::U8(p) => S::store_u8(p.add(i), S::add(qv, S::splat(byte_shift(y_q) as f32))),
        }
        i += S::LANES;
    }
    for j in i..hi {
        let v = q.reference_at(a, b, j);
        match y {
            Out::F32(p) => *p.add(j) = reference::dequantize(&q.y, v),
            Out::U8(p) => *p.add(j) = (v + byte_shift(&q.y)) as u8,
        }
    }
}

/// Lanes i.. of an input, dequantized (f32 inputs quantized first). Needs S's features.
#[inline(always)]
unsafe fn read<S: Simd>(x: QIn<'_>, q: &QuantParams, i: usize) -> S::V {
    let zp = q.zero_point as f32;
    let scale = S::splat(q.scale);
    let qv = match x {
        QIn::U8(v) => S::add(
            S::load_u8(v.as_ptr().add(i)),
            S::splat(-(byte_shift(q) as f32)),
        ),
        QIn::F32(v) => {
            let r = S::add(
                S::round(S::mul(S::load(v.as_ptr().add(i)), S::splat(q.inv_scale))),
                S::splat(zp),
            );
            let r = S::min(S::splat(q.qmax as f32), S::max(S::splat(q.qmin as f32), r));
            // NaN fails `r < qmax + 1`: PyTorch's cast makes it 0.
            S::select_lt(r, S::splat(q.qmax as f32 + 1.0), r, S::splat(0.0))
        }
    };
    S::mul(S::add(qv, S::splat(-zp)), scale)
}
