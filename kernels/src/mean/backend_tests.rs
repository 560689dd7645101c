//! The mean over H×W on every backend (`testing::everywhere`): the SIMD kernel on every
//! instruction set and 1 and 2 threads, and `mean_hw_f32` on CUDA, against the reference.

use super::{cpu, cuda, reference, MeanParams};
use crate::testing::everywhere::{abs, check, Allow, Case};
use crate::testing::Rng;

/// An f32 sum of up to 1330 values in another order than the reference's f64 one: rel
/// 1e-5 of the sum of the plane's |x|.
fn case(p: MeanParams, x: Vec<f32>, what: &str) -> Case {
    p.validate().unwrap();
    let (mut expected, mut mags) = (vec![0.0; p.n * p.c], vec![0.0; p.n * p.c]);
    reference::mean_hw(&p, &x, &mut expected);
    reference::mean_hw(&p, &abs(&x), &mut mags);
    let name = format!("mean_hw n{} c{} {}x{}{what}", p.n, p.c, p.h, p.w);
    Case::new(name, vec![x], expected, Allow::Given(1e-5, mags))
        .cuda(cuda::mean_hw(&p).unwrap())
        .cpu(move |isa, threads, x, y| cpu::mean_hw(isa, &p, x[0], y, threads))
}

#[test]
fn mean_hw_matches_reference() {
    // Planes of 1, under one warp (5×7), between warps (7×7 = 49), exactly one block
    // (16×16 = 256), and over one block (17×19 = 323, 35×38 = 1330 values); SIMD tails
    // (1×17, 3×33); ResNet's head, 2048 planes split over threads.
    let shapes = [
        [1, 1, 1, 1],
        [2, 3, 1, 1],
        [1, 4, 5, 7],
        [2, 8, 7, 7],
        [1, 3, 16, 16],
        [2, 2, 17, 19],
        [1, 3, 35, 38],
        [2, 17, 1, 17],
        [1, 5, 3, 33],
        [1, 2048, 7, 7],
    ];
    let cases: Vec<Case> = shapes
        .iter()
        .enumerate()
        .map(|(i, &[n, c, h, w])| {
            let mut x = Rng::new(i as u64 + 1).vec(n * c * h * w);
            // A constant offset, so the means are not all near zero.
            x.iter_mut().for_each(|v| *v += 0.25);
            case(MeanParams { n, c, h, w }, x, "")
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
    let case = case(p, x, " with NaN and infinities");
    check("mean_hw", &[case]);
}
