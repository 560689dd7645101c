//! The Winograd transforms with explicit AVX-512 (one zmm = the 16 tiles of a chunk): the
//! staged rows of `transform.rs` never touch memory here. A window row's lo/hi stretch
//! (M zmm each) is filled straight from x by one masked load per (run, zmm), the mask
//! cutting padding and other runs' lanes; a stride-M de-interleave (vpermt2ps) turns it
//! into the A lane vectors. The output interleaves its M lane vectors back into M zmm of
//! pixels and stores each run with a masked store after the residual/activation.
//!
//! Measured on the Zen 4 (ResNet-18 64@56², 1 thread, perf): with the portable lane loops
//! of `transform.rs` the transforms took 36% of the layer and memmove calls for the staged
//! copies another 22%; here the transforms are bound by V's and M's traffic (1.9 MB each,
//! past the L2), not by their arithmetic. Whole model, 1 thread: 5.1% input + 4.7%
//! output, down from 7% + 8.5%.

use std::arch::x86_64::*;

use super::transform::{Grid, LANES};
use crate::Activation;

/// Lane k of the de-interleave of window column j from stride-M stretches: M = 4 takes
/// lanes 0..8 from the first zmm pair and 8..16 from the second (blended), M = 2 one pair.
const fn stride_idx(m: usize, j: usize) -> [i32; 16] {
    let mut a = [0i32; 16];
    let mut k = 0;
    while k < 16 {
        a[k] = if m == 4 { 4 * (k % 8) + j } else { 2 * k + j } as i32;
        k += 1;
    }
    a
}

const DEINT4: [[i32; 16]; 4] = [
    stride_idx(4, 0),
    stride_idx(4, 1),
    stride_idx(4, 2),
    stride_idx(4, 3),
];
const DEINT2: [[i32; 16]; 2] = [stride_idx(2, 0), stride_idx(2, 1)];

/// Interleaves of two sources: `ZIP_LO`[k] = a[k/2] or b[k/2] (k even / odd), `ZIP_HI`
/// the same from lane 8; `PAIRS_LO`/`PAIRS_HI` zip 2-float pairs of lanes 0..4 / 4..8.
const ZIP_LO: [i32; 16] = zip(0, 1);
const ZIP_HI: [i32; 16] = zip(8, 1);
const PAIRS_LO: [i32; 16] = zip(0, 2);
const PAIRS_HI: [i32; 16] = zip(8, 2);

/// idx[k] = base + group·(k / 2group) + k % group, from the second source when
/// (k / group) is odd: interleaves groups of `group` floats of a and b.
const fn zip(base: usize, group: usize) -> [i32; 16] {
    let mut a = [0i32; 16];
    let mut k = 0;
    while k < 16 {
        let src = (k / group) % 2;
        a[k] = (base + group * (k / (2 * group)) + k % group + 16 * src) as i32;
        k += 1;
    }
    a
}

#[inline(always)]
unsafe fn idx(a: &[i32; 16]) -> __m512i {
    // SAFETY: 16 i32s are 64 readable bytes.
    unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
}

/// Bits lo..hi of a u64 (hi ≤ 64).
#[inline(always)]
fn range_mask(lo: usize, hi: usize) -> u64 {
    let upto = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    if hi <= lo {
        0
    } else {
        upto(hi) & !upto(lo)
    }
}

/// Stretch elements e0..e0 + len of `buf` (M zmm) = row[c0 + e − e0], those with the
/// column inside 0..w only (the rest keep their zeros).
///
/// # Safety
/// row points at w readable floats.
#[inline(always)]
unsafe fn load_run<const M: usize>(
    buf: &mut [__m512; 4],
    row: *const f32,
    w: usize,
    c0: isize,
    e0: usize,
    len: usize,
) {
    let lo = e0 + (-c0).clamp(0, len as isize) as usize;
    let hi = e0 + (w as isize - c0).clamp(0, len as isize) as usize;
    let bits = range_mask(lo, hi);
    for (q, v) in buf.iter_mut().enumerate().take(M) {
        let k = (bits >> (16 * q)) as u16;
        let off = c0 - e0 as isize + 16 * q as isize;
        if k == 0xffff {
            // SAFETY: all 16 lanes read columns c0 + e − e0 ∈ 0..w of row.
            *v = unsafe { _mm512_loadu_ps(row.offset(off)) };
        } else if k != 0 {
            let p = row.wrapping_offset(off);
            // SAFETY: lanes in k read columns c0 + e − e0 ∈ 0..w of row; masked-off lanes
            // are not accessed.
            *v = unsafe { _mm512_mask_loadu_ps(*v, k, p) };
        }
    }
}

/// Bᵀ x along one axis for F(M×M): A = M + 2 vectors in, A out.
#[inline(always)]
unsafe fn bt<const M: usize>(x: [__m512; 6]) -> [__m512; 6] {
    let [x0, x1, x2, x3, x4, x5] = x;
    let (two, four, five) = (
        _mm512_set1_ps(2.0),
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(5.0),
    );
    if M == 4 {
        [
            _mm512_fmadd_ps(four, x0, _mm512_fnmadd_ps(five, x2, x4)),
            _mm512_fnmadd_ps(four, _mm512_add_ps(x1, x2), _mm512_add_ps(x3, x4)),
            _mm512_fmadd_ps(four, _mm512_sub_ps(x1, x2), _mm512_sub_ps(x4, x3)),
            _mm512_fmadd_ps(two, _mm512_sub_ps(x3, x1), _mm512_sub_ps(x4, x2)),
            _mm512_fmadd_ps(two, _mm512_sub_ps(x1, x3), _mm512_sub_ps(x4, x2)),
            _mm512_fmadd_ps(four, x1, _mm512_fnmadd_ps(five, x3, x5)),
        ]
    } else {
        let z = _mm512_setzero_ps();
        [
            _mm512_sub_ps(x0, x2),
            _mm512_add_ps(x1, x2),
            _mm512_sub_ps(x2, x1),
            _mm512_sub_ps(x1, x3),
            z,
            z,
        ]
    }
}

/// Aᵀ x along one axis for F(M×M): A vectors in, M out.
#[inline(always)]
unsafe fn at<const M: usize>(x: [__m512; 6]) -> [__m512; 4] {
    let [x0, x1, x2, x3, x4, x5] = x;
    if M == 4 {
        let (s12, d12) = (_mm512_add_ps(x1, x2), _mm512_sub_ps(x1, x2));
        let (s34, d34) = (_mm512_add_ps(x3, x4), _mm512_sub_ps(x3, x4));
        [
            _mm512_add_ps(_mm512_add_ps(x0, s12), s34),
            _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, d12),
            _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, s12),
            _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, d12), x5),
        ]
    } else {
        let z = _mm512_setzero_ps();
        [
            _mm512_add_ps(_mm512_add_ps(x0, x1), x2),
            _mm512_sub_ps(_mm512_sub_ps(x1, x2), x3),
            z,
            z,
        ]
    }
}

/// As `transform::input_lanes`, explicit AVX-512.
///
/// # Safety
/// As `transform::input_lanes`; the CPU has avx512f.
#[target_feature(enable = "avx512f")]
pub unsafe fn input_avx512<const M: usize>(
    g: &Grid,
    x_c: &[f32],
    t0: usize,
    dst: *mut f32,
    ld: usize,
) {
    let a = M + 2;
    let z = _mm512_setzero_ps();
    // d: (A, A) lane vectors, tile l's window in lane l.
    let mut d = [[z; 6]; 6];
    for (i, d_row) in d.iter_mut().enumerate().take(a) {
        // lo, hi: window columns 0..M and M..2M of row i, tile after tile: M zmm each.
        let (mut lo, mut hi) = ([z; 4], [z; 4]);
        for (l, ty, tx, n) in g.runs(t0) {
            let iy = (M * ty + i) as isize - g.ph as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let row = x_c[iy as usize * g.w..][..g.w].as_ptr();
            let c0 = (M * tx) as isize - g.pw as isize;
            // SAFETY: row holds w floats.
            unsafe {
                load_run::<M>(&mut lo, row, g.w, c0, M * l, M * n);
                load_run::<M>(&mut hi, row, g.w, c0 + M as isize, M * l, M * n);
            }
        }
        for (j, out) in d_row.iter_mut().enumerate().take(a) {
            let (s, jj) = if j < M { (&lo, j) } else { (&hi, j - M) };
            // SAFETY: reads of const index tables.
            *out = unsafe {
                if M == 4 {
                    let ix = idx(&DEINT4[jj]);
                    let r1 = _mm512_permutex2var_ps(s[0], ix, s[1]);
                    let r2 = _mm512_permutex2var_ps(s[2], ix, s[3]);
                    _mm512_mask_blend_ps(0xff00, r1, r2)
                } else {
                    _mm512_permutex2var_ps(s[0], idx(&DEINT2[jj]), s[1])
                }
            };
        }
    }
    // t = Bᵀ d (along i), then Bᵀ t B (along j).
    let mut t = [[z; 6]; 6];
    for j in 0..a {
        // SAFETY: register arithmetic.
        let col = unsafe { bt::<M>([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]) };
        for (k, c) in col.into_iter().enumerate().take(a) {
            t[k][j] = c;
        }
    }
    for (k, row) in t.iter().enumerate().take(a) {
        // SAFETY: register arithmetic.
        let out = unsafe { bt::<M>(*row) };
        for (l, o) in out.into_iter().enumerate().take(a) {
            // SAFETY: ξ = A·k + l < A², LANES floats at dst + ξ·ld (caller).
            unsafe { _mm512_storeu_ps(dst.add((k * a + l) * ld), o) };
        }
    }
}

/// As `transform::output_lanes`, explicit AVX-512.
///
/// # Safety
/// As `transform::output_lanes`; the CPU has avx512f.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn output_avx512<const M: usize>(
    g: &Grid,
    src: *const f32,
    ld: usize,
    t0: usize,
    bias: f32,
    res: Option<&[f32]>,
    act: Activation,
    dst: *mut f32,
) {
    let a = M + 2;
    let z = _mm512_setzero_ps();
    // m: (A, A) lane vectors
    let mut m = [[z; 6]; 6];
    for (k, row) in m.iter_mut().enumerate().take(a) {
        for (l, v) in row.iter_mut().enumerate().take(a) {
            // SAFETY: ξ = A·k + l < A², LANES floats at src + ξ·ld (caller).
            *v = unsafe { _mm512_loadu_ps(src.add((k * a + l) * ld)) };
        }
    }
    // t: (M, A) = Aᵀ m, then each row r of Aᵀ m A + bias.
    let mut t = [[z; 6]; 4];
    for j in 0..a {
        // SAFETY: register arithmetic.
        let col = unsafe { at::<M>([m[0][j], m[1][j], m[2][j], m[3][j], m[4][j], m[5][j]]) };
        for (r, c) in col.into_iter().enumerate().take(M) {
            t[r][j] = c;
        }
    }
    let b = _mm512_set1_ps(bias);
    for (r, t_row) in t.iter().enumerate().take(M) {
        // SAFETY: register arithmetic and const index tables.
        let px = unsafe {
            let o = at::<M>(*t_row).map(|v| _mm512_add_ps(v, b));
            // px: (LANES, M) row r of each tile, tile after tile, in M zmm.
            if M == 4 {
                let (zl, zh) = (idx(&ZIP_LO), idx(&ZIP_HI));
                let (pl, ph) = (idx(&PAIRS_LO), idx(&PAIRS_HI));
                let lo01 = _mm512_permutex2var_ps(o[0], zl, o[1]);
                let hi01 = _mm512_permutex2var_ps(o[0], zh, o[1]);
                let lo23 = _mm512_permutex2var_ps(o[2], zl, o[3]);
                let hi23 = _mm512_permutex2var_ps(o[2], zh, o[3]);
                [
                    _mm512_permutex2var_ps(lo01, pl, lo23),
                    _mm512_permutex2var_ps(lo01, ph, lo23),
                    _mm512_permutex2var_ps(hi01, pl, hi23),
                    _mm512_permutex2var_ps(hi01, ph, hi23),
                ]
            } else {
                [
                    _mm512_permutex2var_ps(o[0], idx(&ZIP_LO), o[1]),
                    _mm512_permutex2var_ps(o[0], idx(&ZIP_HI), o[1]),
                    z,
                    z,
                ]
            }
        };
        for (l, ty, tx, n) in g.runs(t0) {
            let oy = M * ty + r;
            if oy >= g.oh {
                continue;
            }
            let (off, cols) = (oy * g.ow + M * tx, (M * n).min(g.ow - M * tx));
            let bits = range_mask(M * l, M * l + cols);
            for (q, &v) in px.iter().enumerate().take(M) {
                let k = (bits >> (16 * q)) as u16;
                if k == 0 {
                    continue;
                }
                // Lane e of zmm q is pixel off + 16q + e − M·l.
                let shift = off as isize - (M * l) as isize + 16 * q as isize;
                // SAFETY: lanes in k are pixels (oy, M·tx .. M·tx + cols): inside the
                // plane and this chunk's own tiles (caller); masked-off lanes are not
                // accessed.
                unsafe {
                    let mut v = v;
                    if let Some(res) = res {
                        let rp = res.as_ptr().wrapping_offset(shift);
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, rp));
                    }
                    _mm512_mask_storeu_ps(dst.wrapping_offset(shift), k, activate(v, act));
                }
            }
        }
    }
}

/// `act` per lane: the vector layer's one definition (`Simd::act`).
#[inline(always)]
unsafe fn activate(v: __m512, act: Activation) -> __m512 {
    <crate::simd::Avx512 as crate::simd::Simd>::act(v, act)
}

const _: () = assert!(LANES == 16, "one zmm of f32 per lane vector");
