//! adaptive_avg_pool2d on the CPU. Output 1x1 (the global pool before a classifier) is a
//! plane sum, as `mean_hw`; other sizes sum each window row by row. Planes split over threads.

use std::ops::Range;

use crate::mean::cpu::sum;
use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::Isa;

use super::AdaptiveAvgPool2dParams;

/// As `reference::adaptive_avg_pool2d`; sums in f32 vectors instead of f64.
pub fn adaptive_avg_pool2d(
    isa: Isa,
    p: &AdaptiveAvgPool2dParams,
    x: &[f32],
    y: &mut [f32],
    threads: usize,
) {
    // x: (n, c, h, w)  y: (n, c, oh, ow)
    let (plane_in, plane_out) = (p.h * p.w, p.out[0] * p.out[1]);
    let planes = p.n * p.c;
    assert_eq!(x.len(), planes * plane_in, "adaptive_avg_pool2d: x length");
    assert_eq!(y.len(), planes * plane_out, "adaptive_avg_pool2d: y length");
    // A task under ~256 KB of input costs more to hand to another thread than to run:
    // 1x1280x7x7 (250 KB) takes ~4 µs on one core, ~15 µs split over two.
    let tasks = threads.clamp(1, planes).min(x.len().div_ceil(64 * 1024));
    let y = SharedMut::new(y);
    for_each_task(threads, tasks, |t| {
        let range = planes * t / tasks..planes * (t + 1) / tasks;
        // SAFETY: tasks own disjoint planes of y.
        let y_t = unsafe { y.part(range.start * plane_out, range.len() * plane_out) };
        let x_t = &x[range.start * plane_in..range.end * plane_in];
        // SAFETY: dispatch! checks the ISA; pool_planes takes slices.
        unsafe { dispatch!(isa, pool_planes(p, x_t, y_t)) }
    });
}

/// Needs S's features. x_t: (planes, h, w)  y_t: (planes, oh, ow)
#[inline(always)]
unsafe fn pool_planes<S: Simd>(p: &AdaptiveAvgPool2dParams, x_t: &[f32], y_t: &mut [f32]) {
    let [oh, ow] = p.out;
    if p.out == [1, 1] {
        // The global pool: one sum per plane.
        let scale = 1.0 / (p.h * p.w) as f32;
        for (x_c, yv) in x_t.chunks_exact(p.h * p.w).zip(y_t) {
            *yv = sum::<S>(x_c, 0..x_c.len()) * scale;
        }
        return;
    }
    for (x_c, y_c) in x_t
        .chunks_exact(p.h * p.w)
        .zip(y_t.chunks_exact_mut(oh * ow))
    {
        for (oy, y_row) in y_c.chunks_exact_mut(ow).enumerate() {
            let rows = window(oy, p.h, oh);
            for (ox, yv) in y_row.iter_mut().enumerate() {
                let cols = window(ox, p.w, ow);
                let total: f32 = if cols.len() == p.w {
                    // Whole rows are contiguous: one sum over the block.
                    sum::<S>(x_c, rows.start * p.w..rows.end * p.w)
                } else {
                    rows.clone()
                        .map(|iy| sum::<S>(x_c, iy * p.w + cols.start..iy * p.w + cols.end))
                        .sum()
                };
                *yv = total / (rows.len() * cols.len()) as f32;
            }
        }
    }
}

/// PyTorch's window for output `i` of `out` on an axis of length `len`, as the reference:
/// `[floor(i*len/out), ceil((i+1)*len/out))`.
fn window(i: usize, len: usize, out: usize) -> Range<usize> {
    (i * len / out)..((i + 1) * len).div_ceil(out)
}
