//! PT2E's quantize and dequantize on S's lanes, in the reference's f32 steps and order
//! (`reference.rs`), so every ISA gives its bits; and where the int8 kernels store a
//! quantized result: dequantized f32, or bytes (q plus `QuantDtype::byte_shift`). Every
//! method needs S's features and is inlined into its caller, which has them.

use super::QuantParams;
use crate::simd::Simd;

/// One quantization's constants splatted once, before a kernel's loop: the compiler does
/// not hoist them itself where the loop stores through a byte pointer (which may alias
/// the params), and reloading them cost a convert and a broadcast each per vector.
#[derive(Clone, Copy)]
pub(crate) struct Grid<S: Simd> {
    inv: S::V,
    plus_zp: S::V,
    minus_zp: S::V,
    scale: S::V,
    lo: S::V,
    hi: S::V,
    /// qmax + 1: above every clamped value, so only NaN fails `q < above`.
    above: S::V,
    zero: S::V,
    /// `QuantDtype::byte_shift`, and its negative.
    shift: S::V,
    minus_shift: S::V,
    /// The zero point plus the byte shift: what a byte adds to q − zero_point.
    zp_shift: S::V,
}

impl<S: Simd> Grid<S> {
    #[inline(always)]
    pub(crate) unsafe fn new(q: &QuantParams) -> Grid<S> {
        let zp = q.zero_point as f32;
        Grid {
            inv: S::splat(q.inv_scale),
            plus_zp: S::splat(zp),
            minus_zp: S::splat(-zp),
            scale: S::splat(q.scale),
            lo: S::splat(q.qmin as f32),
            hi: S::splat(q.qmax as f32),
            above: S::splat(q.qmax as f32 + 1.0),
            zero: S::splat(0.0),
            shift: S::splat(q.dtype.byte_shift() as f32),
            minus_shift: S::splat(-(q.dtype.byte_shift() as f32)),
            zp_shift: S::splat((q.zero_point + q.dtype.byte_shift()) as f32),
        }
    }

    /// clamp(round(v · inv_scale) + zero_point, qmin, qmax), as floats. `max` and `min`
    /// keep their second operand where either is NaN, so a NaN lane stays NaN.
    #[inline(always)]
    pub(crate) unsafe fn quantize(&self, v: S::V) -> S::V {
        let r = S::add(S::round(S::mul(v, self.inv)), self.plus_zp);
        S::min(self.hi, S::max(self.lo, r))
    }

    /// As `quantize`, a NaN lane 0, as PyTorch's integer cast makes it.
    #[inline(always)]
    pub(crate) unsafe fn quantize_or_zero(&self, v: S::V) -> S::V {
        let r = self.quantize(v);
        S::select_lt(r, self.above, r, self.zero)
    }

    /// (q − zero_point) · scale.
    #[inline(always)]
    pub(crate) unsafe fn dequantize(&self, q: S::V) -> S::V {
        S::mul(S::add(q, self.minus_zp), self.scale)
    }

    /// Bytes (q plus the shift) as q.
    #[inline(always)]
    pub(crate) unsafe fn unshift(&self, bytes: S::V) -> S::V {
        S::add(bytes, self.minus_shift)
    }

    /// q as the byte that stores it.
    #[inline(always)]
    pub(crate) unsafe fn shift(&self, q: S::V) -> S::V {
        S::add(q, self.shift)
    }
}

/// `dst[i] = quantize(q, src[i]) + shift` (a NaN to the integer 0, as PyTorch's cast
/// makes it), the reference's f32 steps on S's vectors, the tail in one masked vector (a
/// scalar loop cost as much as the rest of a 56-wide row): how the int8 kernels read f32
/// inputs as the bytes they compute on. Needs S's features.
#[inline(always)]
pub(crate) unsafe fn quantize_bytes<S: Simd>(
    q: &QuantParams,
    shift: u8,
    src: &[f32],
    dst: &mut [u8],
) {
    let (grid, plus) = (Grid::<S>::new(q), S::splat(f32::from(shift)));
    let quantize = |v| S::add(grid.quantize_or_zero(v), plus);
    let mut i = 0;
    while i + S::LANES <= src.len() {
        let v = quantize(S::load(src.as_ptr().add(i)));
        S::store_u8(dst.as_mut_ptr().add(i), v);
        i += S::LANES;
    }
    let rest = src.len() - i;
    if rest > 0 {
        let v = S::load_lanes(src.as_ptr().add(i), 1, 0..rest, S::splat(0.0));
        S::store_u8_lanes(dst.as_mut_ptr().add(i), 0..rest, quantize(v));
    }
}

/// What an int8 kernel's output holds: f32 (dequantized) or bytes (q shifted).
pub(crate) trait Lane: Copy + Default {
    /// Stores quantized lanes (integers in qmin..=qmax of `grid`'s quantization) at `p`.
    unsafe fn put<S: Simd>(p: *mut Self, grid: &Grid<S>, q: S::V);

    /// As `put`, from q − zero_point (integers, exact in f32).
    unsafe fn put_centered<S: Simd>(p: *mut Self, grid: &Grid<S>, centered: S::V);
}

impl Lane for f32 {
    #[inline(always)]
    unsafe fn put<S: Simd>(p: *mut f32, grid: &Grid<S>, q: S::V) {
        S::store(p, grid.dequantize(q))
    }

    #[inline(always)]
    unsafe fn put_centered<S: Simd>(p: *mut f32, grid: &Grid<S>, centered: S::V) {
        // + 0.0 makes a −0.0 (a small negative value rounded) +0.0, as (zp − zp) is.
        S::store(p, S::mul(S::add(centered, grid.zero), grid.scale))
    }
}

impl Lane for u8 {
    #[inline(always)]
    unsafe fn put<S: Simd>(p: *mut u8, grid: &Grid<S>, q: S::V) {
        S::store_u8(p, grid.shift(q))
    }

    #[inline(always)]
    unsafe fn put_centered<S: Simd>(p: *mut u8, grid: &Grid<S>, centered: S::V) {
        S::store_u8(p, S::add(centered, grid.zp_shift))
    }
}

/// Where an int8 kernel's tasks write y, each its own elements.
#[derive(Clone, Copy)]
pub(crate) enum OutPtr {
    F32(*mut f32),
    U8(*mut u8),
}
// SAFETY: the tasks that share it write disjoint elements (see each kernel's run).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}
