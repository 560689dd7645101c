//! `mean_hw_f32` against the reference loops, through the CUDA test harness (NVRTC
//! compile, CPU emulation, and the GPU when there is one).

use super::cuda::mean_hw;
use super::{reference, MeanParams};
use crate::cuda::testing::{check, Case};
use crate::testing::Rng;

// An f32 sum of up to 1330 values in another order than the reference's f64 one: rel 1e-5.
const RTOL: f64 = 1e-5;

#[test]
fn mean_hw_matches_reference() {
    // Planes of 1, under one warp (5×7), between warps (7×7 = 49), exactly one block
    // (16×16 = 256), and over one block (17×19 = 323, 35×38 = 1330 values).
    let shapes = [
        [1, 1, 1, 1],
        [2, 3, 1, 1],
        [1, 4, 5, 7],
        [2, 8, 7, 7],
        [1, 3, 16, 16],
        [2, 2, 17, 19],
        [1, 3, 35, 38],
    ];
    let cases: Vec<Case> = shapes
        .iter()
        .enumerate()
        .map(|(i, &[n, c, h, w])| {
            let p = MeanParams { n, c, h, w };
            p.validate().unwrap();
            let mut x = Rng::new(i as u64 + 1).vec(n * c * h * w);
            // A constant offset, so the means are not all near zero.
            x.iter_mut().for_each(|v| *v += 0.25);
            let mut expected = vec![0.0; n * c];
            reference::mean_hw(&p, &x, &mut expected);
            Case {
                name: format!("mean_hw n{n} c{c} {h}x{w}"),
                op: mean_hw(&p).unwrap(),
                inputs: vec![x],
                expected,
                rtol: RTOL,
            }
        })
        .collect();
    check("mean_hw", &cases);
}

#[test]
fn mean_hw_propagates_nan_and_infinities() {
    // Plane 0 holds a NaN, plane 1 +inf, plane 2 -inf, plane 3 +inf and -inf (NaN),
    // plane 4 nothing special; 300 values each, so the specials meet in the block's sum.
    let (n, c, h, w) = (1, 5, 15, 20);
    let p = MeanParams { n, c, h, w };
    let mut x = Rng::new(7).vec(n * c * h * w);
    for (i, v) in [
        (17, f32::NAN),
        (300 + 299, f32::INFINITY),
        (600 + 40, f32::NEG_INFINITY),
        (900 + 1, f32::INFINITY),
        (900 + 290, f32::NEG_INFINITY),
    ] {
        x[i] = v;
    }
    let mut expected = vec![0.0; n * c];
    reference::mean_hw(&p, &x, &mut expected);
    let case = Case {
        name: format!("mean_hw n{n} c{c} {h}x{w} with NaN and infinities"),
        op: mean_hw(&p).unwrap(),
        inputs: vec![x],
        expected,
        rtol: RTOL,
    };
    check("mean_hw", &[case]);
}
