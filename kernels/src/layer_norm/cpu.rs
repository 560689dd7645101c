//! Layer norm on the CPU, x viewed as (outer, norm, inner), two passes per line (mean,
//! then the sum of squared deviations) and a third that writes.
//!
//! - inner == 1 (NHWC over C, a transformer's last dim): each line is a contiguous row,
//!   vectorised along it with four accumulators and a scalar tail.
//! - inner > 1 (NCHW over C): lines are columns `inner` apart; a strip of up to four
//!   vectors of neighbouring columns is normalised together, one accumulator per column
//!   lane, so every load is contiguous. A strip of 96 channels is 96 × 256 B: it stays in
//!   L1/L2 between the three passes.
//!
//! Rows (inner == 1) or blocks of `COLS` columns (inner > 1) are split over threads.

use crate::mean::cpu::sum;
use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

use super::LayerNormParams;

/// Columns per task unit when inner > 1: 4 AVX-512 vectors, 8 AVX2 ones.
const COLS: usize = 64;

/// A task under this many elements costs more to hand to another thread than to run
/// (three passes over ~128 KB take a few µs, as waking a worker does).
const MIN_TASK: usize = 32 * 1024;

/// As `reference::layer_norm`, in f32: within a few roundings of the f64 two-pass sums
/// (SIMD sums in another order). A line holding a NaN or an infinity comes out all NaN.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm(
    isa: Isa,
    p: &LayerNormParams,
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
    threads: usize,
) {
    // x, y: (outer, norm, inner)  weight, bias: (norm)
    p.check(x, weight, bias, y);
    let affine = Affine { weight, bias, act };
    let units = match p.inner {
        1 => p.outer,
        _ => p.outer * p.inner.div_ceil(COLS),
    };
    let tasks = threads.clamp(1, units).min(p.len().div_ceil(MIN_TASK));
    let y = SharedMut::new(y);
    for_each_task(threads, tasks, |t| {
        let range = units * t / tasks..units * (t + 1) / tasks;
        // SAFETY: lengths checked above; tasks own disjoint rows or column blocks (the
        // bodies take parts of y only there); dispatch! checks the ISA.
        unsafe {
            match p.inner {
                1 => dispatch!(isa, rows_body(p, range, x, &affine, y)),
                _ => dispatch!(isa, columns_body(p, range, x, &affine, y)),
            }
        }
    });
}

/// What follows the normalisation: `act(v · weight[k] + bias[k])`.
struct Affine<'a> {
    /// (norm), or 1s.
    weight: Option<&'a [f32]>,
    /// (norm), or 0s.
    bias: Option<&'a [f32]>,
    act: Activation,
}

impl Affine<'_> {
    /// Lanes of weight (or bias) from k, or `none` splat; k + LANES ≤ norm.
    #[inline(always)]
    unsafe fn load<S: Simd>(v: Option<&[f32]>, k: usize, none: f32) -> S::V {
        v.map_or(S::splat(none), |v| S::load(v.as_ptr().add(k)))
    }

    /// act(v · weight + bias), weight and bias vectors (`load`) or splats.
    #[inline(always)]
    unsafe fn apply<S: Simd>(&self, v: S::V, w: S::V, b: S::V) -> S::V {
        let v = match self.weight {
            Some(_) => S::mul(v, w),
            None => v,
        };
        let v = match self.bias {
            Some(_) => S::add(v, b),
            None => v,
        };
        S::act(v, self.act)
    }

    /// The same on one value at k.
    #[inline(always)]
    fn apply_one(&self, v: f32, k: usize) -> f32 {
        let v = self.weight.map_or(v, |w| v * w[k]);
        let v = self.bias.map_or(v, |b| v + b[k]);
        self.act.apply(v)
    }
}

/// 1 / sqrt(sq / norm + eps): the reciprocal standard deviation from the sum of squared
/// deviations, exactly rounded steps (no approximate rsqrt).
#[inline(always)]
fn rstd(sq: f32, p: &LayerNormParams) -> f32 {
    1.0 / (sq / p.norm as f32 + p.eps).sqrt()
}

/// Rows `rows` (inner == 1): each a contiguous line of `norm`. Needs S's features; x as
/// `p` says; only this task writes those rows of y.
#[inline(always)]
unsafe fn rows_body<S: Simd>(
    p: &LayerNormParams,
    rows: std::ops::Range<usize>,
    x: &[f32],
    affine: &Affine,
    y: SharedMut,
) {
    let (n, l) = (p.norm, S::LANES);
    let body = n / l * l;
    for r in rows {
        let x_r = &x[r * n..(r + 1) * n];
        let y_r = y.part(r * n, n);
        let mean = sum::<S>(x_r, 0..n) / n as f32;
        let rstd = rstd(sum_sq_dev::<S>(x_r, mean), p);
        let (m, s) = (S::splat(-mean), S::splat(rstd));
        for k in (0..body).step_by(l) {
            let v = S::mul(S::add(S::load(x_r.as_ptr().add(k)), m), s);
            let w = Affine::load::<S>(affine.weight, k, 1.0);
            let b = Affine::load::<S>(affine.bias, k, 0.0);
            S::store(y_r.as_mut_ptr().add(k), affine.apply::<S>(v, w, b));
        }
        for k in body..n {
            y_r[k] = affine.apply_one((x_r[k] - mean) * rstd, k);
        }
    }
}

/// Σ(x - mean)² over a row, four accumulators (one add chain would wait on its latency).
#[inline(always)]
unsafe fn sum_sq_dev<S: Simd>(x: &[f32], mean: f32) -> f32 {
    let l = S::LANES;
    let m = S::splat(-mean);
    let dev = |i: usize| S::add(S::load(x.as_ptr().add(i)), m);
    let mut acc = [S::splat(0.0); 4];
    let mut i = 0;
    while i + 4 * l <= x.len() {
        for (k, a) in acc.iter_mut().enumerate() {
            let d = dev(i + k * l);
            *a = S::fma(d, d, *a);
        }
        i += 4 * l;
    }
    while i + l <= x.len() {
        let d = dev(i);
        acc[0] = S::fma(d, d, acc[0]);
        i += l;
    }
    let total = S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3]));
    S::reduce_add(total) + x[i..].iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
}

/// Column blocks `units` (inner > 1): unit u is columns `COLS·(u % blocks)..` of outer
/// index `u / blocks`, done a strip of up to 4 vectors at a time. Needs S's features; x
/// as `p` says; only this task writes those columns of y.
#[inline(always)]
unsafe fn columns_body<S: Simd>(
    p: &LayerNormParams,
    units: std::ops::Range<usize>,
    x: &[f32],
    affine: &Affine,
    y: SharedMut,
) {
    let blocks = p.inner.div_ceil(COLS);
    let block = p.norm * p.inner;
    for u in units {
        let (o, c0) = (u / blocks, u % blocks * COLS);
        let c1 = (c0 + COLS).min(p.inner);
        let x_o = &x[o * block..(o + 1) * block];
        for s in (c0..c1).step_by(4 * S::LANES) {
            let width = (c1 - s).min(4 * S::LANES);
            strip::<S>(p, x_o, s, width, affine, |k, len| {
                y.part(o * block + k * p.inner + s, len)
            });
        }
    }
}

/// Columns c0..c0 + width (width ≤ 4 LANES) of one outer block x_o: (norm, inner), each
/// its own line. `out(k, width)` is y's row k of the strip. Needs S's features.
#[inline(always)]
unsafe fn strip<'y, S: Simd>(
    p: &LayerNormParams,
    x_o: &[f32],
    c0: usize,
    width: usize,
    affine: &Affine,
    out: impl Fn(usize, usize) -> &'y mut [f32],
) {
    let l = S::LANES;
    let vectors = width.div_ceil(l);
    let lanes = |j: usize| (width - j * l).min(l);
    // Lanes past the strip load 0: their sums are never stored.
    let load = |k: usize, j: usize| {
        let ptr = x_o.as_ptr().add(k * p.inner + c0 + j * l);
        match lanes(j) == l {
            true => S::load(ptr),
            false => S::load_lanes(ptr, 1, 0..lanes(j), S::splat(0.0)),
        }
    };
    let mut mean = [S::splat(0.0); 4];
    for k in 0..p.norm {
        for (j, m) in mean.iter_mut().enumerate().take(vectors) {
            *m = S::add(*m, load(k, j));
        }
    }
    let count = S::splat(p.norm as f32);
    mean.iter_mut().for_each(|m| *m = S::div(*m, count));
    let mut sq = [S::splat(0.0); 4];
    for k in 0..p.norm {
        for (j, q) in sq.iter_mut().enumerate().take(vectors) {
            let d = sub::<S>(load(k, j), mean[j]);
            *q = S::fma(d, d, *q);
        }
    }
    let rstd = sq.map(|q| rstd_lanes::<S>(q, p));
    for k in 0..p.norm {
        let y_k = out(k, width);
        let w = S::splat(affine.weight.map_or(1.0, |w| w[k]));
        let b = S::splat(affine.bias.map_or(0.0, |b| b[k]));
        for j in 0..vectors {
            let v = S::mul(sub::<S>(load(k, j), mean[j]), rstd[j]);
            let v = affine.apply::<S>(v, w, b);
            match lanes(j) == l {
                true => S::store(y_k.as_mut_ptr().add(j * l), v),
                false => S::store_part(y_k.as_mut_ptr().add(j * l), lanes(j), v),
            }
        }
    }
}

/// a - b, as a + (-b) (the same rounding).
#[inline(always)]
unsafe fn sub<S: Simd>(a: S::V, b: S::V) -> S::V {
    S::add(a, S::neg(b))
}

/// `rstd` lane-wise.
#[inline(always)]
unsafe fn rstd_lanes<S: Simd>(sq: S::V, p: &LayerNormParams) -> S::V {
    let mut lanes = [0.0f32; 16];
    S::store(lanes.as_mut_ptr(), sq);
    lanes
        .iter_mut()
        .take(S::LANES)
        .for_each(|v| *v = rstd(*v, p));
    S::load(lanes.as_ptr())
}
