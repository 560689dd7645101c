//! Softmax on every backend (`testing::everywhere`): the SIMD kernel on every instruction
//! set, and on CUDA `softmax_block_f32` and `softmax_thread_f32` on every shape, whichever
//! `softmax` would pick for it, against the reference loops.

use super::cuda::{launch_softmax_block_f32, launch_softmax_thread_f32};
use super::{cpu, cuda, reference, SoftmaxParams};
use crate::cuda::{CudaOp, Launch};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;

/// expf is within 2 ulp, and the line sum is f32 in another order than the reference's
/// f64 one: rel 1e-5 of the largest output (at most 1).
const ALLOW: Allow = Allow::Max(1e-5, 1e-6);

/// Builds one kernel's launch for a shape.
type LaunchFn = fn(&SoftmaxParams) -> Launch;

/// `x` through `softmax`'s own choice of CUDA kernel and the CPU kernel, and through each
/// CUDA kernel alone, against the reference.
fn cases(p: SoftmaxParams, x: &[f32], what: &str) -> Vec<Case> {
    p.validate().unwrap();
    let mut expected = vec![0.0; x.len()];
    reference::softmax(&p, x, &mut expected);
    let kernels: [(&str, LaunchFn); 2] = [
        ("block", launch_softmax_block_f32),
        ("thread", launch_softmax_thread_f32),
    ];
    let mut cases: Vec<Case> = kernels
        .into_iter()
        .map(|(kernel, launch)| {
            let op = CudaOp {
                consts: Vec::new(),
                launches: vec![launch(&p)],
            };
            let name = format!("softmax {kernel} kernel {p:?} {what}");
            Case::new(name, vec![x.to_vec()], expected.clone(), ALLOW).cuda(op)
        })
        .collect();
    let name = format!("softmax {p:?} {what}");
    let case = Case::new(name, vec![x.to_vec()], expected, ALLOW)
        .cuda(cuda::softmax(&p).unwrap())
        .cpu(move |isa, _, x, y| cpu::softmax(isa, &p, x[0], y));
    cases.push(case);
    cases
}

/// Softmax over dim `d` of `shape`, as (outer, axis, inner).
fn over_dim(shape: &[usize], d: usize) -> SoftmaxParams {
    SoftmaxParams {
        outer: shape[..d].iter().product(),
        axis: shape[d],
        inner: shape[d + 1..].iter().product(),
    }
}

#[test]
fn softmax_over_every_dim_matches_reference() {
    // Every dim of a 4-D and of two 2-D tensors: lines contiguous (last dim) and
    // interleaved (inner 7 to 105), short (2) and long (40); last dims and inner strides
    // around the SIMD widths.
    let shapes: [&[usize]; 12] = [
        &[2, 3, 5, 7],
        &[40, 6],
        &[3, 40],
        &[2, 8],
        &[2, 9],
        &[2, 16],
        &[2, 17],
        &[2, 65],
        &[2, 127],
        &[2, 3, 8],
        &[2, 10, 17],
        &[2, 3, 33],
    ];
    let mut all = Vec::new();
    for shape in shapes {
        for d in 0..shape.len() {
            let p = over_dim(shape, d);
            // Scaled by 4: exp(x - max) then spans e^-8..1.
            let x: Vec<f32> = Rng::new(all.len() as u64 + 1)
                .vec(shape.iter().product())
                .iter()
                .map(|v| v * 4.0)
                .collect();
            all.extend(cases(p, &x, &format!("(dim {d} of {shape:?})")));
        }
    }
    check("softmax", &all);
}

#[test]
fn softmax_long_rows_match_reference() {
    // Rows longer than a block of 256 threads: 1000 (ImageNet logits) and 1025 (one past
    // a multiple of every block size); 2000 values interleaved 40 apart.
    let mut all = Vec::new();
    for (i, p) in [
        SoftmaxParams {
            outer: 3,
            axis: 1000,
            inner: 1,
        },
        SoftmaxParams {
            outer: 2,
            axis: 1025,
            inner: 1,
        },
        SoftmaxParams {
            outer: 1,
            axis: 50,
            inner: 40,
        },
    ]
    .into_iter()
    .enumerate()
    {
        // Large magnitudes: exp(x) alone would overflow f32 for x > 88.
        let x: Vec<f32> = Rng::new(i as u64 + 50)
            .vec(p.outer * p.axis * p.inner)
            .iter()
            .map(|v| v * 100.0)
            .collect();
        all.extend(cases(p, &x, "(x in [-100, 100))"));
    }
    check("softmax", &all);
}

#[test]
fn softmax_propagates_nan_and_infinities() {
    // Rows of 33 (one past a warp): 0 plain, 1 with a NaN, 2 with +inf, 3 all -inf,
    // 4 with some -inf (those give exactly 0), 5 with +inf and NaN.
    let axis = 33;
    let mut x = Rng::new(99).vec(6 * axis);
    x[axis + 5] = f32::NAN;
    x[2 * axis + 32] = f32::INFINITY;
    x[3 * axis..4 * axis].fill(f32::NEG_INFINITY);
    for j in [0, 7, 32] {
        x[4 * axis + j] = f32::NEG_INFINITY;
    }
    x[5 * axis] = f32::INFINITY;
    x[5 * axis + 1] = f32::NAN;
    let mut all = Vec::new();
    // As rows (inner 1), and as columns: the same values transposed to (axis, 6) with
    // softmax over dim 0.
    all.extend(cases(
        SoftmaxParams {
            outer: 6,
            axis,
            inner: 1,
        },
        &x,
        "(rows with NaN and infinities)",
    ));
    let transposed: Vec<f32> = (0..axis * 6).map(|k| x[(k % 6) * axis + k / 6]).collect();
    all.extend(cases(
        SoftmaxParams {
            outer: 1,
            axis,
            inner: 6,
        },
        &transposed,
        "(columns with NaN and infinities)",
    ));
    // All -inf, one +inf, and a spread of 570 that overflows exp without the max.
    let mut x = vec![f32::NEG_INFINITY; 60];
    x[25] = f32::INFINITY;
    (40..60).for_each(|i| x[i] = i as f32 * 30.0 - 1500.0);
    let p = SoftmaxParams {
        outer: 3,
        axis: 20,
        inner: 1,
    };
    all.extend(cases(p, &x, "(-inf rows, +inf, a wide spread)"));
    check("softmax", &all);
}
