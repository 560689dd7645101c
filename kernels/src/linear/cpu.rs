//! Fully connected layer on the CPU, y = act(x · wᵀ + bias).
//!
//! The weights are packed once into panels of LANES outputs, (panels, in, LANES), so one
//! vector load brings the weights of LANES outputs for one input and the sums need no
//! horizontal reduction. Loop 1: panels, split over threads (each streams its own part of
//! the weights). Loop 2: blocks of up to 4 rows share each weight load. Loop 3: the inputs,
//! with 4 (1 row), 2 (2 rows) or 1 (3-4 rows) accumulators per row so enough FMA chains run
//! at once. At batch 1 this is a GEMV: bound by streaming the weights once.

use std::ops::Range;

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

use super::LinearParams;

/// A linear layer with its weights packed for `isa`.
pub struct LinearCpu {
    p: LinearParams,
    isa: Isa,
    lanes: usize,
    /// (panels, in_features, lanes); the last panel's missing outputs are zeros.
    w: Vec<f32>,
    /// (panels * lanes), zeros past out_features or when there is no bias.
    bias: Vec<f32>,
}

impl LinearCpu {
    /// `p` must be validated. w: (out, in)  bias: (out)
    pub fn new(p: &LinearParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> LinearCpu {
        assert!(isa.is_supported(), "linear: this CPU cannot run {isa}");
        let (k, out) = (p.in_features, p.out_features);
        assert_eq!(weight.len(), out * k, "linear: w length");
        bias.inspect(|b| assert_eq!(b.len(), out, "linear: bias length"));
        let lanes = match isa {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            Isa::Scalar => 1,
        };
        let panels = out.div_ceil(lanes);
        let mut w = vec![0.0; panels * k * lanes];
        for o in 0..out {
            let (panel, j) = (o / lanes, o % lanes);
            for i in 0..k {
                w[(panel * k + i) * lanes + j] = weight[o * k + i];
            }
        }
        let mut packed_bias = vec![0.0; panels * lanes];
        if let Some(b) = bias {
            packed_bias[..out].copy_from_slice(b);
        }
        LinearCpu {
            p: *p,
            isa,
            lanes,
            w,
            bias: packed_bias,
        }
    }

    /// y = act(x · wᵀ + bias).
    pub fn run(&self, x: &[f32], act: Activation, y: &mut [f32], threads: usize) {
        // x: (rows, in)  y: (rows, out)
        let p = &self.p;
        assert_eq!(x.len(), p.rows * p.in_features, "linear: x length");
        assert_eq!(y.len(), p.rows * p.out_features, "linear: y length");
        let panels = p.out_features.div_ceil(self.lanes);
        let tasks = threads.clamp(1, panels);
        let y = SharedMut::new(y);
        for_each_task(threads, tasks, |t| {
            let range = panels * t / tasks..panels * (t + 1) / tasks;
            // SAFETY: lengths asserted above; tasks own disjoint panels (output columns);
            // dispatch! checks the ISA, which `new` packed for.
            unsafe { dispatch!(self.isa, panels_body(self, range, x, act, y)) }
        });
    }
}

/// Weight rows (of LANES floats) the GEMV prefetches ahead: 2 KiB at 16 lanes.
const PREFETCH: usize = 32;

/// Needs S's features with S::LANES == lin.lanes; only this task writes `panels`' columns.
#[inline(always)]
unsafe fn panels_body<S: Simd>(
    lin: &LinearCpu,
    panels: Range<usize>,
    x: &[f32],
    act: Activation,
    y: SharedMut,
) {
    let rows = lin.p.rows;
    for panel in panels {
        let mut r0 = 0;
        while r0 < rows {
            let rb = (rows - r0).min(4);
            match rb {
                4 => block::<S, 4, 1>(lin, panel, r0, x, act, y),
                3 => block::<S, 3, 1>(lin, panel, r0, x, act, y),
                2 => block::<S, 2, 2>(lin, panel, r0, x, act, y),
                _ => block::<S, 1, 4>(lin, panel, r0, x, act, y),
            }
            r0 += rb;
        }
    }
}

/// Rows r0..r0+R of one panel, U accumulators per row (inputs i ≡ u mod U).
#[inline(always)]
unsafe fn block<S: Simd, const R: usize, const U: usize>(
    lin: &LinearCpu,
    panel: usize,
    r0: usize,
    x: &[f32],
    act: Activation,
    y: SharedMut,
) {
    let (k, out, l) = (lin.p.in_features, lin.p.out_features, S::LANES);
    // w_p: (in, lanes)
    let w_p = lin.w[panel * k * l..][..k * l].as_ptr();
    let x_r = x[r0 * k..][..R * k].as_ptr();
    let mut acc = [[S::splat(0.0); U]; R];
    let mut i = 0;
    while i + U <= k {
        // Weights stream from memory once per call (batch 1 is a GEMV): the hardware
        // prefetcher alone kept one core at 10–12 GB/s. A row 2 KiB ahead, weights cycled
        // through 200 MiB, same process, 1 thread (MobileNetV3's 960→240 to 1280→1000):
        // avx512 0.79–0.88× the time, avx2 0.78–1.00×.
        for u in 0..U {
            S::prefetch(w_p.wrapping_add((i + u + PREFETCH) * l));
            let wv = S::load(w_p.add((i + u) * l));
            for (r, acc) in acc.iter_mut().enumerate() {
                acc[u] = S::fma(S::splat(*x_r.add(r * k + i + u)), wv, acc[u]);
            }
        }
        i += U;
    }
    for i in i..k {
        let wv = S::load(w_p.add(i * l));
        for (r, acc) in acc.iter_mut().enumerate() {
            acc[0] = S::fma(S::splat(*x_r.add(r * k + i)), wv, acc[0]);
        }
    }
    let n = l.min(out - panel * l);
    let bias = S::load(lin.bias.as_ptr().add(panel * l));
    for (r, acc) in acc.iter().enumerate() {
        let sum = acc.iter().fold(bias, |s, a| S::add(s, *a));
        // SAFETY (caller's): this task alone writes this panel's columns of each row.
        let y_row = y.part((r0 + r) * out + panel * l, n);
        let v = S::act(sum, act);
        if n == l {
            S::store(y_row.as_mut_ptr(), v);
        } else {
            S::store_part(y_row.as_mut_ptr(), n, v);
        }
    }
}
