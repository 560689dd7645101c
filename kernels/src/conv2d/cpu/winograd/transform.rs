//! The per-chunk input and output transforms of Winograd F(M×M, 3×3), M ∈ {4, 2}, on
//! LANES = 16 consecutive tiles at once (lane l = tile t0 + l): the portable form, compiled
//! per ISA for avx2 and scalar; avx512 has its own (`avx512.rs`) with the same layout.
//!
//! Why staged rows: tile l's window row i starts at column M·tx_l, so across a run of tiles
//! in one tile row the windows' first M columns are one contiguous stretch of x's row. Each
//! window row is therefore copied as whole runs (`lo`: columns M·tx.., `hi`: the next M,
//! which hold the window's last 2 columns), then split into A = M + 2 lane vectors by a
//! stride-M de-interleave. The old per-tap gather, with a bounds check per tap and lane,
//! was the 7% `input_avx512` of the ResNet-18 profile. The output runs the same way
//! backwards: interleave a row of M × LANES pixels, then store runs with the
//! residual/activation epilogue as plain contiguous loops.
//!
//! Chunks cross tile rows (ResNet's 56² has 14 tiles a row), so a chunk is up to a few
//! runs; padding and the right/bottom edges are handled per run, not per tap.

use crate::{Activation, Isa};

/// Tiles per transform step: one zmm, two ymm.
pub const LANES: usize = 16;
type Lanes = [f32; LANES];

/// One image plane's tile grid: everything a chunk needs to find its tiles' pixels.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    /// Input plane (h, w) and padding (top, left).
    pub h: usize,
    pub w: usize,
    pub ph: usize,
    pub pw: usize,
    /// Output plane (oh, ow).
    pub oh: usize,
    pub ow: usize,
    /// Tiles per row, and T = tiles in all.
    pub tw: usize,
    pub t: usize,
}

impl Grid {
    /// The runs of the chunk t0..: (first lane, tile row, first tile column, tiles), each
    /// in one tile row.
    #[inline(always)]
    pub fn runs(&self, t0: usize) -> Runs {
        Runs {
            t0,
            t: t0,
            end: (t0 + LANES).min(self.t),
            tw: self.tw,
        }
    }
}

/// Iterator of `Grid::runs`.
pub struct Runs {
    t0: usize,
    t: usize,
    end: usize,
    tw: usize,
}

impl Iterator for Runs {
    type Item = (usize, usize, usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.t >= self.end {
            return None;
        }
        let (ty, tx) = (self.t / self.tw, self.t % self.tw);
        let n = (self.tw - tx).min(self.end - self.t);
        let run = (self.t - self.t0, ty, tx, n);
        self.t += n;
        Some(run)
    }
}

/// Copies row[c0 .. c0 + dst.len()] into dst; columns outside 0..row.len() are padding and
/// leave dst's zeros alone.
#[inline(always)]
fn copy_padded(dst: &mut [f32], row: &[f32], c0: isize) {
    let lo = (-c0).clamp(0, dst.len() as isize) as usize;
    let hi = (row.len() as isize - c0).clamp(lo as isize, dst.len() as isize) as usize;
    if lo < hi {
        let s = (c0 + lo as isize) as usize;
        dst[lo..hi].copy_from_slice(&row[s..s + hi - lo]);
    }
}

/// V[ξ][t0 + l] = (Bᵀ d_l B)[ξ], ξ < (M+2)², for the LANES tiles t0.., d_l tile l's input
/// window (zero past x and for lanes past T).
///
/// # Safety
/// dst + ξ·ld .. + LANES is writable for every ξ < (M+2)².
#[inline(always)]
pub unsafe fn input_lanes<const M: usize>(
    g: &Grid,
    x_c: &[f32],
    t0: usize,
    dst: *mut f32,
    ld: usize,
) {
    let a = M + 2;
    // d: (A, A, LANES), tile l's window in lane l.
    let mut d = [[[0.0f32; LANES]; 6]; 6];
    for (i, d_row) in d.iter_mut().enumerate().take(a) {
        // lo, hi: (LANES, M) window columns 0..M and M..2M of row i, tile after tile.
        let (mut lo, mut hi) = ([0.0f32; LANES * 4], [0.0f32; LANES * 4]);
        for (l, ty, tx, n) in g.runs(t0) {
            let iy = (M * ty + i) as isize - g.ph as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let row = &x_c[iy as usize * g.w..][..g.w];
            let c0 = (M * tx) as isize - g.pw as isize;
            copy_padded(&mut lo[M * l..][..M * n], row, c0);
            copy_padded(&mut hi[M * l..][..M * n], row, c0 + M as isize);
        }
        for j in 0..M {
            for l in 0..LANES {
                d_row[j][l] = lo[M * l + j];
            }
        }
        for j in 0..2 {
            for l in 0..LANES {
                d_row[M + j][l] = hi[M * l + j];
            }
        }
    }
    // t = Bᵀ d (along i), then Bᵀ t Bᵀᵀ (along j).
    let mut t = [[[0.0f32; LANES]; 6]; 6];
    for j in 0..a {
        let col = bt::<M>([&d[0][j], &d[1][j], &d[2][j], &d[3][j], &d[4][j], &d[5][j]]);
        for (k, c) in col.into_iter().enumerate().take(a) {
            t[k][j] = c;
        }
    }
    for (k, row) in t.iter().enumerate().take(a) {
        let out = bt::<M>([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
        for (l, o) in out.iter().enumerate().take(a) {
            // SAFETY: ξ = A·k + l < A², LANES floats at dst + ξ·ld (caller).
            unsafe { std::ptr::copy_nonoverlapping(o.as_ptr(), dst.add((k * a + l) * ld), LANES) };
        }
    }
}

/// y tiles t0.. = act(Aᵀ m A + bias + residual), the pixels inside (oh, ow) only.
///
/// # Safety
/// src + ξ·ld .. + LANES is readable for every ξ < (M+2)²; dst is y's plane (oh, ow) of
/// this channel and no other thread writes these tiles.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn output_lanes<const M: usize>(
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
    // m: (A, A, LANES)
    let mut m = [[[0.0f32; LANES]; 6]; 6];
    for (k, row) in m.iter_mut().enumerate().take(a) {
        for (l, v) in row.iter_mut().enumerate().take(a) {
            // SAFETY: ξ = A·k + l < A², LANES floats at src + ξ·ld (caller).
            unsafe {
                std::ptr::copy_nonoverlapping(src.add((k * a + l) * ld), v.as_mut_ptr(), LANES)
            };
        }
    }
    // t: (M, A, LANES) = Aᵀ m, then o: (M, M, LANES) = Aᵀ m A + bias.
    let mut t = [[[0.0f32; LANES]; 6]; 4];
    for j in 0..a {
        let col = at::<M>([&m[0][j], &m[1][j], &m[2][j], &m[3][j], &m[4][j], &m[5][j]]);
        for (r, c) in col.into_iter().enumerate().take(M) {
            t[r][j] = c;
        }
    }
    for (r, t_row) in t.iter().enumerate().take(M) {
        let o = at::<M>([
            &t_row[0], &t_row[1], &t_row[2], &t_row[3], &t_row[4], &t_row[5],
        ]);
        // px: (LANES, M) output row r of each tile, tile after tile: a run is contiguous.
        let mut px = [0.0f32; LANES * 4];
        for (b, o_b) in o.iter().enumerate().take(M) {
            for l in 0..LANES {
                px[M * l + b] = o_b[l] + bias;
            }
        }
        for (l, ty, tx, n) in g.runs(t0) {
            let oy = M * ty + r;
            if oy >= g.oh {
                continue;
            }
            let (off, cols) = (oy * g.ow + M * tx, (M * n).min(g.ow - M * tx));
            // SAFETY: pixels (oy, M·tx .. M·tx + cols) are inside (oh, ow) and belong to
            // this chunk's tiles only (caller).
            let out = unsafe { std::slice::from_raw_parts_mut(dst.add(off), cols) };
            store_row(
                out,
                &px[M * l..][..cols],
                res.map(|r| &r[off..][..cols]),
                act,
            );
        }
    }
}

/// out = act(v + residual), with the activation chosen once per row so each loop is a
/// plain vectorisable map.
#[inline(always)]
fn store_row(out: &mut [f32], v: &[f32], res: Option<&[f32]>, act: Activation) {
    match act {
        Activation::None => store_row_with(out, v, res, |x| x),
        Activation::Relu => store_row_with(out, v, res, |x| Activation::Relu.apply(x)),
        Activation::Relu6 => store_row_with(out, v, res, |x| Activation::Relu6.apply(x)),
        act => store_row_with(out, v, res, |x| act.apply(x)),
    }
}

#[inline(always)]
fn store_row_with(out: &mut [f32], v: &[f32], res: Option<&[f32]>, f: impl Fn(f32) -> f32) {
    match res {
        Some(r) => {
            for ((o, &v), &r) in out.iter_mut().zip(v).zip(r) {
                *o = f(v + r);
            }
        }
        None => {
            for (o, &v) in out.iter_mut().zip(v) {
                *o = f(v);
            }
        }
    }
}

/// Bᵀ x along one axis: 6 lane vectors (the first M + 2 used) to M + 2.
#[inline(always)]
fn bt<const M: usize>(x: [&Lanes; 6]) -> [Lanes; 6] {
    let mut o = [[0.0f32; LANES]; 6];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = x.map(|v| v[l]);
        if M == 4 {
            // Points 0, 1, −1, 2, −2, ∞.
            o[0][l] = 4.0 * x0 - 5.0 * x2 + x4;
            o[1][l] = -4.0 * (x1 + x2) + x3 + x4;
            o[2][l] = 4.0 * (x1 - x2) - x3 + x4;
            o[3][l] = 2.0 * (x3 - x1) - x2 + x4;
            o[4][l] = 2.0 * (x1 - x3) - x2 + x4;
            o[5][l] = 4.0 * x1 - 5.0 * x3 + x5;
        } else {
            // Points 0, 1, −1, ∞.
            o[0][l] = x0 - x2;
            o[1][l] = x1 + x2;
            o[2][l] = x2 - x1;
            o[3][l] = x1 - x3;
        }
    }
    o
}

/// Aᵀ x along one axis: M + 2 lane vectors to M.
#[inline(always)]
fn at<const M: usize>(x: [&Lanes; 6]) -> [Lanes; 4] {
    let mut o = [[0.0f32; LANES]; 4];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = x.map(|v| v[l]);
        if M == 4 {
            let (s12, d12, s34, d34) = (x1 + x2, x1 - x2, x3 + x4, x3 - x4);
            o[0][l] = x0 + s12 + s34;
            o[1][l] = d12 + 2.0 * d34;
            o[2][l] = s12 + 4.0 * s34;
            o[3][l] = d12 + 8.0 * d34 + x5;
        } else {
            o[0][l] = x0 + x1 + x2;
            o[1][l] = x1 - x2 - x3;
        }
    }
    o
}

/// Runs `input_lanes::<M>` compiled for `isa`.
///
/// # Safety
/// As `input_lanes`; the CPU supports `isa`.
pub unsafe fn input_chunk<const M: usize>(
    isa: Isa,
    g: &Grid,
    x_c: &[f32],
    t0: usize,
    dst: *mut f32,
    ld: usize,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded contract.
        Isa::Avx512 => unsafe { super::avx512::input_avx512::<M>(g, x_c, t0, dst, ld) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded contract.
        Isa::Avx2 => unsafe { input_avx2::<M>(g, x_c, t0, dst, ld) },
        // SAFETY: forwarded contract.
        _ => unsafe { input_lanes::<M>(g, x_c, t0, dst, ld) },
    }
}

/// Runs `output_lanes::<M>` compiled for `isa`.
///
/// # Safety
/// As `output_lanes`; the CPU supports `isa`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn output_chunk<const M: usize>(
    isa: Isa,
    g: &Grid,
    src: *const f32,
    ld: usize,
    t0: usize,
    bias: f32,
    res: Option<&[f32]>,
    act: Activation,
    dst: *mut f32,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded contract.
        Isa::Avx512 => unsafe {
            super::avx512::output_avx512::<M>(g, src, ld, t0, bias, res, act, dst)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded contract.
        Isa::Avx2 => unsafe { output_avx2::<M>(g, src, ld, t0, bias, res, act, dst) },
        // SAFETY: forwarded contract.
        _ => unsafe { output_lanes::<M>(g, src, ld, t0, bias, res, act, dst) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_avx2<const M: usize>(g: &Grid, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
    // SAFETY: forwarded contract.
    unsafe { input_lanes::<M>(g, x_c, t0, dst, ld) }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_avx2<const M: usize>(
    g: &Grid,
    src: *const f32,
    ld: usize,
    t0: usize,
    bias: f32,
    res: Option<&[f32]>,
    act: Activation,
    dst: *mut f32,
) {
    // SAFETY: forwarded contract.
    unsafe { output_lanes::<M>(g, src, ld, t0, bias, res, act, dst) }
}
