//! [`Simd`] for x86-64: AVX-512F (16 lanes) and AVX2 + FMA (8 lanes).

use std::arch::x86_64::*;
use std::ops::Range;

use super::Simd;

/// v / 6 without a division: q = v·(1/6), then one FMA correction q + (v − 6q)·(1/6), the
/// remainder v − 6q exact in the FMA. Correctly rounded for v = +0, NaN and every v in
/// [2^-24, 6], all of them checked in kernels/src/activation/tests.rs: hardsigmoid divides
/// its relu6 output, which is +0, NaN or in [2^-22, 6]. The ~10-cycle zmm vdivps was the
/// hardswish epilogue's cost: more than a 3×3 depthwise's 9 FMAs per vector.
macro_rules! div6_fma {
    ($v:expr, $mul:ident, $fma:ident, $set1:ident) => {{
        let (v, inv) = ($v, $set1(1.0 / 6.0));
        let q = $mul(v, inv);
        let r = $fma(q, $set1(-6.0), v);
        $fma(r, inv, q)
    }};
}

/// 16 lanes of AVX-512F. Zen 4 splits each 512-bit op in two, but one instruction still
/// does the work of two AVX2 ones (fewer loop iterations, masked tails for free).
pub(crate) struct Avx512;

/// Lanes `lanes` of a 16-lane mask.
#[inline(always)]
fn mask16(lanes: Range<usize>) -> __mmask16 {
    let below = |n: usize| ((1u32 << n) - 1) as __mmask16;
    if lanes.start >= lanes.end {
        0
    } else {
        below(lanes.end) & !below(lanes.start)
    }
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_lanes(
        p: *const f32,
        stride: usize,
        lanes: Range<usize>,
        fill: __m512,
    ) -> __m512 {
        let k = mask16(lanes.clone());
        if stride == 1 {
            _mm512_mask_loadu_ps(fill, k, p)
        } else if stride == 2 {
            // load_even with masked loads (Zen 4's gathers are ~4x slower): lanes a..b
            // read elements 2a..2b-1 of p, p[0..16] in the first load, p[15..31] in the second.
            let elems = 2 * lanes.start..(2 * lanes.end).saturating_sub(1);
            let first = mask16(elems.start.min(16)..elems.end.min(16));
            let second = mask16(elems.start.clamp(15, 31) - 15..elems.end.clamp(15, 31) - 15);
            let a = _mm512_maskz_loadu_ps(first, p);
            let b = _mm512_maskz_loadu_ps(second, p.wrapping_add(15));
            let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
            _mm512_mask_mov_ps(fill, k, _mm512_permutex2var_ps(a, idx, b))
        } else {
            let idx = _mm512_mullo_epi32(iota16(), _mm512_set1_epi32(stride as i32));
            _mm512_mask_i32gather_ps::<4>(fill, k, idx, p)
        }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, n: usize, v: __m512) {
        _mm512_mask_storeu_ps(p, mask16(0..n), v)
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> __m512 {
        // a = p[0..16], b = p[15..31]: the evens of a, then the odds of b (p[16], p[18]...).
        let (a, b) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(15)));
        let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
        _mm512_permutex2var_ps(a, idx, b)
    }
    #[inline(always)]
    unsafe fn gather(p: *const f32, stride: usize) -> __m512 {
        let idx = _mm512_mullo_epi32(iota16(), _mm512_set1_epi32(stride as i32));
        _mm512_i32gather_ps::<4>(idx, p)
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> __m512 {
        _mm512_cvtepi32_ps(_mm512_loadu_si512(p.cast()))
    }
    #[inline(always)]
    unsafe fn load_u8(p: *const u8) -> __m512 {
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast())))
    }
    #[inline(always)]
    unsafe fn store_u8(p: *mut u8, v: __m512) {
        _mm_storeu_si128(p.cast(), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)))
    }
    #[inline(always)]
    unsafe fn unzip(a: __m512, b: __m512) -> (__m512, __m512) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        (
            _mm512_permutex2var_ps(a, even, b),
            _mm512_permutex2var_ps(a, odd, b),
        )
    }
    #[inline(always)]
    unsafe fn store_lanes(p: *mut f32, lanes: Range<usize>, v: __m512) {
        _mm512_mask_storeu_ps(p, mask16(lanes), v)
    }
    #[inline(always)]
    unsafe fn store_u8_lanes(p: *mut u8, lanes: Range<usize>, v: __m512) {
        _mm512_mask_cvtepi32_storeu_epi8(p.cast(), mask16(lanes), _mm512_cvtps_epi32(v))
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        _mm512_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn select_lt(a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), y, x)
    }
    #[inline(always)]
    unsafe fn exp(v: __m512) -> __m512 {
        // vscalefps multiplies by 2^n and over- or underflows to inf or 0 on its own, with
        // NaN kept: no pow2i, no selects, 0.81x silu's time (`layer_speed acts`). The clamp
        // only keeps n finite for ±inf (e^-104 and e^89 already round to 0 and inf).
        let v = _mm512_min_ps(
            _mm512_set1_ps(89.0),
            _mm512_max_ps(_mm512_set1_ps(-104.0), v),
        );
        let (n, p) = Self::exp_parts(v);
        _mm512_scalef_ps(p, n)
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[inline(always)]
    unsafe fn div6(v: __m512) -> __m512 {
        div6_fma!(v, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_set1_ps)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        _mm512_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        _mm512_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max_nan(acc: __m512, v: __m512) -> __m512 {
        // Where acc is a number, maxps(acc, v) (v when v is NaN); where acc is NaN, keep it.
        let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(acc, acc);
        _mm512_mask_max_ps(acc, ordered, acc, v)
    }
    #[inline(always)]
    unsafe fn round(v: __m512) -> __m512 {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
    }
    #[inline(always)]
    unsafe fn pow2i(n: __m512) -> __m512 {
        let e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
        _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
    }
    #[inline(always)]
    unsafe fn reduce_add(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m512) -> f32 {
        _mm512_reduce_max_ps(v)
    }
}

#[inline(always)]
unsafe fn iota16() -> __m512i {
    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// 8 lanes of AVX2 + FMA.
pub(crate) struct Avx2;

/// All ones in lanes `lanes` (`start..end`), zeros elsewhere: AVX2's mask form.
#[inline(always)]
unsafe fn mask8(lanes: Range<usize>) -> __m256i {
    let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let ge_start = _mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lanes.start as i32 - 1));
    let lt_end = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.end as i32), iota);
    _mm256_and_si256(ge_start, lt_end)
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_lanes(
        p: *const f32,
        stride: usize,
        lanes: Range<usize>,
        fill: __m256,
    ) -> __m256 {
        let m = mask8(lanes.clone());
        if stride == 1 {
            let v = _mm256_maskload_ps(p, m);
            _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m))
        } else if stride == 2 {
            // load_even with masked loads: lanes a..b read elements 2a..2b-1 of p,
            // p[0..8] in the first load, p[7..15] in the second.
            let elems = 2 * lanes.start..(2 * lanes.end).saturating_sub(1);
            let first = mask8(elems.start.min(8)..elems.end.min(8));
            let second = mask8(elems.start.clamp(7, 15) - 7..elems.end.clamp(7, 15) - 7);
            let a = _mm256_maskload_ps(p, first);
            let b = _mm256_maskload_ps(p.wrapping_add(7), second);
            let t = _mm256_shuffle_ps::<0b11_01_10_00>(a, b);
            let v = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(t)));
            _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m))
        } else {
            let idx = _mm256_mullo_epi32(iota8(), _mm256_set1_epi32(stride as i32));
            _mm256_mask_i32gather_ps::<4>(fill, p, idx, _mm256_castsi256_ps(m))
        }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, n: usize, v: __m256) {
        _mm256_maskstore_ps(p, mask8(0..n), v)
    }
    #[inline(always)]
    unsafe fn unzip(a: __m256, b: __m256) -> (__m256, __m256) {
        // Per 128-bit half, a's evens (odds) then b's: [a0 a2 b0 b2 | a4 a6 b4 b6]; swapping
        // the middle 64-bit pairs puts them in order.
        let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let order = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        };
        (order(even), order(odd))
    }
    #[inline(always)]
    unsafe fn store_lanes(p: *mut f32, lanes: Range<usize>, v: __m256) {
        _mm256_maskstore_ps(p, mask8(lanes), v)
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> __m256 {
        // a = p[0..8], b = p[7..15]. Per 128-bit half, shuffle takes a's evens and b's odds:
        // [a0 a2 b1 b3 | a4 a6 b5 b7]; swapping the middle 64-bit pairs puts them in order.
        let (a, b) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(7)));
        let t = _mm256_shuffle_ps::<0b11_01_10_00>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(t)))
    }
    #[inline(always)]
    unsafe fn gather(p: *const f32, stride: usize) -> __m256 {
        let idx = _mm256_mullo_epi32(iota8(), _mm256_set1_epi32(stride as i32));
        _mm256_i32gather_ps::<4>(p, idx)
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_loadu_si256(p.cast()))
    }
    #[inline(always)]
    unsafe fn load_u8(p: *const u8) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())))
    }
    #[inline(always)]
    unsafe fn store_u8(p: *mut u8, v: __m256) {
        // 0..=255 in every lane: the saturating packs are exact.
        let i = _mm256_cvtps_epi32(v);
        let (lo, hi) = (_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
        let words = _mm_packus_epi32(lo, hi);
        _mm_storel_epi64(p.cast(), _mm_packus_epi16(words, words))
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        _mm256_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn select_lt(a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[inline(always)]
    unsafe fn div6(v: __m256) -> __m256 {
        div6_fma!(v, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_set1_ps)
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        _mm256_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m256, b: __m256) -> __m256 {
        _mm256_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max_nan(acc: __m256, v: __m256) -> __m256 {
        let m = _mm256_max_ps(acc, v); // v where v is NaN
        let acc_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(acc, acc);
        _mm256_blendv_ps(m, acc, acc_nan)
    }
    #[inline(always)]
    unsafe fn round(v: __m256) -> __m256 {
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
    }
    #[inline(always)]
    unsafe fn pow2i(n: __m256) -> __m256 {
        let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
    }
    #[inline(always)]
    unsafe fn reduce_add(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m256) -> f32 {
        let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
    }
}

#[inline(always)]
unsafe fn iota8() -> __m256i {
    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
}
