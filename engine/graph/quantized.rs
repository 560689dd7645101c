//! int8 weights (GRAPH_FORMAT.md, version 4): an I8 tensor T with T.scale (F32, one per
//! entry of T's first dim) and optionally T.zero_point (I32 or I8, zeros when absent) is
//! the f32 weight (q − zero_point[c]) · scale[c], PyTorch's `dequantize_per_channel` along
//! axis 0, computed when the model is loaded, and the stored values kept beside it for the
//! int8 conv (`passes/int8.rs`).

use super::{Int8Weight, Weight, WeightRef};
use crate::error::GraphError;
use crate::weights::{IntTensor, Weights};
use kestrel_kernels::quantize::QuantDtype;
use std::sync::Arc;

/// The f32 weight that int8 tensor `tensor` (`q`) stands for, read by node `node`; an
/// error naming both when its scales or zero points are missing, of the wrong shape, or
/// out of range.
pub(super) fn dequantize(
    node: &str,
    tensor: &str,
    q: &IntTensor,
    weights: &Weights,
) -> Result<WeightRef, GraphError> {
    let err = |detail: String| GraphError::QuantizedWeight {
        node: node.to_string(),
        tensor: tensor.to_string(),
        detail,
    };
    let channels = *q
        .shape
        .first()
        .ok_or_else(|| err("a scalar: needs a dim to quantize along".into()))?;
    let scale_name = format!("{tensor}.scale");
    let scale = weights
        .get(&scale_name)
        .ok_or_else(|| err(format!("no float tensor \"{scale_name}\" holds its scales")))?;
    if scale.shape != [channels] {
        return Err(err(format!(
            "\"{scale_name}\" has shape {:?}, expected [{channels}] (one scale per output channel)",
            scale.shape
        )));
    }
    if let Some((c, s)) = scale
        .data
        .iter()
        .enumerate()
        .find(|(_, s)| !(s.is_finite() && **s > 0.0))
    {
        return Err(err(format!(
            "scale {s} of channel {c} is not finite and positive"
        )));
    }
    let zp_name = format!("{tensor}.zero_point");
    let zero = vec![0; channels];
    let zp: &[i32] = match weights.int(&zp_name) {
        Some(z) if z.shape == [channels] => &z.values,
        Some(z) => {
            return Err(err(format!(
                "\"{zp_name}\" has shape {:?}, expected [{channels}]",
                z.shape
            )))
        }
        None if weights.non_float_dtype(&zp_name).is_some() || weights.get(&zp_name).is_some() => {
            return Err(err(format!("\"{zp_name}\" must be an I32 or I8 tensor")))
        }
        None => &zero,
    };
    let (lo, hi) = QuantDtype::Int8.range();
    if let Some((c, z)) = zp.iter().enumerate().find(|(_, z)| !(lo..=hi).contains(*z)) {
        return Err(err(format!(
            "zero point {z} of channel {c} is outside {lo}..={hi}"
        )));
    }
    let per = q.values.len() / channels.max(1);
    let data: Vec<f32> = q
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / per.max(1);
            (v - zp[c]) as f32 * scale.data[c]
        })
        .collect();
    Ok(Arc::new(Weight {
        name: tensor.to_string(),
        shape: q.shape.clone(),
        data: data.into(),
        quant: Some(Arc::new(Int8Weight {
            // In −128..=127: the loader reads I8 tensors only here (`FileTensor::ints`).
            values: q.values.iter().map(|&v| v as i8).collect(),
            scale: scale.data.to_vec(),
            zero_point: zp.to_vec(),
        })),
    }))
}
