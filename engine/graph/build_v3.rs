//! Reading the version-3 ops from the graph JSON: layer norm, permute, reshape, slice,
//! nearest and bilinear upsampling and transposed convs (GRAPH_FORMAT.md).

use super::attrs::Attrs;
use super::build::Bind;
use super::{Activation, Op, Resize};
use crate::error::GraphError;
use crate::weights::Weights;
use kestrel_loader::NodeDef;
use serde_json::Value;

/// The version-3 op of `nd`, or None when `nd.op` is not one.
pub(super) fn build_v3_op(nd: &NodeDef, weights: &Weights) -> Result<Option<Op>, GraphError> {
    let name = nd.name.as_str();
    let attrs = |known: &[&str]| Attrs::new(name, &nd.attrs, known);
    let no_weights = |op| Bind::new(nd, op, weights, &[]).map(|_| ());
    let op = match nd.op.as_str() {
        "layer_norm" => {
            let a = attrs(&["normalized_shape", "eps"])?;
            let b = Bind::new(nd, "layer_norm", weights, &["weight", "bias"])?;
            let normalized = a.counts("normalized_shape")?;
            if normalized.is_empty() || normalized.contains(&0) {
                let detail = format!("{normalized:?}: needs one or more dims, none 0");
                return Err(a.err("normalized_shape", detail));
            }
            Op::LayerNorm {
                normalized,
                channels: false,
                weight: b.optional("weight")?,
                bias: b.optional("bias")?,
                eps: a.f32("eps", 1e-5)?,
                act: Activation::None,
            }
        }
        "permute" => {
            let a = attrs(&["dims"])?;
            no_weights("permute")?;
            let dims = a.counts("dims")?;
            let mut sorted = dims.clone();
            sorted.sort_unstable();
            if !sorted.iter().copied().eq(0..dims.len()) || dims.first() != Some(&0) {
                let detail = format!(
                    "{dims:?} is not a permutation of 0..{} that keeps the batch (0) first",
                    dims.len()
                );
                return Err(a.err("dims", detail));
            }
            Op::Permute { dims }
        }
        "reshape" => {
            let a = attrs(&["shape"])?;
            no_weights("reshape")?;
            let shape = a.dims_any("shape")?;
            let inferred = shape.iter().filter(|&&d| d == -1).count();
            if inferred > 1 || shape.iter().any(|&d| d < -1) {
                let detail = format!("{shape:?}: dims >= 0, at most one -1");
                return Err(a.err("shape", detail));
            }
            Op::Reshape { shape }
        }
        "slice" => {
            let a = attrs(&["dim", "start", "end", "step"])?;
            no_weights("slice")?;
            a.required("dim")?;
            a.required("end")?;
            let step = a.usize("step", 1)?;
            if step == 0 {
                return Err(a.err("step", "must be at least 1"));
            }
            Op::Slice {
                dim: a.dim("dim", 0)?,
                start: a.usize("start", 0)?,
                end: a.usize("end", 0)?,
                step,
            }
        }
        "upsample_nearest2d" | "upsample_bilinear2d" => {
            let nearest = nd.op == "upsample_nearest2d";
            let known: &[&str] = match nearest {
                true => &["size", "scales"],
                false => &["size", "scales", "align_corners"],
            };
            let a = attrs(known)?;
            let mode = match nearest {
                true => Resize::Nearest,
                false => Resize::Bilinear {
                    align_corners: a.bool("align_corners", false)?,
                },
            };
            let op = Op::Upsample {
                size: a.required_pair("size")?,
                scales: scales(&a, nd.attrs.get("scales"))?,
                mode,
            };
            no_weights(op.name())?;
            op
        }
        "conv_transpose2d" => {
            let known = ["stride", "padding", "output_padding", "dilation", "groups"];
            let a = attrs(&known)?;
            let b = Bind::new(nd, "conv_transpose2d", weights, &["weight", "bias"])?;
            Op::ConvTranspose2d {
                weight: b.required("weight")?,
                bias: b.optional("bias")?,
                stride: a.pair("stride", [1, 1])?,
                pad: a.pair("padding", [0, 0])?,
                output_padding: a.pair("output_padding", [0, 0])?,
                dilation: a.pair("dilation", [1, 1])?,
                groups: a.usize("groups", 1)?,
                act: Activation::None,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}

/// `scales`: absent, or two finite positive numbers (h, w).
fn scales(a: &Attrs, v: Option<&Value>) -> Result<Option<[f64; 2]>, GraphError> {
    let Some(v) = v else { return Ok(None) };
    let bad = || a.err("scales", format!("expected two positive numbers, got {v}"));
    let items = v.as_array().filter(|s| s.len() == 2).ok_or_else(bad)?;
    let mut out = [0.0; 2];
    for (o, item) in out.iter_mut().zip(items) {
        *o = item
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or_else(bad)?;
    }
    Ok(Some(out))
}
