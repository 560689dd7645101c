//! Adaptive average pooling on every backend (`testing::everywhere`): the SIMD kernel on
//! every instruction set and 1 and 2 threads, and `adaptive_avg_pool2d_f32` on CUDA,
//! against the reference loops.

use super::{cpu, cuda, reference, AdaptiveAvgPool2dParams};
use crate::testing::everywhere::{abs, check, Allow, Case};
use crate::testing::Rng;

/// An f32 sum of at most 20 values where the reference sums in f64: rel 1e-5 of the sum
/// of the window's |x|.
fn case(p: &AdaptiveAvgPool2dParams, seed: u64) -> Case {
    p.validate().unwrap();
    let x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let len = p.output_shape().iter().product();
    let (mut expected, mut mags) = (vec![0.0; len], vec![0.0; len]);
    reference::adaptive_avg_pool2d(p, &x, &mut expected);
    reference::adaptive_avg_pool2d(p, &abs(&x), &mut mags);
    let name = format!(
        "adaptive_avg_pool2d n{} c{} {}x{} -> {:?}",
        p.n, p.c, p.h, p.w, p.out
    );
    let q = *p;
    Case::new(name, vec![x], expected, Allow::Given(1e-5, mags))
        .cuda(cuda::adaptive_avg_pool2d(p).unwrap())
        .cpu(move |isa, threads, x, y| cpu::adaptive_avg_pool2d(isa, &q, x[0], y, threads))
}

#[test]
fn adaptive_avg_pool2d_matches_reference() {
    // Per input size, outputs smaller (dividing it or not, global 1×1), equal, larger
    // (dividing or not), and mixed (smaller along h, larger along w).
    // Widths 17 and 65 leave SIMD tails; 17 channels split unevenly over 2 threads.
    let sweep: [([usize; 2], &[[usize; 2]]); 6] = [
        ([1, 1], &[[1, 1], [3, 2]]),
        (
            [5, 7],
            &[[1, 1], [2, 3], [5, 7], [3, 4], [7, 10], [10, 14], [2, 9]],
        ),
        ([7, 7], &[[1, 1], [7, 7], [3, 3], [2, 2]]),
        ([9, 13], &[[4, 5], [9, 13], [1, 13], [13, 9], [3, 1]]),
        ([3, 17], &[[1, 1], [2, 5], [3, 17], [5, 20]]),
        ([8, 65], &[[2, 2], [8, 65], [1, 5]]),
    ];
    let mut cases = Vec::new();
    for ([h, w], outs) in sweep {
        for &out in outs {
            let i = cases.len();
            let p = AdaptiveAvgPool2dParams {
                n: 1 + i % 2,
                c: [1, 3, 4, 17][i % 4],
                h,
                w,
                out,
            };
            cases.push(case(&p, i as u64 + 1));
        }
    }
    check("adaptive_avg_pool2d", &cases);
}
