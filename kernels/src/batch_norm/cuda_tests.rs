//! `batch_norm_f32` (scale and shift folded by `scale_shift`) against the reference batch
//! norm, through the CUDA test harness (NVRTC compile, CPU emulation, and the GPU when
//! there is one).

use super::cuda::scale_shift;
use super::{reference, BatchNormParams};
use crate::cuda::testing::{check, Case};
use crate::testing::Rng;

// The reference computes (x - mean) / std * weight + bias in f64; the kernel one f32 FMA
// with scale and shift rounded to f32: rel 1e-5 of max|y|.
const RTOL: f64 = 1e-5;

#[test]
fn batch_norm_matches_reference() {
    // (n, c, spatial): BatchNorm1d after a linear layer (spatial 1), small and odd planes,
    // a block tail; with and without weight and bias.
    let shapes = [
        [1, 1, 1],
        [3, 5, 1],
        [1, 3, 35],
        [2, 4, 49],
        [2, 7, 33],
        [1, 16, 256],
    ];
    let mut cases = Vec::new();
    for (i, [n, c, spatial]) in shapes.into_iter().enumerate() {
        for affine in [true, false] {
            let p = BatchNormParams {
                n,
                c,
                spatial,
                eps: 1e-5,
            };
            p.validate().unwrap();
            let mut rng = Rng::new(2 * i as u64 + affine as u64 + 1);
            let mut x = rng.vec(n * c * spatial);
            x[0] = f32::NAN;
            x[n * c * spatial / 2] = f32::INFINITY;
            let weight = affine.then(|| rng.vec(c));
            let bias = affine.then(|| rng.vec(c));
            let mean = rng.vec(c);
            // var in [0.1, 2.1)
            let var: Vec<f32> = rng.vec(c).iter().map(|v| v + 1.1).collect();
            let mut expected = vec![0.0; x.len()];
            let (weight, bias) = (weight.as_deref(), bias.as_deref());
            reference::batch_norm(&p, &x, weight, bias, &mean, &var, &mut expected);
            let (scale, shift) = super::scale_shift(weight, bias, &mean, &var, p.eps);
            cases.push(Case {
                name: format!("batch_norm n{n} c{c} spatial {spatial} affine {affine}"),
                op: scale_shift(&p, &scale, &shift).unwrap(),
                inputs: vec![x],
                expected,
                rtol: RTOL,
            });
        }
    }
    check("batch_norm", &cases);
}
