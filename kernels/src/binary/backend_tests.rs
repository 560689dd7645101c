//! Binary ops with broadcasting on every backend (`testing::everywhere`): the SIMD kernel
//! on every instruction set and `binary_f32` on CUDA (both operands as inputs, or one as
//! the op's constant), against the reference.

use super::{cpu, cuda, reference, BinaryOp, BinaryParams, Operands};
use crate::activation::backend_tests::{allow, values, ALL_ACTS};
use crate::testing::everywhere::{check, Case};

/// Pairs of shapes that broadcast: equal, squeeze-excite's (N, C, 1, 1), a per-channel
/// weight of lower rank, a one-element scalar on either side, a middle broadcast, SIMD
/// tails of 1, 7, 9, 17 and 33 along the rows, six alternating dims (the CUDA kernel's
/// most), and an empty one.
const SHAPES: [(&[usize], &[usize]); 14] = [
    (&[2, 3, 5, 7], &[2, 3, 5, 7]),
    (&[2, 16, 5, 9], &[2, 16, 1, 1]),
    (&[1, 8, 1, 1], &[1, 8, 17, 3]),
    (&[3, 6, 4, 4], &[6, 1, 1]),
    (&[5, 33], &[1]),
    (&[1], &[4, 9]),
    (&[2, 4, 1, 7], &[2, 1, 3, 7]),
    (&[3, 1, 5], &[3, 4, 1]),
    (&[7, 16], &[16]),
    (&[1, 1], &[1, 1]),
    (&[2, 3, 4, 2, 3, 1], &[2, 1, 4, 1, 3, 5]),
    (&[0, 3], &[3]),
    // Past `parallel::MIN_PARALLEL_FLOATS`: rows split over threads (squeeze-excite's
    // x · gate; many short rows).
    (&[2, 40, 30, 30], &[2, 40, 1, 1]),
    (&[5001, 7], &[7]),
];

const OPS: [BinaryOp; 4] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];

#[test]
fn binary_matches_reference() {
    let mut cases = Vec::new();
    for (s, (sa, sb)) in SHAPES.iter().enumerate() {
        for (o, op) in OPS.into_iter().enumerate() {
            let act = ALL_ACTS[(s * OPS.len() + o) % ALL_ACTS.len()];
            let (out, p) = BinaryParams::broadcast(sa, sb).unwrap();
            let seed = 2 * cases.len() as u64 + 1;
            // NaN, ±inf and ±0 among the values (0/0 and inf-inf make NaN).
            let a = values(p.span(&p.a_strides), seed);
            let b = values(p.span(&p.b_strides), seed + 1);
            let mut expected = vec![0.0; p.len()];
            reference::binary(&p, op, &a, &b, act, &mut expected);
            // Operands as inputs, then each side as the op's constant in turn.
            let forms = [
                ("inputs", Operands::Inputs, vec![a.clone(), b.clone()]),
                ("constant b", Operands::ConstB(&b[..]), vec![a.clone()]),
                ("constant a", Operands::ConstA(&a[..]), vec![b.clone()]),
            ];
            for (form, operands, inputs) in forms {
                let name = format!(
                    "{} {sa:?} {sb:?} -> {out:?} {} {form}",
                    op.name(),
                    act.describe()
                );
                let cuda = cuda::binary(&p, op, operands, act).unwrap();
                let (pc, a, b) = (p.clone(), a.clone(), b.clone());
                let case = Case::new(name, inputs, expected.clone(), allow(act))
                    .cuda(cuda)
                    .cpu(move |isa, threads, _, y| {
                        cpu::binary(isa, &pc, op, &a, &b, act, y, threads)
                    });
                cases.push(case);
            }
        }
    }
    check("binary", &cases);
}

#[test]
fn too_many_dims_for_cuda_is_an_error() {
    let a = [2, 1, 2, 1, 2, 1, 2, 1];
    let b = [1, 2, 1, 2, 1, 2, 1, 2];
    let (_, p) = BinaryParams::broadcast(&a, &b).unwrap();
    let err = cuda::binary(&p, BinaryOp::Mul, Operands::Inputs, Default::default());
    assert!(err.unwrap_err().to_string().contains("over 6"));
}
