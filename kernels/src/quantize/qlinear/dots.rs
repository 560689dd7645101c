//! The int8 linear's integer sums: for a block of weight panels (16 output channels each,
//! `[kq][16][4]` i8) and rows of x bytes (`4·kq` each), `Σ_k x·w − comp` per row and
//! channel, exact, one function per [`QIsa`]. Each weight load serves every row of the
//! block and each x quad every panel; the panels of a block are separate streams, each
//! read once front to back.

use super::PANEL;
use crate::quantize::QIsa;

/// Most panels and rows of one block.
const MOST_PANELS: usize = 4;
const MOST_ROWS: usize = 4;

/// i32s of a block's sums.
pub(super) const SUMS: usize = MOST_ROWS * MOST_PANELS * PANEL;

/// A block's sums, row r and panel p at `(r · panels_of_block + p) · PANEL`, where
/// `panels_of_block` is `block(qisa).0`.
pub(super) type Sums = [i32; SUMS];

/// (panels, rows) of a block on `qisa`: as many accumulators as its registers hold (32
/// zmm; 16 ymm, where the AVX2 path keeps four per panel and row, pairs of i32 per
/// channel).
pub(super) fn block(qisa: QIsa) -> (usize, usize) {
    match qisa {
        QIsa::Avx512Vnni => (4, 4),
        QIsa::AvxVnni => (2, 2),
        QIsa::Avx2 => (1, 2),
        QIsa::Scalar => (1, 1),
    }
}

/// One block's operands: `panels` panels from `w`, `panel_len` bytes apart, and their
/// compensations from `comp`; `rows` rows of x from `x`, `stride` bytes apart.
pub(super) struct Operands {
    pub w: *const i8,
    pub panel_len: usize,
    pub panels: usize,
    pub comp: *const i32,
    pub x: *const u8,
    pub stride: usize,
    pub rows: usize,
    pub kq: usize,
}

impl Operands {
    /// Panel p's weights; past `panels`, the last panel's again (a function computes its
    /// block's whole width; those sums are not stored, and the bytes are in cache).
    #[inline(always)]
    fn panel(&self, p: usize) -> *const i8 {
        self.w.wrapping_add(p.min(self.panels - 1) * self.panel_len)
    }

    /// Panel p's compensations, as `panel` picks the panel.
    #[inline(always)]
    fn comp(&self, p: usize) -> *const i32 {
        self.comp.wrapping_add(p.min(self.panels - 1) * PANEL)
    }

    /// Row r's quad q of x, as one i32.
    #[inline(always)]
    unsafe fn quad(&self, r: usize, q: usize) -> i32 {
        self.x
            .add(r * self.stride + 4 * q)
            .cast::<i32>()
            .read_unaligned()
    }
}

/// Rows 1..=MOST_ROWS of `$f`, chosen at run time.
macro_rules! by_rows {
    ($m:ident::$f:ident, $o:expr, $out:expr) => {
        match $o.rows {
            1 => $m::$f::<1>($o, $out),
            2 => $m::$f::<2>($o, $out),
            3 => $m::$f::<3>($o, $out),
            _ => $m::$f::<4>($o, $out),
        }
    };
}

/// Fills `out` with the block's sums (module doc).
///
/// # Safety
/// `o` must describe valid panels, compensations and x rows (`kq` quads each), with
/// `1 ≤ panels, rows` and each at most `block(qisa)`'s; `qisa` must be supported.
pub(super) unsafe fn sums(qisa: QIsa, o: &Operands, out: &mut Sums) {
    debug_assert!(o.panels >= 1 && o.rows >= 1);
    debug_assert!(o.panels <= block(qisa).0 && o.rows <= block(qisa).1);
    match qisa {
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx512Vnni => by_rows!(x86::vnni512, o, out),
        #[cfg(target_arch = "x86_64")]
        QIsa::AvxVnni => by_rows!(x86::vnni256, o, out),
        #[cfg(target_arch = "x86_64")]
        QIsa::Avx2 => by_rows!(x86::maddwd, o, out),
        _ => scalar(o, out),
    }
}

/// Plain integer loops, one row and one panel; the sums wrap as `vpdpbusd`'s do (only
/// the end result is sure to fit).
unsafe fn scalar(o: &Operands, out: &mut Sums) {
    for (c, sum) in out[..PANEL].iter_mut().enumerate() {
        let mut s = (*o.comp.add(c)).wrapping_neg();
        for q in 0..o.kq {
            for i in 0..4 {
                let w = i32::from(*o.w.add((q * PANEL + c) * 4 + i));
                let x = i32::from(*o.x.add(4 * q + i));
                s = s.wrapping_add(w * x);
            }
        }
        *sum = s;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Operands, Sums, PANEL};
    use std::arch::x86_64::*;

    /// 4 panels × R rows of zmm accumulators; per quad 4 weight loads, R broadcasts of x
    /// and 4·R `vpdpbusd`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn vnni512<const R: usize>(o: &Operands, out: &mut Sums) {
        const P: usize = 4;
        let w: [*const i8; P] = std::array::from_fn(|p| o.panel(p));
        let zero = _mm512_setzero_si512();
        let start: [__m512i; P] =
            std::array::from_fn(|p| _mm512_sub_epi32(zero, _mm512_loadu_si512(o.comp(p).cast())));
        let mut acc = [start; R];
        for q in 0..o.kq {
            let wv: [__m512i; P] =
                std::array::from_fn(|p| _mm512_loadu_si512(w[p].add(q * PANEL * 4).cast()));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(o.quad(r, q));
                for p in 0..P {
                    row[p] = _mm512_dpbusd_epi32(row[p], x, wv[p]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                _mm512_storeu_si512(out.as_mut_ptr().add((r * P + p) * PANEL).cast(), v);
            }
        }
    }

    /// 2 panels × R rows, each panel two ymm of 8 channels: 4·R accumulators.
    #[target_feature(enable = "avx2,avxvnni")]
    pub unsafe fn vnni256<const R: usize>(o: &Operands, out: &mut Sums) {
        const P: usize = 2;
        let w: [*const i8; P] = std::array::from_fn(|p| o.panel(p));
        let zero = _mm256_setzero_si256();
        let start: [__m256i; 2 * P] = std::array::from_fn(|v| {
            let c = o.comp(v / 2).add(v % 2 * 8);
            _mm256_sub_epi32(zero, _mm256_loadu_si256(c.cast()))
        });
        let mut acc = [start; R];
        for q in 0..o.kq {
            let wv: [__m256i; 2 * P] = std::array::from_fn(|v| {
                _mm256_loadu_si256(w[v / 2].add(q * PANEL * 4 + v % 2 * 32).cast())
            });
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_epi32(o.quad(r, q));
                for v in 0..2 * P {
                    row[v] = _mm256_dpbusd_avx_epi32(row[v], x, wv[v]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &s) in row.iter().enumerate() {
                let at = (r * P + v / 2) * PANEL + v % 2 * 8;
                _mm256_storeu_si256(out.as_mut_ptr().add(at).cast(), s);
            }
        }
    }

    /// 1 panel × R rows without VNNI: the quad's 64 weight bytes widened to four ymm of
    /// i16 (4 channels × 4 k each), x's quad widened and repeated, `vpmaddwd` into a pair
    /// of i32 per channel (never saturating: 2 · 255 · 128 fits), the pairs summed at
    /// the end.
    #[target_feature(enable = "avx2")]
    pub unsafe fn maddwd<const R: usize>(o: &Operands, out: &mut Sums) {
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        for q in 0..o.kq {
            let wq = o.w.add(q * PANEL * 4);
            let wv: [__m256i; 4] = std::array::from_fn(|j| {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(wq.add(16 * j).cast()))
            });
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm256_cvtepu8_epi16(_mm_set1_epi32(o.quad(r, q)));
                for j in 0..4 {
                    row[j] = _mm256_add_epi32(row[j], _mm256_madd_epi16(wv[j], x));
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for half in 0..2 {
                // hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the 64-bit permute puts them in order.
                let pairs = _mm256_hadd_epi32(row[2 * half], row[2 * half + 1]);
                let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(pairs);
                let comp = _mm256_loadu_si256(o.comp.add(8 * half).cast());
                let at = r * PANEL + 8 * half;
                _mm256_storeu_si256(
                    out.as_mut_ptr().add(at).cast(),
                    _mm256_sub_epi32(sums, comp),
                );
            }
        }
    }
}
