//! Lowering the int8 ops the session's passes make (`passes/int8.rs`).

use super::{lower, Ctx, Kernel, Lowered};
use crate::error::GraphError;
use crate::graph::{Activation, Node, Op};
use kestrel_kernels::quantize::conv::QConv2d;
use kestrel_kernels::quantize::qadd::QAdd;
use kestrel_kernels::quantize::qlinear::QLinearCpu;
use kestrel_kernels::quantize::qlut::QLut;
use kestrel_kernels::quantize::QuantParams;

/// An int8 conv: the conv lowered as it is (a fused add's residual as the float conv's,
/// which checks its shape), then its shape, bias and relu with the quantizations, the
/// output clamp, the fused add and the int8 weight.
pub(super) fn qconv(
    node: &Node,
    conv: &Op,
    [x, y]: [QuantParams; 2],
    (clamp, add): (Option<[i32; 2]>, Option<QAdd>),
    [bytes_in, bytes_out]: [bool; 2],
    inputs: &[&[usize]],
) -> Result<(Vec<usize>, Kernel), GraphError> {
    let inner = Node {
        op: conv.clone(),
        ..node.clone()
    };
    let Lowered { shape, kernel } = lower(&inner, inputs)?;
    let (Kernel::Conv2d { p, bias, act, .. }, Op::Conv2d { weight, .. }) = (kernel, conv) else {
        unreachable!("passes/int8.rs folds convs only");
    };
    let weight = weight
        .quant
        .clone()
        .expect("passes/int8.rs folds int8 weights only");
    let q = QConv2d {
        p,
        x,
        w_scale: weight.scale.clone(),
        y,
        relu: act == Activation::Relu,
        clamp,
    };
    let kernel = Kernel::QConv2d {
        q,
        weight,
        bias,
        bytes_in,
        bytes_out,
        add,
    };
    Ok((shape, kernel))
}

/// An int8 add: two inputs of one shape.
pub(super) fn qadd(
    ctx: &Ctx,
    q: &QAdd,
    bytes_in: [bool; 2],
    bytes_out: bool,
    inputs: &[&[usize]],
) -> Result<(Vec<usize>, Kernel), GraphError> {
    if inputs.len() != 2 || inputs[0] != inputs[1] {
        let detail = format!("int8 add of shapes {inputs:?}: needs two of one shape");
        return Err(ctx.shape(detail));
    }
    let kernel = Kernel::QAdd {
        q: *q,
        bytes_in,
        bytes_out,
    };
    Ok((inputs[0].to_vec(), kernel))
}

/// An int8 activation: its table, filled with the scalar form of `act` (the float kernels'
/// bits: passes/int8.rs folds exact activations only).
pub(super) fn qlut(
    act: Activation,
    [x, y]: [QuantParams; 2],
    [bytes_in, bytes_out]: [bool; 2],
    shape: &[usize],
) -> (Vec<usize>, Kernel) {
    let kernel = Kernel::QLut {
        lut: Box::new(QLut::new(x, y, |v| act.apply(v))),
        act,
        bytes_in,
        bytes_out,
    };
    (shape.to_vec(), kernel)
}

/// An int8 linear: the linear lowered as it is, then its rows and features as the 1×1
/// conv on a 1×1 image it is, with the quantizations, the output clamp and the int8
/// weight.
pub(super) fn qlinear(
    node: &Node,
    linear: &Op,
    [x, y]: [QuantParams; 2],
    clamp: Option<[i32; 2]>,
    [bytes_in, bytes_out]: [bool; 2],
    inputs: &[&[usize]],
) -> Result<(Vec<usize>, Kernel), GraphError> {
    let inner = Node {
        op: linear.clone(),
        ..node.clone()
    };
    let Lowered { shape, kernel } = lower(&inner, inputs)?;
    let (Kernel::Linear { p, bias, act, .. }, Op::Linear { weight, .. }) = (kernel, linear) else {
        unreachable!("passes/int8.rs folds linears only");
    };
    let weight = weight
        .quant
        .clone()
        .expect("passes/int8.rs folds int8 weights only");
    let q = QConv2d {
        p: QLinearCpu::conv_params(p.rows, p.in_features, p.out_features),
        x,
        w_scale: weight.scale.clone(),
        y,
        relu: act == Activation::Relu,
        clamp,
    };
    let kernel = Kernel::QLinear {
        q,
        weight,
        bias,
        bytes_in,
        bytes_out,
    };
    Ok((shape, kernel))
}
