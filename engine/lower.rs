//! Lowering: one node plus its input shapes become the kernel call that computes it and
//! the shape it produces. This is the one place where graph attributes meet the kernels'
//! parameter structs, whose `validate` and `output_shape` hold each op's shape arithmetic.

use crate::error::GraphError;
use crate::graph::{Activation, BinaryOp, Int8Weight, Node, Op, Operand, PoolAttrs};
use kestrel_kernels::adaptive_avg_pool2d::AdaptiveAvgPool2dParams;
use kestrel_kernels::batch_norm::BatchNormParams;
use kestrel_kernels::binary::{BinaryParams, Operands};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::conv_transpose2d::ConvTranspose2dParams;
use kestrel_kernels::copy::CopyParams;
use kestrel_kernels::layer_norm::LayerNormParams;
use kestrel_kernels::linear::LinearParams;
use kestrel_kernels::mean::MeanParams;
use kestrel_kernels::pool2d::Pool2dParams;
use kestrel_kernels::quantize::conv::QConv2d;
use kestrel_kernels::quantize::qadd::QAdd;
use kestrel_kernels::quantize::qlut::QLut;
use kestrel_kernels::quantize::qmaxpool::QMaxPool;
use kestrel_kernels::quantize::QuantParams;
use kestrel_kernels::se_gate::SeGateParams;
use kestrel_kernels::softmax::SoftmaxParams;
use kestrel_kernels::upsample::UpsampleParams;
use std::sync::Arc;

mod ctx;
mod info;
mod int8;
mod v3;

use self::ctx::Ctx;

type Data = kestrel_loader::F32Data;

/// A kernel call with every shape resolved; the executor only moves data.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    /// y = act(conv(x · in_scale) + bias + residual): the residual, when present, is
    /// input 1; the scale (n, c_in), when present, the input after it.
    Conv2d {
        p: Conv2dParams,
        weight: Data,
        bias: Option<Data>,
        residual: bool,
        act: Activation,
        in_scale: bool,
    },
    BatchNorm {
        p: BatchNormParams,
        weight: Option<Data>,
        bias: Option<Data>,
        mean: Data,
        var: Data,
    },
    /// An element-wise activation (never `Activation::None`).
    Act(Activation),
    MaxPool2d(Pool2dParams),
    AvgPool2d(Pool2dParams),
    AdaptiveAvgPool2d(AdaptiveAvgPool2dParams),
    Mean(MeanParams),
    Linear {
        p: LinearParams,
        weight: Data,
        bias: Option<Data>,
        act: Activation,
    },
    Add {
        act: Activation,
    },
    /// `a op b` broadcast as `p` says, a and b as `operands` says.
    Binary {
        p: BinaryParams,
        op: BinaryOp,
        operands: Operands<Data>,
        act: Activation,
    },
    /// Input i is viewed as (outer, inner[i]); the output as (outer, sum of inner).
    Concat {
        outer: usize,
        inner: Vec<usize>,
    },
    Softmax(SoftmaxParams),
    /// The output is the input's storage under a new shape (flatten, reshape, identity).
    Alias,
    /// y = act(layer_norm(x) * weight + bias).
    LayerNorm {
        p: LayerNormParams,
        weight: Option<Data>,
        bias: Option<Data>,
        act: Activation,
    },
    /// A strided gather: permute, slice.
    Copy(CopyParams),
    /// The output is a contiguous run of the input's storage, `offset` floats in (a slice
    /// the planner made copy-free).
    View {
        offset: usize,
    },
    Upsample(UpsampleParams),
    /// Squeeze-and-excitation's gate: (n, c, h, w) to (n, c, 1, 1).
    SeGate {
        p: SeGateParams,
        w: [Data; 2],
        b: [Option<Data>; 2],
    },
    /// y = act(conv_transpose(x) + bias).
    ConvTranspose2d {
        p: ConvTranspose2dParams,
        weight: Data,
        bias: Option<Data>,
        act: Activation,
    },
    /// A quantize–dequantize pair, element by element.
    FakeQuant(QuantParams),
    /// An int8 conv (`Op::QConv2d`): `q` its shape and quantizations, `weight` the int8
    /// values (zero points all 0), y written dequantized.
    QConv2d {
        q: QConv2d,
        weight: Arc<Int8Weight>,
        bias: Option<Data>,
        /// x, y stored as bytes (`Op::QConv2d`); a byte value's slot holds its bytes in
        /// the first quarter.
        bytes_in: bool,
        bytes_out: bool,
        /// A fused add of a residual, the step's second input, as bytes (`Op::QConv2d`):
        /// y is the add's output.
        add: Option<QAdd>,
    },
    /// An int8 linear (`Op::QLinear`): `q` the 1×1 conv on a 1×1 image it is
    /// (`QLinearCpu::conv_params`, n the linear's rows) and its quantizations, `weight` the
    /// int8 values (zero points all 0), x and y f32 or bytes as the flags say.
    QLinear {
        q: QConv2d,
        weight: Arc<Int8Weight>,
        bias: Option<Data>,
        bytes_in: bool,
        bytes_out: bool,
    },
    /// An int8 add (`Op::QAdd`), inputs and output f32 or bytes as the flags say.
    QAdd {
        q: QAdd,
        bytes_in: [bool; 2],
        bytes_out: bool,
    },
    /// An int8 max pool (`Op::QMaxPool`).
    QMaxPool {
        pool: Box<QMaxPool>,
        bytes_in: bool,
        bytes_out: bool,
    },
    /// An int8 activation (`Op::QLut`): `lut` its table of `act`.
    QLut {
        lut: Box<QLut>,
        act: Activation,
        bytes_in: bool,
        bytes_out: bool,
    },
}

/// The output shape and kernel of `a op b` for the value `a` and `b` (another value's or
/// the constant's shape, as `operands` says: `b op a` for `ConstA`), refusing shapes that
/// do not broadcast and a constant that would set the batch dimension.
fn binary(
    ctx: &Ctx,
    op: BinaryOp,
    a: &[usize],
    b: &[usize],
    operands: Operands<Data>,
    act: Activation,
) -> Result<(Vec<usize>, Kernel), GraphError> {
    if matches!(operands, Operands::Inputs) && a.len() != b.len() {
        let detail = format!(
            "{} of {a:?} and {b:?}: two values must have one rank",
            op.name()
        );
        return Err(ctx.shape(detail));
    }
    let (l, r) = match operands {
        Operands::ConstA(_) => (b, a),
        _ => (a, b),
    };
    let (out, p) = BinaryParams::broadcast(l, r).map_err(|e| ctx.shape(e))?;
    // The batch comes from the value: a weight broadcast into it would have to be 1 there.
    if out.len() != a.len() || out[0] != a[0] {
        let detail = format!(
            "{} of {a:?} and {b:?} gives {out:?}: the first dimension (the batch) must stay the input's",
            op.name()
        );
        return Err(ctx.shape(detail));
    }
    let kernel = Kernel::Binary {
        p,
        op,
        operands,
        act,
    };
    Ok((out, kernel))
}

pub(crate) struct Lowered {
    pub shape: Vec<usize>,
    pub kernel: Kernel,
}

/// Lowers `node` given its inputs' shapes (batch first), checking attributes and weights.
pub(crate) fn lower(node: &Node, inputs: &[&[usize]]) -> Result<Lowered, GraphError> {
    let ctx = Ctx { node };
    let x = inputs[0];
    let (shape, kernel) = match &node.op {
        Op::Conv2d {
            weight,
            bias,
            stride,
            pad,
            dilation,
            groups,
            act,
            in_scale,
        } => {
            let [n, c_in, h, w] = ctx.rank4(x)?;
            let ws = &weight.shape;
            if ws.len() != 4 {
                return Err(ctx.weight_shape("weight", weight, "(c_out, c_in/groups, kh, kw)"));
            }
            let p = Conv2dParams {
                n,
                c_in,
                h,
                w,
                c_out: ws[0],
                kh: ws[2],
                kw: ws[3],
                stride: *stride,
                pad: *pad,
                dilation: *dilation,
                groups: *groups,
            };
            // c_out and the kernel size come from the weight: name it, since a wrong
            // weight shows up as a kernel that does not fit or groups that do not divide.
            p.validate().map_err(|e| {
                ctx.shape(format!(
                    "{} (kernel and c_out from weight \"{}\" of shape {:?})",
                    e.0, weight.name, weight.shape
                ))
            })?;
            ctx.check_weight("weight", weight, &p.weight_shape())?;
            ctx.check_bias(bias.as_ref(), p.c_out)?;
            let shape = p.output_shape().to_vec();
            if *in_scale {
                let scale = inputs[inputs.len() - 1];
                if !p.in_scale_applies() || scale != [n, c_in, 1, 1] {
                    let detail = format!(
                        "input scale of shape {scale:?} for a {}x{} conv with stride {:?}, pad {:?} and {} groups on {x:?}: the kernels take a (n, c_in, 1, 1) scale on 1x1 stride-1 unpadded one-group convs",
                        p.kh, p.kw, p.stride, p.pad, p.groups
                    );
                    return Err(ctx.shape(detail));
                }
            }
            let residual = inputs.len() == 2 + *in_scale as usize;
            if residual && inputs[1] != shape {
                let detail = format!(
                    "residual of shape {:?} for an output of shape {shape:?}",
                    inputs[1]
                );
                return Err(ctx.shape(detail));
            }
            let kernel = Kernel::Conv2d {
                p,
                weight: weight.data.clone(),
                bias: bias.as_ref().map(|b| b.data.clone()),
                residual,
                act: *act,
                in_scale: *in_scale,
            };
            (shape, kernel)
        }
        Op::BatchNorm {
            weight,
            bias,
            mean,
            var,
            eps,
        } => {
            if x.len() < 2 {
                return Err(ctx.shape(format!("expected (n, c, ...), got {x:?}")));
            }
            let p = BatchNormParams {
                n: x[0],
                c: x[1],
                spatial: x[2..].iter().product(),
                eps: *eps,
            };
            p.validate().map_err(|e| ctx.invalid(e))?;
            for (role, w) in [("weight", weight.as_ref()), ("bias", bias.as_ref())] {
                if let Some(w) = w {
                    ctx.check_weight(role, w, &[p.c])?;
                }
            }
            ctx.check_weight("running_mean", mean, &[p.c])?;
            ctx.check_weight("running_var", var, &[p.c])?;
            let kernel = Kernel::BatchNorm {
                p,
                weight: weight.as_ref().map(|w| w.data.clone()),
                bias: bias.as_ref().map(|w| w.data.clone()),
                mean: mean.data.clone(),
                var: var.data.clone(),
            };
            (x.to_vec(), kernel)
        }
        Op::Act(a) => (x.to_vec(), Kernel::Act(*a)),
        Op::MaxPool2d(a) | Op::AvgPool2d(a) => {
            let is_max = matches!(node.op, Op::MaxPool2d(_));
            let p = pool_params(ctx.rank4(x)?, a);
            p.validate().map_err(|e| ctx.invalid(e))?;
            let kernel = if is_max {
                Kernel::MaxPool2d(p)
            } else {
                Kernel::AvgPool2d(p)
            };
            (p.output_shape().to_vec(), kernel)
        }
        Op::AdaptiveAvgPool2d { output_size } => {
            let [n, c, h, w] = ctx.rank4(x)?;
            let p = AdaptiveAvgPool2dParams {
                n,
                c,
                h,
                w,
                out: *output_size,
            };
            p.validate().map_err(|e| ctx.invalid(e))?;
            (p.output_shape().to_vec(), Kernel::AdaptiveAvgPool2d(p))
        }
        Op::Mean { keepdim } => {
            let [n, c, h, w] = ctx.rank4(x)?;
            let p = MeanParams { n, c, h, w };
            p.validate().map_err(|e| ctx.invalid(e))?;
            let shape = if *keepdim {
                vec![n, c, 1, 1]
            } else {
                vec![n, c]
            };
            (shape, Kernel::Mean(p))
        }
        Op::Linear { weight, bias, act } => {
            if x.len() < 2 {
                return Err(ctx.shape(format!("expected (n, in_features), got {x:?}")));
            }
            let in_features = x[x.len() - 1];
            if weight.shape.len() != 2 {
                return Err(ctx.weight_shape("weight", weight, "(out_features, in_features)"));
            }
            let p = LinearParams {
                rows: x[..x.len() - 1].iter().product(),
                in_features,
                out_features: weight.shape[0],
            };
            p.validate().map_err(|e| ctx.invalid(e))?;
            ctx.check_weight("weight", weight, &[p.out_features, in_features])?;
            ctx.check_bias(bias.as_ref(), p.out_features)?;
            let mut shape = x.to_vec();
            *shape.last_mut().expect("rank checked above") = p.out_features;
            let kernel = Kernel::Linear {
                p,
                weight: weight.data.clone(),
                bias: bias.as_ref().map(|b| b.data.clone()),
                act: *act,
            };
            (shape, kernel)
        }
        Op::Flatten { start_dim, end_dim } => {
            let s = ctx.axis("start_dim", *start_dim, x.len())?;
            let e = ctx.axis("end_dim", *end_dim, x.len())?;
            if s == 0 || e < s {
                let detail = format!(
                    "flatten({start_dim}, {end_dim}) of {x:?}: needs 1 <= start_dim <= end_dim (the batch dimension is never flattened)"
                );
                return Err(ctx.shape(detail));
            }
            let mut shape = x[..s].to_vec();
            shape.push(x[s..=e].iter().product());
            shape.extend_from_slice(&x[e + 1..]);
            (shape, Kernel::Alias)
        }
        Op::Add { act } if inputs[0] == inputs[1] => (x.to_vec(), Kernel::Add { act: *act }),
        // Broadcast: the model rewrites it as a binary op at load (`split_broadcast_adds`).
        Op::Add { act } => {
            let (a, b) = (inputs[0], inputs[1]);
            binary(&ctx, BinaryOp::Add, a, b, Operands::Inputs, *act)?
        }
        Op::Binary {
            op,
            operand,
            reverse,
            act,
        } => {
            // A constant comes first when reversed (`1 - x`).
            let constant = |c: Data| match reverse {
                true => Operands::ConstA(c),
                false => Operands::ConstB(c),
            };
            let (b, operands): (&[usize], _) = match operand {
                Operand::Value => (inputs[1], Operands::Inputs),
                Operand::Weight(w) => (&w.shape, constant(w.data.clone())),
                Operand::Scalar(s) => (&[1], constant(Data::from(vec![*s]))),
            };
            binary(&ctx, *op, x, b, operands, *act)?
        }
        Op::Concat { dim } => {
            let d = ctx.axis("dim", *dim, x.len())?;
            if d == 0 {
                return Err(ctx.shape("concat along the batch dimension is not supported".into()));
            }
            let mut shape = x.to_vec();
            shape[d] = 0;
            let mut inner = Vec::with_capacity(inputs.len());
            for s in inputs {
                let same_elsewhere =
                    s.len() == x.len() && (0..x.len()).all(|i| i == d || s[i] == x[i]);
                if !same_elsewhere {
                    let detail = format!(
                        "concat on dim {d}: input shapes {inputs:?} differ outside that dim"
                    );
                    return Err(ctx.shape(detail));
                }
                shape[d] += s[d];
                inner.push(s[d..].iter().product());
            }
            let outer = x[..d].iter().product();
            (shape, Kernel::Concat { outer, inner })
        }
        Op::Softmax { dim } => {
            let d = ctx.axis("dim", *dim, x.len())?;
            let p = SoftmaxParams {
                outer: x[..d].iter().product(),
                axis: x[d],
                inner: x[d + 1..].iter().product(),
            };
            p.validate().map_err(|e| ctx.invalid(e))?;
            (x.to_vec(), Kernel::Softmax(p))
        }
        Op::Identity => (x.to_vec(), Kernel::Alias),
        Op::LayerNorm {
            normalized,
            channels,
            weight,
            bias,
            eps,
            act,
        } => {
            let norm = v3::Norm {
                normalized,
                channels: *channels,
                weight: weight.as_ref(),
                bias: bias.as_ref(),
                eps: *eps,
                act: *act,
            };
            v3::layer_norm(&ctx, x, norm)?
        }
        Op::Permute { dims } => v3::permute(&ctx, x, dims)?,
        Op::Reshape { shape } => v3::reshape(&ctx, x, shape)?,
        Op::Slice {
            dim,
            start,
            end,
            step,
        } => v3::slice(&ctx, x, *dim, *start, *end, *step)?,
        Op::Upsample { size, scales, mode } => v3::upsample(&ctx, x, *size, *scales, *mode)?,
        Op::FakeQuant(p) => (x.to_vec(), Kernel::FakeQuant(*p)),
        Op::QConv2d {
            conv,
            x,
            y,
            clamp,
            bytes_in,
            bytes_out,
            add,
        } => int8::qconv(
            node,
            conv,
            [*x, *y],
            (*clamp, *add),
            [*bytes_in, *bytes_out],
            inputs,
        )?,
        Op::QAdd {
            q,
            bytes_in,
            bytes_out,
        } => int8::qadd(&ctx, q, *bytes_in, *bytes_out, inputs)?,
        Op::QLut {
            act,
            x: xq,
            y,
            bytes_in,
            bytes_out,
        } => int8::qlut(*act, [*xq, *y], [*bytes_in, *bytes_out], x),
        Op::QMaxPool {
            attrs,
            x: xq,
            y,
            bytes_in,
            bytes_out,
        } => {
            let p = pool_params(ctx.rank4(x)?, attrs);
            p.validate().map_err(|e| ctx.invalid(e))?;
            let kernel = Kernel::QMaxPool {
                pool: Box::new(QMaxPool::new(&p, *xq, *y)),
                bytes_in: *bytes_in,
                bytes_out: *bytes_out,
            };
            (p.output_shape().to_vec(), kernel)
        }
        Op::QLinear {
            linear,
            x,
            y,
            clamp,
            bytes_in,
            bytes_out,
        } => int8::qlinear(
            node,
            linear,
            [*x, *y],
            *clamp,
            [*bytes_in, *bytes_out],
            inputs,
        )?,
        Op::ConvTranspose2d {
            weight,
            bias,
            stride,
            pad,
            output_padding,
            dilation,
            groups,
            act,
        } => {
            let attrs = v3::ConvTransposeAttrs {
                weight,
                bias: bias.as_ref(),
                stride: *stride,
                pad: *pad,
                output_padding: *output_padding,
                dilation: *dilation,
                groups: *groups,
                act: *act,
            };
            v3::conv_transpose2d(&ctx, x, attrs)?
        }
        Op::SeGate {
            w1,
            b1,
            act,
            w2,
            b2,
            gate,
        } => v3::se_gate(&ctx, x, [w1, w2], [b1.as_ref(), b2.as_ref()], [*act, *gate])?,
    };
    Ok(Lowered { shape, kernel })
}

fn pool_params([n, c, h, w]: [usize; 4], a: &PoolAttrs) -> Pool2dParams {
    Pool2dParams {
        n,
        c,
        h,
        w,
        kernel: a.kernel,
        stride: a.stride,
        pad: a.pad,
        dilation: a.dilation,
        ceil_mode: a.ceil_mode,
        count_include_pad: a.count_include_pad,
    }
}

#[cfg(test)]
mod tests;
