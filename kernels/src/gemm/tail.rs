//! The column tails: a panel's last 1–7 columns, in ymm on AVX2 and AVX-512 alike.

use std::arch::x86_64::*;

use super::Store;
use crate::simd::{Avx2, Simd};
use crate::Activation;

/// `act(v)` for 8 lanes: the vector layer's one definition (`Simd::act`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn act256(act: Activation, v: __m256) -> __m256 {
    // SAFETY: this function's target features are Avx2's.
    unsafe { <Avx2 as Simd>::act(v, act) }
}

/// MR rows × T columns (T below 8: a panel's last columns), the MR rows in one ymm and one
/// accumulator per column, so T columns cost T FMAs per k where an 8-wide tile spends MR
/// (a 7×7 output's 49th column: 1 FMA per k, not 8). A's MR values of one k are contiguous
/// in its packed panel. U accumulators per column take every U-th k, so that U·T
/// independent chains hide the FMA latency; they are summed in order at the end.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tail<const MR: usize, const T: usize, const U: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    s: &Store,
) {
    // Lanes 0..MR of A's step; AVX2's MR = 6 must not read past the panel's last step.
    let lanes = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(MR as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    );
    let mut acc = [[_mm256_setzero_ps(); T]; U];
    let (mut a, mut b) = (a, b);
    // One k-step into accumulator set u.
    let mut step = |u: usize| {
        if s.prefetch_a {
            // A hint, never a fault: past the panel's end it fetches nothing useful.
            _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(super::PREFETCH_A).cast());
        }
        // SAFETY: a points at MR floats of this k, b at a row of T floats (caller); one
        // past the last k at most afterwards, not dereferenced.
        unsafe {
            let av = _mm256_maskload_ps(a, lanes);
            for (j, acc) in acc[u].iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(av, _mm256_set1_ps(*b.add(j)), *acc);
            }
            a = a.add(MR);
            b = b.add(ldb);
        }
    };
    for _ in 0..kc / U {
        (0..U).for_each(&mut step);
    }
    (0..kc % U).for_each(|_| step(0));
    let (first, rest) = acc.split_at(1);
    let mut col = [0.0f32; 8];
    // The usual last k-block (no partial sum in C, no residual): bias and activation on
    // the column's MR rows at once, where `put` ran the activation one float at a time
    // (a scalar silu per 7×7 conv output's 49th column: 2% of EfficientNet-B0's run).
    let vector_epilogue = s.epilogue && !s.load_c && s.residual.is_null();
    // SAFETY: bias, when non-null, holds the tile's MR rows (caller).
    let bias = match s.bias.is_null() || !vector_epilogue {
        true => _mm256_setzero_ps(),
        false => unsafe { _mm256_maskload_ps(s.bias, lanes) },
    };
    for (j, &acc0) in first[0].iter().enumerate() {
        let sum = rest
            .iter()
            .fold(acc0, |sum, acc| _mm256_add_ps(sum, acc[j]));
        // SAFETY: col holds 8 floats; (r, j) is inside the MR × T tile (caller).
        unsafe {
            if vector_epilogue {
                _mm256_storeu_ps(col.as_mut_ptr(), act256(s.act, _mm256_add_ps(sum, bias)));
                for (r, &v) in col.iter().enumerate().take(MR) {
                    *s.c.add(r * s.ldc + j) = v;
                }
            } else {
                _mm256_storeu_ps(col.as_mut_ptr(), sum);
                for (r, &v) in col.iter().enumerate().take(MR) {
                    s.put(r, j, v);
                }
            }
        }
    }
}

/// The column tail for `isa`'s rows (avx512 8, avx2 6) and `width` columns (1..=7).
pub(super) fn tail_kernel(isa: crate::Isa, width: usize) -> super::Ukernel {
    macro_rules! pick {
        ($mr:literal) => {
            match width {
                1 => tail_fn::<$mr, 1, 4>,
                2 => tail_fn::<$mr, 2, 4>,
                3 => tail_fn::<$mr, 3, 2>,
                4 => tail_fn::<$mr, 4, 2>,
                5 => tail_fn::<$mr, 5, 1>,
                6 => tail_fn::<$mr, 6, 1>,
                _ => tail_fn::<$mr, 7, 1>,
            }
        };
    }
    match isa {
        crate::Isa::Avx512 => pick!(8),
        _ => pick!(6),
    }
}

/// `tail` as a `Ukernel`.
///
/// # Safety
/// See `super::Ukernel`; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn tail_fn<const MR: usize, const T: usize, const U: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    s: &Store,
) {
    // SAFETY: forwarded contract.
    unsafe { tail::<MR, T, U>(kc, a, b, ldb, s) }
}
