//! Linear on every backend (`testing::everywhere`): the SIMD kernel on every instruction
//! set and 1 and 2 threads, and on CUDA `linear_gemv_f32` (one row) and the 1×1-conv GEMM
//! (more rows), against the reference loops.
//!
//! fp32: one f32 sum of in_features products per output, in another order than the f64
//! reference: rel 1e-5 of the sum of the products' magnitudes (the reference on |x|, |w|,
//! |b|); the rounding grows like sqrt(in_features) with random signs, ~1e-6 at 4096.

use super::{cpu::LinearCpu, cuda, reference, LinearParams};
use crate::activation::backend_tests::{ACTS, ALL_ACTS};
use crate::testing::everywhere::{abs, check, Allow, Case};
use crate::testing::Rng;
use crate::{Activation, Precision};

/// The fp32 rule of the module doc: rel `RTOL` of the products' magnitudes.
const RTOL: f64 = 1e-5;

/// Random x, weight and bias (x with `poison` written over it: (index, value)) and the
/// reference's answer, act(x wᵀ + bias), in fp32.
fn case(
    rows: usize,
    in_features: usize,
    out_features: usize,
    bias: bool,
    act: Activation,
    poison: &[(usize, f32)],
) -> Case {
    let shape = [rows, in_features, out_features];
    case_in(shape, bias, act, poison, Precision::Fp32, RTOL)
}

/// [`case`] in `precision`: in fp32 on the CPU too, within the module doc's rule; in tf32
/// and fp16 (CUDA only) within `rtol` of max |y|.
fn case_in(
    [rows, in_features, out_features]: [usize; 3],
    bias: bool,
    act: Activation,
    poison: &[(usize, f32)],
    precision: Precision,
    rtol: f64,
) -> Case {
    let p = LinearParams {
        rows,
        in_features,
        out_features,
    };
    p.validate().unwrap();
    let mut rng = Rng::new((rows * 7919 + in_features * 31 + out_features) as u64);
    let mut x = rng.vec(rows * in_features);
    for &(i, v) in poison {
        x[i] = v;
    }
    let w = rng.vec(out_features * in_features);
    let b = bias.then(|| rng.vec(out_features));
    let mut expected = vec![0.0; rows * out_features];
    reference::linear(&p, &x, &w, b.as_deref(), &mut expected);
    for v in &mut expected {
        *v = act.apply(*v);
    }
    let op = cuda::linear(&p, &w, b.as_deref(), act, precision).unwrap();
    let name = format!(
        "linear {rows}x{in_features}->{out_features} bias{} {act:?} {} {precision}",
        bias as u8, op.launches[0].entry
    );
    if precision != Precision::Fp32 {
        return Case::new(name, vec![x], expected, Allow::Max(rtol, 1e-6)).cuda(op);
    }
    let mut mags = vec![0.0; expected.len()];
    reference::linear(
        &p,
        &abs(&x),
        &abs(&w),
        b.as_deref().map(abs).as_deref(),
        &mut mags,
    );
    Case::new(name, vec![x], expected, Allow::Given(rtol, mags))
        .cuda(op)
        .cpu(move |isa, threads, x, y| {
            LinearCpu::new(&p, &w, b.as_deref(), isa).run(x[0], act, y, threads)
        })
}

#[test]
fn simd_tails() {
    // out_features around the 8- and 16-lane widths, in_features long and short, rows
    // that split unevenly over 2 threads.
    let mut cases = Vec::new();
    for (rows, in_f) in [(1, 8), (4, 17), (5, 64), (9, 512)] {
        for out_f in [7, 8, 15, 16, 17, 33] {
            // Every activation in turn, fused in the epilogue.
            let act = ALL_ACTS[cases.len() % ALL_ACTS.len()];
            cases.push(case(rows, in_f, out_f, cases.len() % 2 == 0, act, &[]));
        }
    }
    check("linear", &cases);
}

#[test]
fn one_row_gemv() {
    // in_features around the warp (32) and the 4-sum step (128); out_features around the
    // 8 warps of a block.
    let mut cases = Vec::new();
    for in_f in [1, 5, 31, 32, 33, 127, 128, 129, 1000] {
        for out_f in [1, 9, 130] {
            let act = ACTS[cases.len() % 3];
            cases.push(case(1, in_f, out_f, cases.len() % 2 == 0, act, &[]));
        }
    }
    check("linear", &cases);
}

#[test]
fn more_rows_as_a_1x1_conv() {
    let mut cases = Vec::new();
    for rows in [2, 3, 17, 65] {
        for (in_f, out_f) in [(1, 5), (3, 17), (65, 130), (130, 3)] {
            let act = ACTS[cases.len() % 3];
            cases.push(case(rows, in_f, out_f, cases.len() % 2 == 1, act, &[]));
        }
    }
    check("linear", &cases);
}

#[test]
fn more_rows_on_tensor_cores() {
    // The 1×1-conv GEMM in tf32 and fp16 (one row stays the fp32 GEMV): operands kept to
    // 11 significant bits, so 2e-3 of max|y|, as the conv2d kernel tests (their reason).
    let mut cases = Vec::new();
    for precision in [Precision::Tf32, Precision::Fp16] {
        for (rows, in_f, out_f) in [(1, 65, 9), (3, 65, 130), (17, 130, 3), (65, 1000, 17)] {
            let act = ACTS[cases.len() % 3];
            let shape = [rows, in_f, out_f];
            cases.push(case_in(shape, true, act, &[], precision, 2e-3));
        }
    }
    check("linear", &cases);
}

#[test]
fn long_rows_and_every_epilogue() {
    let mut cases = vec![case(1, 4096, 9, true, Activation::None, &[])];
    cases.push(case(3, 4096, 9, true, Activation::None, &[]));
    for rows in [1, 3] {
        for bias in [false, true] {
            for act in ACTS {
                cases.push(case(rows, 100, 20, bias, act, &[]));
            }
        }
    }
    check("linear", &cases);
}

#[test]
fn nan_and_inf_propagate() {
    // Row 0 holds a NaN, -inf and +inf: every output of the row is NaN. Row 1 holds only
    // -inf: its outputs are ±inf by the sign of the weight, and relu takes -inf to 0.
    let mut cases = Vec::new();
    for act in ACTS {
        cases.push(case(1, 40, 9, true, act, &[(3, f32::NAN)]));
        cases.push(case(1, 40, 9, true, act, &[(7, f32::NEG_INFINITY)]));
        let poison = [
            (3, f32::NAN),
            (5, f32::NEG_INFINITY),
            (6, f32::INFINITY),
            (40 + 7, f32::NEG_INFINITY),
        ];
        cases.push(case(2, 40, 9, true, act, &poison));
    }
    check("linear", &cases);
}
