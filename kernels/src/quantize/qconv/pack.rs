//! The int8 conv's GEMM operands in the order its microkernels read them, four k values
//! per 32-bit lane as `vpdpbusd` sums them:
//! - A, the weights, once when the conv is built: per group and panel of MR output
//!   channels, `[kq][MR][4]` signed bytes (k padded with zero weights to 4·kq);
//! - B, a panel of NR grid columns, per run: `[kq][NR][4]` unsigned bytes, four im2col
//!   rows interleaved (rows past k read any byte: their weights are 0).

use super::{MR, NR};

/// Packs `w` (groups · m, k) i8 row-major into A panels; returns them with each padded
/// output channel's `Σ_k w` (0 for padding).
pub(super) fn pack_a(w: &[i8], groups: usize, m: usize, k: usize) -> (Vec<i8>, Vec<i32>) {
    let (kq, panels) = (k.div_ceil(4), m.div_ceil(MR));
    let mut a = vec![0i8; groups * panels * kq * MR * 4];
    let mut sums = vec![0i32; groups * panels * MR];
    for g in 0..groups {
        for oc in 0..m {
            let (panel, r) = (oc / MR, oc % MR);
            let row = &w[(g * m + oc) * k..][..k];
            let base = (g * panels + panel) * kq * MR * 4;
            for (kk, &v) in row.iter().enumerate() {
                a[base + (kk / 4 * MR + r) * 4 + kk % 4] = v;
            }
            sums[(g * panels + panel) * MR + r] = row.iter().map(|&v| i32::from(v)).sum();
        }
    }
    (a, sums)
}

/// B's panel of grid columns `j0..j0 + NR` into `dst` (kq · NR · 4 bytes): im2col row
/// `kk` is the run `src[rows[kk] + j]`. A run past the end of `src` (the last panel, where
/// `src` is x itself rather than planes with slack) reads zeros there: those columns are
/// past the output and never stored.
pub(super) fn pack_b(src: &[u8], rows: &[usize], j0: usize, dst: &mut [u8]) {
    debug_assert_eq!(rows.len() % 4, 0);
    debug_assert_eq!(dst.len(), rows.len() * NR);
    let mut tails = [[0u8; NR]; 4];
    for (quad, out) in rows.chunks_exact(4).zip(dst.chunks_exact_mut(4 * NR)) {
        let whole = quad.iter().all(|&r| r + j0 + NR <= src.len());
        if whole {
            let run = |i: usize| &src[quad[i] + j0..][..NR];
            interleave([run(0), run(1), run(2), run(3)], out);
            continue;
        }
        for (tail, &r) in tails.iter_mut().zip(quad) {
            let have = &src[(r + j0).min(src.len())..];
            let n = have.len().min(NR);
            tail[..n].copy_from_slice(&have[..n]);
            tail[n..].fill(0);
        }
        let [a, b, c, d] = &tails;
        interleave([a, b, c, d], out);
    }
}

/// `out[4t + i] = runs[i][t]`: SSE2's byte and word unpacks, 16 columns at a time.
#[cfg(target_arch = "x86_64")]
fn interleave(runs: [&[u8]; 4], out: &mut [u8]) {
    use std::arch::x86_64::*;
    const _: () = assert!(NR.is_multiple_of(16));
    for t in (0..NR).step_by(16) {
        // SAFETY: each run holds NR bytes and out 4·NR (pack_b slices them so); SSE2 is
        // part of x86-64.
        unsafe {
            let ld = |i: usize| _mm_loadu_si128(runs[i].as_ptr().add(t).cast());
            let (r0, r1, r2, r3) = (ld(0), ld(1), ld(2), ld(3));
            let (a, b) = (_mm_unpacklo_epi8(r0, r1), _mm_unpackhi_epi8(r0, r1));
            let (c, d) = (_mm_unpacklo_epi8(r2, r3), _mm_unpackhi_epi8(r2, r3));
            let dst = out.as_mut_ptr().add(4 * t).cast::<__m128i>();
            _mm_storeu_si128(dst, _mm_unpacklo_epi16(a, c));
            _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(a, c));
            _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(b, d));
            _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(b, d));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn interleave(runs: [&[u8]; 4], out: &mut [u8]) {
    for t in 0..NR {
        for i in 0..4 {
            out[4 * t + i] = runs[i][t];
        }
    }
}
