//! Element-wise binary ops with broadcasting and a fused activation, on the CPU: the output
//! walked row by row (its innermost dim), each operand either a contiguous run or one
//! repeated value along the row.

use super::{BinaryOp, BinaryParams};
use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

/// y = act(a op b), `a` and `b` laid out as `p`'s strides say: one f32 operation, as the
/// reference, so bit-identical to it for the activations that are (`Activation::is_exact`).
/// Rows split over `threads` (squeeze-excite's x · gate was the serial part of a 2-thread
/// MobileNetV3 or EfficientNet run).
#[allow(clippy::too_many_arguments)]
pub fn binary(
    isa: Isa,
    p: &BinaryParams,
    op: BinaryOp,
    a: &[f32],
    b: &[f32],
    act: Activation,
    y: &mut [f32],
    threads: usize,
) {
    p.check(a, b, y);
    let inner = *p.dims.last().expect("at least one dim");
    if inner == 0 {
        return;
    }
    let last = p.dims.len() - 1;
    let (sa, sb) = (p.a_strides[last], p.b_strides[last]);
    crate::parallel::for_each_part(threads, y, inner, |start, part| {
        rows(isa, p, op, (a, sa), (b, sb), act, start / inner, part)
    });
}

/// Output rows first.. of `binary`, into part.
#[allow(clippy::too_many_arguments)]
fn rows(
    isa: Isa,
    p: &BinaryParams,
    op: BinaryOp,
    (a, sa): (&[f32], usize),
    (b, sb): (&[f32], usize),
    act: Activation,
    first: usize,
    part: &mut [f32],
) {
    let inner = *p.dims.last().expect("at least one dim");
    for (i, out) in part.chunks_exact_mut(inner).enumerate() {
        let (ia, ib) = p.row_offsets(first + i);
        let a_row = &a[ia..ia + (inner - 1) * sa + 1];
        let b_row = &b[ib..ib + (inner - 1) * sb + 1];
        // SAFETY: dispatch! checks the ISA; each row is as long as its stride says.
        unsafe { dispatch!(isa, row_body(op, a_row, sa, b_row, sb, act, out)) }
    }
}

/// out[j] = act(a[j·sa] op b[j·sb]) with sa, sb ∈ {0, 1}; needs S's features, and a and b
/// hold `(out.len() − 1)·stride + 1` elements.
#[inline(always)]
unsafe fn row_body<S: Simd>(
    op: BinaryOp,
    a: &[f32],
    sa: usize,
    b: &[f32],
    sb: usize,
    act: Activation,
    out: &mut [f32],
) {
    let (len, l) = (out.len(), S::LANES);
    let load = |x: &[f32], s: usize, i: usize| match s {
        0 => S::splat(x[0]),
        _ => S::load(x.as_ptr().add(i)),
    };
    let mut i = 0;
    while i + l <= len {
        let (va, vb) = (load(a, sa, i), load(b, sb, i));
        let v = match op {
            BinaryOp::Add => S::add(va, vb),
            BinaryOp::Sub => S::add(va, S::neg(vb)),
            BinaryOp::Mul => S::mul(va, vb),
            BinaryOp::Div => S::div(va, vb),
        };
        S::store(out.as_mut_ptr().add(i), S::act(v, act));
        i += l;
    }
    for j in i..len {
        out[j] = act.apply(op.apply(a[j * sa], b[j * sb]));
    }
}
