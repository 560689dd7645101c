//! Lowering of the version-3 ops: layer norm, permute, reshape, slice, upsampling and
//! transposed convs (permutes and slices become one strided copy; a reshape moves no
//! data), and of the squeeze-excite gate the passes make.

use super::{Ctx, Kernel};
use crate::error::GraphError;
use crate::graph::{Activation, Resize, WeightRef};
use kestrel_kernels::conv_transpose2d::ConvTranspose2dParams;
use kestrel_kernels::copy::CopyParams;
use kestrel_kernels::layer_norm::LayerNormParams;
use kestrel_kernels::se_gate::SeGateParams;
use kestrel_kernels::upsample::{UpsampleMode, UpsampleParams};

type Lowering = Result<(Vec<usize>, Kernel), GraphError>;

/// A layer norm's attributes, as the graph gives them.
pub(super) struct Norm<'a> {
    pub normalized: &'a [usize],
    pub channels: bool,
    pub weight: Option<&'a WeightRef>,
    pub bias: Option<&'a WeightRef>,
    pub eps: f32,
    pub act: Activation,
}

/// Normalises x over its trailing dims `normalized` (which must be x's own), or over its
/// channels at each position.
pub(super) fn layer_norm(ctx: &Ctx, x: &[usize], a: Norm) -> Lowering {
    let k = a.normalized.len();
    let (outer, inner) = match a.channels {
        true if x.len() >= 2 && a.normalized == [x[1]] => (x[0], x[2..].iter().product()),
        false if k < x.len() && x[x.len() - k..] == *a.normalized => {
            (x[..x.len() - k].iter().product(), 1)
        }
        _ => {
            let dims = if a.channels {
                "channels"
            } else {
                "trailing dims"
            };
            let detail = format!(
                "normalized_shape {:?} is not the {dims} of the input {x:?} (after the batch)",
                a.normalized
            );
            return Err(ctx.shape(detail));
        }
    };
    for (role, w) in [("weight", a.weight), ("bias", a.bias)] {
        if let Some(w) = w {
            ctx.check_weight(role, w, a.normalized)?;
        }
    }
    let p = LayerNormParams {
        outer,
        norm: a.normalized.iter().product(),
        inner,
        eps: a.eps,
    };
    p.validate().map_err(|e| ctx.invalid(e))?;
    let data = |w: Option<&WeightRef>| w.map(|w| w.data.clone());
    let kernel = Kernel::LayerNorm {
        p,
        weight: data(a.weight),
        bias: data(a.bias),
        act: a.act,
    };
    Ok((x.to_vec(), kernel))
}

/// A strided copy, or an alias when the copy would be the identity (a permute of 1-sized dims).
fn copy(shape: Vec<usize>, p: CopyParams) -> (Vec<usize>, Kernel) {
    match p.is_identity() {
        true => (shape, Kernel::Alias),
        false => (shape, Kernel::Copy(p)),
    }
}

pub(super) fn permute(ctx: &Ctx, x: &[usize], dims: &[usize]) -> Lowering {
    if dims.len() != x.len() {
        let detail = format!("dims {dims:?} for a rank-{} input {x:?}", x.len());
        return Err(ctx.shape(detail));
    }
    let (shape, p) = CopyParams::permute(x, dims).map_err(|e| ctx.invalid(e))?;
    Ok(copy(shape, p))
}

/// The batch stays dim 0; `shape` gives the rest, one -1 inferred.
pub(super) fn reshape(ctx: &Ctx, x: &[usize], shape: &[i64]) -> Lowering {
    let total: usize = x[1..].iter().product();
    let known: usize = shape
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let fail = || {
        let detail =
            format!("cannot view {x:?} as (batch, {shape:?}): {total} elements per batch item");
        ctx.shape(detail)
    };
    let inferred = match shape.contains(&-1) {
        true if known == 0 || !total.is_multiple_of(known) => return Err(fail()),
        true => total / known,
        false if known != total => return Err(fail()),
        false => 0,
    };
    let mut out = vec![x[0]];
    out.extend(
        shape
            .iter()
            .map(|&d| if d < 0 { inferred } else { d as usize }),
    );
    Ok((out, Kernel::Alias))
}

/// `x[.., start:end:step, ..]` along `dim`, `end` clamped to the dim's size.
pub(super) fn slice(
    ctx: &Ctx,
    x: &[usize],
    dim: i64,
    start: usize,
    end: usize,
    step: usize,
) -> Lowering {
    let d = ctx.axis("dim", dim, x.len())?;
    if d == 0 {
        return Err(ctx.shape("slicing the batch dimension is not supported".into()));
    }
    let end = end.min(x[d]);
    if start >= end {
        let detail = format!("slice {start}:{end} of dim {d} of {x:?} is empty");
        return Err(ctx.shape(detail));
    }
    let len = (end - start).div_ceil(step);
    let (shape, p) = CopyParams::slice(x, d, start, len, step).map_err(|e| ctx.invalid(e))?;
    Ok(copy(shape, p))
}

pub(super) fn upsample(
    ctx: &Ctx,
    x: &[usize],
    size: [usize; 2],
    scales: Option<[f64; 2]>,
    mode: Resize,
) -> Lowering {
    let [n, c, ih, iw] = ctx.rank4(x)?;
    let mode = match mode {
        Resize::Nearest => UpsampleMode::Nearest,
        Resize::Bilinear { align_corners } => UpsampleMode::Bilinear { align_corners },
    };
    let p = UpsampleParams {
        n,
        c,
        ih,
        iw,
        oh: size[0],
        ow: size[1],
        mode,
        scales,
    };
    p.validate().map_err(|e| ctx.invalid(e))?;
    Ok((vec![n, c, size[0], size[1]], Kernel::Upsample(p)))
}

/// The attributes of a transposed conv, as the graph gives them.
pub(super) struct ConvTransposeAttrs<'a> {
    pub weight: &'a WeightRef,
    pub bias: Option<&'a WeightRef>,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub act: Activation,
}

pub(super) fn conv_transpose2d(ctx: &Ctx, x: &[usize], a: ConvTransposeAttrs) -> Lowering {
    let [n, c_in, h, w] = ctx.rank4(x)?;
    let ws = &a.weight.shape;
    if ws.len() != 4 {
        return Err(ctx.weight_shape("weight", a.weight, "(c_in, c_out/groups, kh, kw)"));
    }
    let p = ConvTranspose2dParams {
        n,
        c_in,
        h,
        w,
        c_out: ws[1] * a.groups,
        kh: ws[2],
        kw: ws[3],
        stride: a.stride,
        pad: a.pad,
        output_padding: a.output_padding,
        dilation: a.dilation,
        groups: a.groups,
    };
    p.validate().map_err(|e| {
        ctx.shape(format!(
            "{} (kernel and c_out from weight \"{}\" of shape {:?})",
            e.0, a.weight.name, a.weight.shape
        ))
    })?;
    ctx.check_weight("weight", a.weight, &[c_in, ws[1], p.kh, p.kw])?;
    ctx.check_bias(a.bias, p.c_out)?;
    let [oh, ow] = p.output_hw();
    let kernel = Kernel::ConvTranspose2d {
        p,
        weight: a.weight.data.clone(),
        bias: a.bias.map(|b| b.data.clone()),
        act: a.act,
    };
    Ok((vec![n, p.c_out, oh, ow], kernel))
}

/// The gate of x (n, c, h, w): w1 (hidden, c, 1, 1), w2 (c, hidden, 1, 1).
pub(super) fn se_gate(
    ctx: &Ctx,
    x: &[usize],
    [w1, w2]: [&WeightRef; 2],
    [b1, b2]: [Option<&WeightRef>; 2],
    [act, gate]: [Activation; 2],
) -> Lowering {
    let [n, c, h, w] = ctx.rank4(x)?;
    let hidden = w1.shape[0];
    ctx.check_weight("w1", w1, &[hidden, c, 1, 1])?;
    ctx.check_weight("w2", w2, &[c, hidden, 1, 1])?;
    ctx.check_bias(b1, hidden)?;
    ctx.check_bias(b2, c)?;
    let p = SeGateParams {
        n,
        c,
        hw: h * w,
        hidden,
        act,
        gate,
    };
    p.validate().map_err(|e| ctx.invalid(e))?;
    let data = |b: Option<&WeightRef>| b.map(|b| b.data.clone());
    let kernel = Kernel::SeGate {
        p,
        w: [w1.data.clone(), w2.data.clone()],
        b: [data(b1), data(b2)],
    };
    Ok((vec![n, c, 1, 1], kernel))
}
