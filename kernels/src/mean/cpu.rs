//! Mean over H and W on the CPU: one vector sum per (image, channel) plane, planes split
//! over threads. Memory-bound: each input element is read once.

use std::ops::Range;

use crate::parallel::for_each_task;
use crate::parallel::SharedMut;
use crate::simd::{dispatch, Simd};
use crate::Isa;

use super::MeanParams;

/// y[i, c] = mean of x[i, c, :, :]. The sum runs in 4 vector accumulators (not the
/// reference's f64): within a few f32 roundings of the largest partial sum.
pub fn mean_hw(isa: Isa, p: &MeanParams, x: &[f32], y: &mut [f32], threads: usize) {
    // x: (n, c, h, w)  y: (n, c)
    let plane = p.h * p.w;
    let planes = p.n * p.c;
    assert_eq!(x.len(), planes * plane, "mean_hw: x length");
    assert_eq!(y.len(), planes, "mean_hw: y length");
    // A task under ~256 KB of input costs more to hand to another thread than to run:
    // 1x1280x7x7 (250 KB) takes ~4 µs on one core, ~15 µs split over two.
    let tasks = threads.clamp(1, planes).min(x.len().div_ceil(64 * 1024));
    let y = SharedMut::new(y);
    for_each_task(threads, tasks, |t| {
        let range = planes * t / tasks..planes * (t + 1) / tasks;
        // SAFETY: tasks own disjoint ranges of y; dispatch! checks the ISA.
        let y_t = unsafe { y.part(range.start, range.len()) };
        let x_t = &x[range.start * plane..range.end * plane];
        // SAFETY: dispatch! checks the ISA; mean_planes takes slices.
        unsafe { dispatch!(isa, mean_planes(x_t, plane, y_t)) }
    });
}

/// Needs S's features. x_t: (planes, plane)  y_t: (planes)
#[inline(always)]
unsafe fn mean_planes<S: Simd>(x_t: &[f32], plane: usize, y_t: &mut [f32]) {
    let scale = 1.0 / plane as f32;
    for (x_c, yv) in x_t.chunks_exact(plane).zip(y_t) {
        *yv = sum::<S>(x_c, 0..x_c.len()) * scale;
    }
}

/// The sum of `x[range]`. Needs S's features.
#[inline(always)]
pub(crate) unsafe fn sum<S: Simd>(x: &[f32], range: Range<usize>) -> f32 {
    let x = &x[range];
    let l = S::LANES;
    // Four accumulators: one add chain would wait 3 cycles per vector.
    let mut acc = [S::splat(0.0); 4];
    let mut i = 0;
    while i + 4 * l <= x.len() {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = S::add(*a, S::load(x.as_ptr().add(i + k * l)));
        }
        i += 4 * l;
    }
    while i + l <= x.len() {
        acc[0] = S::add(acc[0], S::load(x.as_ptr().add(i)));
        i += l;
    }
    let total = S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3]));
    S::reduce_add(total) + x[i..].iter().sum::<f32>()
}
