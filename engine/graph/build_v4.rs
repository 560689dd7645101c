//! Reading the version-4 op from the graph JSON: `fake_quant`, a PT2E quantize–dequantize
//! pair on an activation (GRAPH_FORMAT.md).

use super::attrs::Attrs;
use super::build::Bind;
use super::Op;
use crate::error::GraphError;
use crate::weights::Weights;
use kestrel_kernels::quantize::{QuantDtype, QuantParams};
use kestrel_loader::NodeDef;
use serde_json::Value;

/// The version-4 op of `nd`, or None when `nd.op` is not one.
pub(super) fn build_v4_op(nd: &NodeDef, weights: &Weights) -> Result<Option<Op>, GraphError> {
    if nd.op != "fake_quant" {
        return Ok(None);
    }
    let known = ["scale", "zero_point", "quant_min", "quant_max", "dtype"];
    let a = Attrs::new(&nd.name, &nd.attrs, &known)?;
    Bind::new(nd, "fake_quant", weights, &[])?;
    let dtype = match a.required("dtype")? {
        Value::String(s) if s == "int8" => QuantDtype::Int8,
        Value::String(s) if s == "uint8" => QuantDtype::Uint8,
        other => return Err(a.err("dtype", format!("{other}: expected \"int8\" or \"uint8\""))),
    };
    let scale = a.number("scale")?;
    let [zp, lo, hi] = ["zero_point", "quant_min", "quant_max"].map(|k| a.integer(k));
    let p = QuantParams::new(scale, zp?, lo?, hi?, dtype)
        .map_err(|e| a.err("scale, zero_point, quant_min, quant_max", e.0))?;
    Ok(Some(Op::FakeQuant(p)))
}
