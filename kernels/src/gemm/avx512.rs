//! AVX-512F microkernels: 8 rows × 32 / 16 columns in zmm, and an 8 × 8 ymm tail (Zen 4
//! runs a ymm FMA at twice the zmm rate, so an 8-wide tail costs half a 16-wide one).

use std::arch::x86_64::*;

use super::Store;
use crate::activation::cpu::{Avx512, Simd};
use crate::Activation;

/// `act(v)` for 16 lanes: the vector layer's one definition (`Simd::act`).
#[inline]
#[target_feature(enable = "avx512f")]
fn act512(act: Activation, v: __m512) -> __m512 {
    // SAFETY: this function's target features are Avx512's.
    unsafe { <Avx512 as Simd>::act(v, act) }
}

/// MR rows × 16·NV columns of C in MR·NV zmm accumulators; per k one row of B (NV loads)
/// and MR broadcasts of A.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    s: &Store,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        if s.prefetch_a {
            // A hint, never a fault: past the panel's end it fetches nothing useful.
            _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(super::PREFETCH_A).cast());
        }
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, bv) in bv.iter_mut().enumerate() {
            // SAFETY: b points at a row of at least 16·NV floats (caller).
            *bv = unsafe { _mm512_loadu_ps(b.add(16 * v)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: a points at MR floats of this k (caller).
            let av = _mm512_set1_ps(unsafe { *a.add(r) });
            for (acc, bv) in acc.iter_mut().zip(bv) {
                *acc = _mm512_fmadd_ps(av, bv, *acc);
            }
        }
        // SAFETY: one past the last k at most; not dereferenced after the loop.
        unsafe {
            a = a.add(MR);
            b = b.add(ldb);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: the tile's MR rows × 16·NV columns are inside C / residual, and bias has
        // MR entries when non-null (caller).
        unsafe {
            let c = s.c.add(r * s.ldc);
            let bias = if s.epilogue && !s.bias.is_null() {
                _mm512_set1_ps(*s.bias.add(r))
            } else {
                _mm512_setzero_ps()
            };
            for (v, &acc) in acc.iter().enumerate() {
                let mut t = acc;
                if s.load_c {
                    t = _mm512_add_ps(t, _mm512_loadu_ps(c.add(16 * v)));
                }
                if s.epilogue {
                    t = _mm512_add_ps(t, bias);
                    if !s.residual.is_null() {
                        let res = s.residual.add(r * s.ldc + 16 * v);
                        t = _mm512_add_ps(t, _mm512_loadu_ps(res));
                    }
                    t = act512(s.act, t);
                }
                _mm512_storeu_ps(c.add(16 * v), t);
            }
        }
    }
}

/// # Safety
/// See `super::Ukernel`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm_f32_avx512_8x32(kc: usize, a: *const f32, b: *const f32, ldb: usize, s: &Store) {
    // SAFETY: forwarded contract.
    unsafe { kernel::<8, 2>(kc, a, b, ldb, s) }
}

/// # Safety
/// See `super::Ukernel`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm_f32_avx512_8x16(kc: usize, a: *const f32, b: *const f32, ldb: usize, s: &Store) {
    // SAFETY: forwarded contract.
    unsafe { kernel::<8, 1>(kc, a, b, ldb, s) }
}

/// The 8-column tail in ymm. AVX-512F implies AVX2 and FMA (every AVX-512F CPU has them,
/// and Rust's `avx512f` feature enables both).
///
/// # Safety
/// See `super::Ukernel`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm_f32_avx512_8x8(kc: usize, a: *const f32, b: *const f32, ldb: usize, s: &Store) {
    // SAFETY: forwarded contract; avx2 + fma are implied by avx512f.
    unsafe { super::avx2::kernel::<8, 1>(kc, a, b, ldb, s) }
}
