//! `softmax_block_f32` and `softmax_thread_f32` against the reference loops, through the
//! CUDA test harness (NVRTC compile, CPU emulation, and the GPU when there is one). Both
//! kernels run on every shape, whichever `softmax` would pick for it.

use super::cuda::{launch_softmax_block_f32, launch_softmax_thread_f32, softmax};
use super::{reference, SoftmaxParams};
use crate::cuda::testing::{check, Case};
use crate::cuda::{CudaOp, Launch};
use crate::testing::Rng;

// expf is within 2 ulp, and the line sum is f32 in another order than the reference's
// f64 one: rel 1e-5 of the largest output (at most 1).
const RTOL: f64 = 1e-5;

/// Builds one kernel's launch for a shape.
type LaunchFn = fn(&SoftmaxParams) -> Launch;

/// `x` through both kernels and through `softmax`'s own choice, against the reference.
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
        .map(|(kernel, launch)| Case {
            name: format!("softmax {kernel} kernel {p:?} {what}"),
            op: CudaOp {
                consts: Vec::new(),
                launches: vec![launch(&p)],
            },
            inputs: vec![x.to_vec()],
            expected: expected.clone(),
            rtol: RTOL,
        })
        .collect();
    cases.push(Case {
        name: format!("softmax {p:?} {what}"),
        op: softmax(&p).unwrap(),
        inputs: vec![x.to_vec()],
        expected,
        rtol: RTOL,
    });
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
    // interleaved (inner 7 to 105), short (2) and long (40).
    let shapes: [&[usize]; 3] = [&[2, 3, 5, 7], &[40, 6], &[3, 40]];
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
    check("softmax", &all);
}
