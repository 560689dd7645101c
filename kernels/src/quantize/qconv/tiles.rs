//! The int8 conv's microkernels: an MR × NR tile of exact i32 sums `Σ_k u·w − comp`
//! from a packed A panel (`[kq][MR][4]` i8) and B panel (`[kq][NR][4]` u8), one per
//! [`QIsa`], each handing its sums straight to the inlined epilogue. All
//! give the same integers: the sums are exact and none saturates.

use super::epilogue::{Epilogue, TileJob};
use super::{MR, NR};
use crate::quantize::lanes::Lane;
use crate::quantize::QIsa;
use crate::simd::Scalar;

/// The tile's sums, each row less `comp[r]`, requantized and stored as `job` says: the
/// first `cols` columns at least (1..=NR), in whole vectors. The last column panel of a
/// small output is mostly past its end (7×7 outputs: 49 columns, a second panel for
/// one), so it computes no more vectors than it needs.
///
/// # Safety
/// `a` and `b` must hold `kq` packed quads of MR and NR lanes; `qisa` must be supported;
/// `job`'s destination must take MR rows (`rows` of them written) of NR columns.
pub(super) unsafe fn tile<T: Lane>(
    qisa: QIsa,
    a: *const i8,
    b: *const u8,
    kq: usize,
    comp: &[i32; MR],
    cols: usize,
    job: &TileJob<T>,
) {
    match qisa {
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => match cols.div_ceil(16) {
            1 => x86::vnni512::<T, 1>(a, b, kq, comp, job),
            2 => x86::vnni512::<T, 2>(a, b, kq, comp, job),
            _ => x86::vnni512::<T, 3>(a, b, kq, comp, job),
        },
        #[cfg(target_arch = "x86_64")]
        QIsa::AvxVnni => x86::vnni256(a, b, kq, comp, cols, job),
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx2 => x86::maddwd(a, b, kq, comp, cols, job),
        _ => scalar(a, b, kq, comp, job),
    }
}

/// Plain integer loops.
unsafe fn scalar<T: Lane>(
    a: *const i8,
    b: *const u8,
    kq: usize,
    comp: &[i32; MR],
    job: &TileJob<T>,
) {
    let mut sums = [0i32; MR * NR];
    for r in 0..MR {
        sums[r * NR..][..NR].fill(-comp[r]);
    }
    for q in 0..kq {
        let (aq, bq) = (a.add(q * MR * 4), b.add(q * NR * 4));
        for r in 0..MR {
            for t in 0..NR {
                let mut s = 0;
                for i in 0..4 {
                    s += i32::from(*aq.add(r * 4 + i)) * i32::from(*bq.add(t * 4 + i));
                }
                sums[r * NR + t] += s;
            }
        }
    }
    let e = Epilogue::<Scalar, T>::new(job);
    for r in 0..MR {
        for t in 0..NR {
            e.emit(r, t, sums[r * NR + t] as f32);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Epilogue, Lane, TileJob, MR, NR};
    use crate::simd::{Avx2, Avx512};
    use std::arch::x86_64::*;

    /// MR rows × V zmm of 16 columns (V = 3: the whole tile, 24 accumulators; per quad
    /// 3 loads of B, MR broadcasts of A and 24 `vpdpbusd`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn vnni512<T: Lane, const V: usize>(
        a: *const i8,
        b: *const u8,
        kq: usize,
        comp: &[i32; MR],
        job: &TileJob<T>,
    ) {
        let mut acc = [[_mm512_setzero_si512(); V]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            *row = [_mm512_set1_epi32(-comp[r]); V];
        }
        for q in 0..kq {
            let bq = b.add(q * NR * 4);
            let bv: [__m512i; V] =
                std::array::from_fn(|v| _mm512_loadu_si512(bq.add(v * 64).cast()));
            let aq = a.add(q * MR * 4).cast::<i32>();
            for (r, row) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_epi32(aq.add(r).read_unaligned());
                for v in 0..V {
                    row[v] = _mm512_dpbusd_epi32(row[v], bv[v], w);
                }
            }
        }
        let e = Epilogue::<Avx512, T>::new(job);
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                e.emit(r, v * 16, _mm512_cvtepi32_ps(x));
            }
        }
    }

    /// The tile as four sub-tiles of 4 rows × 24 columns (3 ymm), 12 accumulators each;
    /// those wholly past the first `valid` columns skipped.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub unsafe fn vnni256<T: Lane>(
        a: *const i8,
        b: *const u8,
        kq: usize,
        comp: &[i32; MR],
        valid: usize,
        job: &TileJob<T>,
    ) {
        let e = Epilogue::<Avx2, T>::new(job);
        for (half, cols) in [(0, 0), (0, NR / 2), (1, 0), (1, NR / 2)] {
            if cols >= valid {
                continue;
            }
            let acc = vnni256_sums(a.add(half * 16), b.add(cols * 4), kq, comp, half);
            for (r, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    e.emit(half * 4 + r, cols + v * 8, _mm256_cvtepi32_ps(x));
                }
            }
        }
    }

    /// Rows `4·half..` of the sub-tile whose first row and column `a` and `b` point at.
    #[inline(always)]
    unsafe fn vnni256_sums(
        a: *const i8,
        b: *const u8,
        kq: usize,
        comp: &[i32; MR],
        half: usize,
    ) -> [[__m256i; 3]; 4] {
        let mut acc = [[_mm256_setzero_si256(); 3]; 4];
        for (r, row) in acc.iter_mut().enumerate() {
            *row = [_mm256_set1_epi32(-comp[half * 4 + r]); 3];
        }
        for q in 0..kq {
            let bq = b.add(q * NR * 4);
            let bv: [__m256i; 3] =
                std::array::from_fn(|v| _mm256_loadu_si256(bq.add(v * 32).cast()));
            let aq = a.add(q * MR * 4).cast::<i32>();
            for (r, row) in acc.iter_mut().enumerate() {
                let w = _mm256_set1_epi32(aq.add(r).read_unaligned());
                for v in 0..3 {
                    row[v] = _mm256_dpbusd_avx_epi32(row[v], bv[v], w);
                }
            }
        }
        acc
    }

    /// Without VNNI: the tile as sub-tiles of 4 rows × 8 columns (`maddwd_sums`), up to
    /// the first `valid` columns.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn maddwd<T: Lane>(
        a: *const i8,
        b: *const u8,
        kq: usize,
        comp: &[i32; MR],
        valid: usize,
        job: &TileJob<T>,
    ) {
        let e = Epilogue::<Avx2, T>::new(job);
        for half in 0..2 {
            for cols in (0..valid).step_by(8) {
                let sums = maddwd_sums(a.add(half * 16), b.add(cols * 4), kq, comp, half);
                for (r, &x) in sums.iter().enumerate() {
                    e.emit(half * 4 + r, cols, _mm256_cvtepi32_ps(x));
                }
            }
        }
    }

    /// Rows `4·half..` and 8 columns: four columns' bytes widened to 16 i16, times a
    /// row's quad widened and repeated, `vpmaddwd` into pairs of i32 per column; the
    /// pairs are summed once at the end. Never saturates: each i16 product pair fits.
    #[inline(always)]
    unsafe fn maddwd_sums(
        a: *const i8,
        b: *const u8,
        kq: usize,
        comp: &[i32; MR],
        half: usize,
    ) -> [__m256i; 4] {
        // lo: columns 0..4, hi: 4..8, lanes (column, k pair).
        let mut lo = [_mm256_setzero_si256(); 4];
        let mut hi = [_mm256_setzero_si256(); 4];
        for q in 0..kq {
            let bq = b.add(q * NR * 4);
            let b_lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(bq.cast()));
            let b_hi = _mm256_cvtepu8_epi16(_mm_loadu_si128(bq.add(16).cast()));
            let aq = a.add(q * MR * 4).cast::<i32>();
            for r in 0..4 {
                let w = _mm256_cvtepi8_epi16(_mm_set1_epi32(aq.add(r).read_unaligned()));
                lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(b_lo, w));
                hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(b_hi, w));
            }
        }
        std::array::from_fn(|r| {
            // hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the 64-bit permute puts them in order.
            let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(lo[r], hi[r]));
            _mm256_sub_epi32(sums, _mm256_set1_epi32(comp[half * 4 + r]))
        })
    }
}
