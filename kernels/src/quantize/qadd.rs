//! The int8 residual add: what a PT2E model's `dequantize(a) + dequantize(b) → [relu] →
//! quantize(y)` computes, in PyTorch's own f32 steps (so the reference form, bit for bit).
//! Each input and the output is f32 or bytes, as `qconv::QIn` and `QOut` say: an f32
//! input is quantized and dequantized by its quantization as read (a value already on its
//! grid comes back unchanged), a byte input is `q + 128` (int8) or `q` (uint8).

use super::lanes::{Grid, Lane, OutPtr};
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
            QOut::F32(y) => OutPtr::F32(SharedMut::new(y).as_mut_ptr()),
            QOut::U8(y) => OutPtr::U8(y.as_mut_ptr()),
        };
        for_each_task(threads, parts, |t| {
            let (lo, hi) = (len * t / parts / 16 * 16, len * (t + 1) / parts / 16 * 16);
            let hi = if t + 1 == parts { len } else { hi };
            // SAFETY: part t alone writes lo..hi; dispatch! checks the ISA.
            unsafe { dispatch!(isa, add_range(self, a, b, out, lo, hi)) }
        });
    }
}

/// Elements lo..hi. Needs S's features; `y` valid for them and written by no one else.
#[inline(always)]
unsafe fn add_range<S: Simd>(q: &QAdd, a: QIn<'_>, b: QIn<'_>, y: OutPtr, lo: usize, hi: usize) {
    let grids = [&q.a, &q.b, &q.y].map(|p| Grid::<S>::new(p));
    let [ga, gb, gy] = &grids;
    let mut i = lo;
    while i + S::LANES <= hi {
        let v = S::add(read(a, ga, i), read(b, gb, i));
        let v = if q.relu { S::max(v, S::splat(0.0)) } else { v };
        let lanes = gy.quantize(v);
        match y {
            OutPtr::F32(p) => f32::put(p.add(i), gy, lanes),
            OutPtr::U8(p) => u8::put(p.add(i), gy, lanes),
        }
        i += S::LANES;
    }
    for j in i..hi {
        let v = q.reference_at(a, b, j);
        match y {
            OutPtr::F32(p) => *p.add(j) = reference::dequantize(&q.y, v),
            OutPtr::U8(p) => *p.add(j) = (v + byte_shift(&q.y)) as u8,
        }
    }
}

/// Lanes i.. of an input, dequantized (f32 inputs quantized first, a NaN made 0). Needs
/// S's features.
#[inline(always)]
unsafe fn read<S: Simd>(x: QIn<'_>, grid: &Grid<S>, i: usize) -> S::V {
    let q = match x {
        QIn::U8(v) => grid.unshift(S::load_u8(v.as_ptr().add(i))),
        QIn::F32(v) => grid.quantize_or_zero(S::load(v.as_ptr().add(i))),
    };
    grid.dequantize(q)
}
