//! An elementwise function between two of PT2E's quantizations (a hardswish, a sigmoid,
//! a relu6 between `fake_quant(x)` and `fake_quant(y)`): on int8 values it has one result
//! per input integer, so it is a table of 256, filled once with the reference arithmetic,
//! `quantize(y, f(dequantize(x, q)))`. A lookup is then that, bit for bit, whatever f
//! computes (if f itself is the float kernel's function bit for bit: an exact
//! activation). Inputs and output are f32 or bytes, as `qconv::QIn` and `QOut` say; an
//! f32 input is quantized by x as read.

use super::lanes::quantize_bytes;
use super::qconv::{QIn, QOut};
use super::{reference, QuantParams};
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::dispatch;
use crate::Isa;

/// The table of one function (module doc).
#[derive(Clone)]
pub struct QLut {
    x: QuantParams,
    y: QuantParams,
    /// By input byte (q + x's byte shift): the output byte.
    bytes: [u8; 256],
    /// By input byte: the output dequantized.
    floats: [f32; 256],
    /// The CPU has AVX-512 VBMI: bytes look up 64 at a time (`x86::look_up_bytes`).
    vbmi: bool,
}

impl std::fmt::Debug for QLut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QLut")
            .field("x", &self.x)
            .field("y", &self.y)
            .finish_non_exhaustive()
    }
}

impl QLut {
    /// The table of f from x's integers to y's: every integer of x's dtype, in its range
    /// or not (a byte input holds only those in range).
    pub fn new(x: QuantParams, y: QuantParams, f: impl Fn(f32) -> f32) -> QLut {
        let (mut bytes, mut floats) = ([0u8; 256], [0f32; 256]);
        let (lo, hi) = x.dtype.range();
        for q in lo..=hi {
            let at = (q + x.dtype.byte_shift()) as usize;
            let out = reference::quantize(&y, f(reference::dequantize(&x, q)));
            bytes[at] = (out + y.dtype.byte_shift()) as u8;
            floats[at] = reference::dequantize(&y, out);
        }
        #[cfg(target_arch = "x86_64")]
        let vbmi = std::arch::is_x86_feature_detected!("avx512vbmi")
            && std::arch::is_x86_feature_detected!("avx512bw");
        #[cfg(not(target_arch = "x86_64"))]
        let vbmi = false;
        QLut {
            x,
            y,
            bytes,
            floats,
            vbmi,
        }
    }

    /// Whether every input byte maps to itself (x and y one quantization, f the identity
    /// on its grid): bytes out need no look-up then.
    pub fn bytes_unchanged(&self) -> bool {
        (0..=255u8).all(|b| self.bytes[usize::from(b)] == b)
    }

    /// The input's quantization.
    pub fn x(&self) -> &QuantParams {
        &self.x
    }

    /// The output's quantization.
    pub fn y(&self) -> &QuantParams {
        &self.y
    }

    /// The output integer for input integer q (in x's dtype).
    pub fn at(&self, q: i32) -> i32 {
        i32::from(self.bytes[(q + self.x.dtype.byte_shift()) as usize]) - self.y.dtype.byte_shift()
    }

    /// `keys[i]` = the byte of x's element i (f32 quantized by x), in plain code.
    pub(super) fn x_bytes(&self, x: QIn<'_>, keys: &mut [u8]) {
        let shift = self.x.dtype.byte_shift();
        for (i, k) in keys.iter_mut().enumerate() {
            *k = match x {
                QIn::F32(v) => (reference::quantize(&self.x, v[i]) + shift) as u8,
                QIn::U8(v) => v[i],
            };
        }
    }

    /// As `x_bytes` for f32 values, on `isa`'s vectors, split over `threads`.
    pub(super) fn run_keys(&self, isa: Isa, x: &[f32], keys: &mut [u8], threads: usize) {
        assert_eq!(x.len(), keys.len(), "QLut: x and keys lengths");
        let len = x.len();
        let parts = threads.clamp(1, len.div_ceil(32 << 10).max(1));
        let (out, shift) = (SendPtr(keys.as_mut_ptr()), self.x.dtype.byte_shift() as u8);
        for_each_task(threads, parts, |t| {
            let (lo, hi) = (len * t / parts, len * (t + 1) / parts);
            // SAFETY: part t alone writes lo..hi; dispatch! checks the ISA.
            unsafe {
                let dst = std::slice::from_raw_parts_mut(out.at(lo), hi - lo);
                dispatch!(isa, quantize_bytes(&self.x, shift, &x[lo..hi], dst));
            }
        });
    }

    /// y = the function of x, element by element in plain code: the test oracle.
    pub fn reference(&self, x: QIn<'_>, y: QOut<'_>) {
        let q_at = |i: usize| match x {
            QIn::F32(v) => reference::quantize(&self.x, v[i]),
            QIn::U8(v) => i32::from(v[i]) - self.x.dtype.byte_shift(),
        };
        match y {
            QOut::F32(y) => {
                for (i, y) in y.iter_mut().enumerate() {
                    *y = reference::dequantize(&self.y, self.at(q_at(i)));
                }
            }
            QOut::U8(y) => {
                for (i, y) in y.iter_mut().enumerate() {
                    *y = (self.at(q_at(i)) + self.y.dtype.byte_shift()) as u8;
                }
            }
        }
    }

    /// y = the function of x, split over `threads`; f32 inputs quantized on `isa`'s
    /// vectors. Allocates nothing.
    pub fn run(&self, isa: Isa, x: QIn<'_>, y: QOut<'_>, threads: usize) {
        let len = y.len();
        assert_eq!(x.len(), len, "QLut: x and y lengths");
        // Parts of ~32K elements: one is a few µs of work.
        let parts = threads.clamp(1, len.div_ceil(32 << 10).max(1));
        let (out_f, out_b) = match y {
            QOut::F32(y) => (SharedMut::new(y).as_mut_ptr(), std::ptr::null_mut()),
            QOut::U8(y) => (std::ptr::null_mut(), y.as_mut_ptr()),
        };
        let out = (SendPtr(out_f), SendPtr(out_b));
        for_each_task(threads, parts, |t| {
            let (lo, hi) = (len * t / parts, len * (t + 1) / parts);
            let (mut chunk, shift) = ([0u8; 64], self.x.dtype.byte_shift() as u8);
            for start in (lo..hi).step_by(chunk.len()) {
                let n = chunk.len().min(hi - start);
                let keys: &[u8] = match x {
                    QIn::U8(v) => &v[start..][..n],
                    QIn::F32(v) => {
                        let (src, dst) = (&v[start..][..n], &mut chunk[..n]);
                        // SAFETY: dispatch! checks the ISA.
                        unsafe { dispatch!(isa, quantize_bytes(&self.x, shift, src, dst)) };
                        &chunk[..n]
                    }
                };
                // SAFETY: part t alone writes start..start + n, inside y.
                unsafe { self.look_up(isa, keys, (out.0.at(start), out.1.at(start))) };
            }
        });
    }

    /// The results of `keys` (input bytes) at whichever of the two is not null; bytes 64
    /// at a time where `isa` is AVX-512 and the CPU has VBMI.
    ///
    /// # Safety
    /// The non-null pointer must be valid for `keys.len()` elements.
    pub(super) unsafe fn look_up(&self, isa: Isa, keys: &[u8], (f, b): (*mut f32, *mut u8)) {
        #[cfg(target_arch = "x86_64")]
        if !b.is_null() && self.vbmi && isa == Isa::Avx512 {
            // SAFETY: new() checked the CPU's features.
            return x86::look_up_bytes(&self.bytes, keys, b);
        }
        let _ = isa;
        if b.is_null() {
            for (i, &k) in keys.iter().enumerate() {
                *f.add(i) = self.floats[usize::from(k)];
            }
        } else {
            for (i, &k) in keys.iter().enumerate() {
                *b.add(i) = self.bytes[usize::from(k)];
            }
        }
    }
}

/// A pointer the tasks of one run write disjoint parts of (null: not this output).
#[derive(Clone, Copy)]
pub(super) struct SendPtr<T>(pub(super) *mut T);
// SAFETY: the tasks that share it write disjoint ranges (each user's run says which).
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The element `i` in, or null (a method, so closures capture the whole wrapper).
    pub(super) fn at(self, i: usize) -> *mut T {
        if self.0.is_null() {
            self.0
        } else {
            self.0.wrapping_add(i)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `out[i] = table[keys[i]]`, 64 keys at a time: two `vpermi2b`, each a lookup in
    /// 128 entries by a key's low 7 bits, and a blend by its top bit (a scalar lookup per
    /// byte was an eighth of MobileNetV3's int8 run, in its hardswish tables).
    ///
    /// # Safety
    /// The CPU must have AVX-512 BW and VBMI; `out` valid for `keys.len()` bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn look_up_bytes(table: &[u8; 256], keys: &[u8], out: *mut u8) {
        let t: [__m512i; 4] =
            std::array::from_fn(|i| _mm512_loadu_si512(table.as_ptr().add(64 * i).cast()));
        for i in (0..keys.len()).step_by(64) {
            let mask = u64::MAX >> (64 - (keys.len() - i).min(64));
            let k = _mm512_maskz_loadu_epi8(mask, keys.as_ptr().add(i).cast());
            let low = _mm512_permutex2var_epi8(t[0], k, t[1]);
            let high = _mm512_permutex2var_epi8(t[2], k, t[3]);
            let r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(k), low, high);
            _mm512_mask_storeu_epi8(out.add(i).cast(), mask, r);
        }
    }
}
