//! Standalone batch norm (scale and shift folded by `scale_shift`) on every backend
//! (`testing::everywhere`): the SIMD kernel, with each fused activation, on every
//! instruction set, and `batch_norm_f32` on CUDA, against the reference batch norm.
//!
//! The reference computes (x - mean) / std * weight + bias in f64; the kernels one f32 FMA
//! with scale and shift rounded to f32: rel 1e-5 of |x·scale| + |shift|, the fold's terms.

use super::{cpu, cuda, reference, BatchNormParams};
use crate::activation::backend_tests::ACTS;
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

#[test]
fn batch_norm_matches_reference() {
    // (n, c, spatial): BatchNorm1d after a linear layer (spatial 1), small and odd planes,
    // a block tail, SIMD tails; with and without weight and bias.
    let shapes = [
        [2, 17, 7],
        [2, 3, 8],
        [2, 33, 9],
        [2, 1, 16],
        [2, 3, 17],
        [2, 17, 65],
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
            let ch = |i: usize| i / spatial % c;
            let mags: Vec<f32> = (0..x.len())
                .map(|i| (x[i] * scale[ch(i)]).abs() + shift[ch(i)].abs())
                .collect();
            let name = format!("batch_norm n{n} c{c} spatial {spatial} affine {affine}");
            // The CUDA kernel takes no activation; the CPU one fuses each.
            for act in ACTS {
                let expected = expected.iter().map(|&v| act.apply(v)).collect();
                let allow = Allow::Given(1e-5, mags.clone());
                let op = (act == Activation::None)
                    .then(|| cuda::scale_shift(&p, &scale, &shift).unwrap());
                let (scale, shift) = (scale.clone(), shift.clone());
                let mut case =
                    Case::new(format!("{name} {act:?}"), vec![x.clone()], expected, allow).cpu(
                        move |isa, _, x, y| cpu::scale_shift(isa, &p, &scale, &shift, act, x[0], y),
                    );
                if let Some(op) = op {
                    case = case.cuda(op);
                }
                cases.push(case);
            }
        }
    }
    check("batch_norm", &cases);
}
