//! The requantize steps of [`QConv2d::reference`] on S's lanes, in its f32 operations
//! and order: `acc · (s_x · s_w[c])`, then `+ bias[c]` (a product, then a sum: no FMA),
//! the relu, then PT2E's quantize by the output's clamped quantization
//! (`QConv2d::y_clamped`), and the store: dequantized f32, or bytes (q plus
//! `QuantDtype::byte_shift`).
//!
//! Two shortcuts, each exact:
//! - Bytes: the shift is added with the zero point and to the clamp's ends, not after:
//!   `round(v / s) + (zp + shift)` is `(round(v / s) + zp) + shift` wherever either lies
//!   inside the clamp (both sums are exact below 2^24, and past it both clamp alike).
//! - Where no sum can be NaN (every bias and multiplier finite: the sum `acc · m` is
//!   finite or ±inf, and so is adding a finite bias), a relu is the clamp's low end
//!   raised to the zero point: for v < 0, `round(v / s) + zp ≤ zp`, so both give
//!   `clamp(zp, lo, hi)`, and for v ≥ 0 the two are one. Otherwise the relu runs as the
//!   reference's `max`, and a NaN lane quantizes to 0 as the reference's cast makes it.
//!
//! [`QConv2d::reference`]: crate::quantize::conv::QConv2d::reference

use std::ops::Range;

use crate::quantize::conv::QConv2d;
use crate::simd::Simd;

/// What the depthwise kernel's output holds: f32 (dequantized) or bytes (q shifted).
pub(super) trait Out: Copy {
    /// Whether the stored integers carry the byte shift.
    const BYTES: bool;
    /// Stores the lanes q (integers of the output's grid, shifted where `BYTES`) at `p`.
    unsafe fn put<S: Simd>(p: *mut Self, r: &Requant<S>, q: S::V);
    /// As `put`, lanes `lanes` only, to `p[lanes]` (`p` may point outside the buffer).
    unsafe fn put_lanes<S: Simd>(p: *mut Self, r: &Requant<S>, q: S::V, lanes: Range<usize>);
}

impl Out for f32 {
    const BYTES: bool = false;
    #[inline(always)]
    unsafe fn put<S: Simd>(p: *mut f32, r: &Requant<S>, q: S::V) {
        S::store(p, r.dequantize(q))
    }
    #[inline(always)]
    unsafe fn put_lanes<S: Simd>(p: *mut f32, r: &Requant<S>, q: S::V, lanes: Range<usize>) {
        S::store_lanes(p, lanes, r.dequantize(q))
    }
}

impl Out for u8 {
    const BYTES: bool = true;
    #[inline(always)]
    unsafe fn put<S: Simd>(p: *mut u8, _: &Requant<S>, q: S::V) {
        S::store_u8(p, q)
    }
    #[inline(always)]
    unsafe fn put_lanes<S: Simd>(p: *mut u8, _: &Requant<S>, q: S::V, lanes: Range<usize>) {
        S::store_u8_lanes(p, lanes, q)
    }
}

/// One conv's requantize constants for output type O, splatted once per task.
pub(super) struct Requant<S: Simd> {
    /// No sum can be NaN: the relu is in `lo` (module doc).
    nan_free: bool,
    relu: bool,
    inv: S::V,
    /// zp (+ shift).
    plus_zp: S::V,
    /// The clamp's ends (+ shift); `lo` raised to zp (+ shift) where the relu is in it.
    lo: S::V,
    hi: S::V,
    /// hi + 1: above every clamped value, so only NaN fails `q < above`.
    above: S::V,
    /// What NaN quantizes to: 0 (+ shift).
    nan_q: S::V,
    zero: S::V,
    /// −zp and the scale, to dequantize (f32 output).
    minus_zp: S::V,
    scale: S::V,
}

impl<S: Simd> Requant<S> {
    /// For `q`'s output stored as O; `nan_free` as the module doc says.
    #[inline(always)]
    pub unsafe fn new<O: Out>(q: &QConv2d, nan_free: bool) -> Requant<S> {
        let y = q.y_clamped();
        let shift = if O::BYTES { y.dtype.byte_shift() } else { 0 };
        let fold = nan_free && q.relu;
        let lo = if fold {
            y.qmin.max(y.zero_point)
        } else {
            y.qmin
        };
        let splat = |v: i32| S::splat((v + shift) as f32);
        Requant {
            nan_free,
            relu: q.relu,
            inv: S::splat(y.inv_scale),
            plus_zp: splat(y.zero_point),
            lo: splat(lo),
            hi: splat(y.qmax),
            above: splat(y.qmax + 1),
            nan_q: splat(0),
            zero: S::splat(0.0),
            minus_zp: S::splat(-(y.zero_point as f32)),
            scale: S::splat(y.scale),
        }
    }

    /// The quantized lanes (shifted for bytes) of `acc · mult + bias`, relu'd.
    #[inline(always)]
    pub unsafe fn quantize(&self, acc: S::V, mult: S::V, bias: S::V) -> S::V {
        let mut v = S::add(S::mul(acc, mult), bias);
        if !self.nan_free && self.relu {
            v = S::max(v, self.zero);
        }
        let r = S::add(S::round(S::mul(v, self.inv)), self.plus_zp);
        // `max` and `min` keep their second operand where either is NaN.
        let q = S::min(self.hi, S::max(self.lo, r));
        if self.nan_free {
            q
        } else {
            S::select_lt(q, self.above, q, self.nan_q)
        }
    }

    /// (q − zp) · scale, for unshifted q.
    #[inline(always)]
    unsafe fn dequantize(&self, q: S::V) -> S::V {
        S::mul(S::add(q, self.minus_zp), self.scale)
    }
}
