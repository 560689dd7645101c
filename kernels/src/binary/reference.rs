//! Slow on purpose: the test oracle.

use super::{BinaryOp, BinaryParams};
use crate::Activation;

/// y = act(a op b), every output element's operand offsets computed from its own index.
/// `a` and `b` span `p.span(strides)` elements each; NaN and ±inf as the f32 operation and
/// the activation give them.
pub fn binary(
    p: &BinaryParams,
    op: BinaryOp,
    a: &[f32],
    b: &[f32],
    act: Activation,
    y: &mut [f32],
) {
    p.check(a, b, y);
    for (i, yv) in y.iter_mut().enumerate() {
        let (mut rest, mut ia, mut ib) = (i, 0, 0);
        for d in (0..p.dims.len()).rev() {
            let k = rest % p.dims[d];
            rest /= p.dims[d];
            ia += k * p.a_strides[d];
            ib += k * p.b_strides[d];
        }
        *yv = crate::activation::reference::apply(act, op.apply(a[ia], b[ib]));
    }
}
