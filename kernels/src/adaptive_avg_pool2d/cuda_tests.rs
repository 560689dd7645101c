//! `adaptive_avg_pool2d_f32` against the reference loops, through the CUDA test harness
//! (NVRTC compile, CPU emulation, and the GPU when there is one).

use super::cuda::adaptive_avg_pool2d;
use super::{reference, AdaptiveAvgPool2dParams};
use crate::cuda::testing::{check, Case};
use crate::testing::Rng;

// An f32 sum of at most 20 values where the reference sums in f64: rel 1e-5.
const RTOL: f64 = 1e-5;

fn case(p: &AdaptiveAvgPool2dParams, seed: u64) -> Case {
    p.validate().unwrap();
    let x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let mut expected = vec![0.0; p.output_shape().iter().product()];
    reference::adaptive_avg_pool2d(p, &x, &mut expected);
    Case {
        name: format!(
            "adaptive_avg_pool2d n{} c{} {}x{} -> {:?}",
            p.n, p.c, p.h, p.w, p.out
        ),
        op: adaptive_avg_pool2d(p).unwrap(),
        inputs: vec![x],
        expected,
        rtol: RTOL,
    }
}

#[test]
fn adaptive_avg_pool2d_matches_reference() {
    // Per input size, outputs smaller (dividing it or not, global 1×1), equal, larger
    // (dividing or not), and mixed (smaller along h, larger along w).
    let sweep: [([usize; 2], &[[usize; 2]]); 4] = [
        ([1, 1], &[[1, 1], [3, 2]]),
        (
            [5, 7],
            &[[1, 1], [2, 3], [5, 7], [3, 4], [7, 10], [10, 14], [2, 9]],
        ),
        ([7, 7], &[[1, 1], [7, 7], [3, 3], [2, 2]]),
        ([9, 13], &[[4, 5], [9, 13], [1, 13], [13, 9], [3, 1]]),
    ];
    let mut cases = Vec::new();
    for ([h, w], outs) in sweep {
        for &out in outs {
            let i = cases.len();
            let p = AdaptiveAvgPool2dParams {
                n: 1 + i % 2,
                c: [1, 3, 4][i % 3],
                h,
                w,
                out,
            };
            cases.push(case(&p, i as u64 + 1));
        }
    }
    check("adaptive_avg_pool2d", &cases);
}
