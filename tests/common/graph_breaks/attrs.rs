//! Broken attributes: unknown, of the wrong type, of a value PyTorch refuses, missing.

use super::{broken, dims_of, is_op, pick_node, q, Broken};
use crate::random_graph::{read_pair, RandomGraph, Rng};
use kestrel::NodeDef;
use serde_json::{json, Value};

/// Attributes each op knows (GRAPH_FORMAT.md).
fn known_attrs(op: &str) -> &'static [&'static str] {
    match op {
        "conv2d" => &["stride", "padding", "dilation", "groups"],
        "batch_norm" => &["eps"],
        "max_pool2d" => &["kernel_size", "stride", "padding", "dilation", "ceil_mode"],
        "avg_pool2d" => &[
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
        ],
        "adaptive_avg_pool2d" => &["output_size"],
        "mean" => &["dims", "keepdim"],
        "flatten" => &["start_dim", "end_dim"],
        "concat" | "softmax" => &["dim"],
        "dropout" => &["p"],
        _ => &[],
    }
}

pub(super) fn unknown_attr(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = rng.range(0, g.def.nodes.len() - 1);
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    // avg_pool2d has no dilation in PyTorch; the rest is misspellings and other ops' attrs.
    let mut spellings = vec!["paddding", "strides", "inplace", "kernel", "axis", "bias"];
    spellings.extend(["dilation", "dim", "eps", "groups", "p", "output_size"]);
    spellings.retain(|a| !known_attrs(&node.op).contains(a));
    let attr = *rng.pick(&spellings);
    node.attrs.insert(attr.into(), json!(1));
    b.what = format!("{} ({}) has attribute {attr}", node.name, node.op);
    b.culprits = vec![q(&node.name), q(attr)];
    Some(b)
}

/// What an attribute holds: a pair (or one count), a count, a dimension index, the list
/// of `mean`'s dims, a flag or a float.
fn attr_kind(attr: &str) -> &'static str {
    match attr {
        "stride" | "padding" | "dilation" | "kernel_size" | "output_size" => "pair",
        "groups" => "count",
        "dim" | "start_dim" | "end_dim" => "dim",
        "dims" => "dims",
        "ceil_mode" | "count_include_pad" | "keepdim" => "bool",
        "eps" => "float",
        _ => "other",
    }
}

pub(super) fn wrong_attr_type(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, |n| {
        !known_attrs(&n.op).is_empty() && n.op != "dropout"
    })?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let attr = *rng.pick(known_attrs(&node.op));
    let bad: Vec<Value> = match attr_kind(attr) {
        "pair" => vec![
            json!("2"),
            json!(true),
            json!(1.5),
            json!(-1),
            json!([1, 2, 3]),
            json!([1, "a"]),
            json!([-1, 1]),
            json!([1.5, 1]),
            json!({}),
            Value::Null,
        ],
        "count" => vec![
            json!("1"),
            json!(1.5),
            json!(-1),
            json!(true),
            json!([1]),
            Value::Null,
        ],
        "dim" => vec![json!("1"), json!(1.5), json!(true), json!([1]), Value::Null],
        "dims" => vec![
            json!("2,3"),
            json!(2),
            json!([2, "3"]),
            json!([2, 3.0]),
            Value::Null,
        ],
        "bool" => vec![
            json!(1),
            json!(0),
            json!("true"),
            json!([true]),
            Value::Null,
        ],
        _ => vec![json!("1e-5"), json!(true), json!([1e-5]), Value::Null],
    };
    let value = rng.pick(&bad).clone();
    b.what = format!("{} ({}) has {attr}: {value}", node.name, node.op);
    node.attrs.insert(attr.into(), value);
    b.culprits = vec![q(&node.name), q(attr)];
    Some(b)
}

/// Values of the right type that PyTorch refuses: zero or absurd sizes, groups that do not
/// divide the channels, pool padding over half the kernel, dims out of range or on the
/// batch, mean over other dims, negative eps.
pub(super) fn bad_attr_value(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let ops = &[
        "conv2d",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "mean",
        "flatten",
        "concat",
        "softmax",
        "batch_norm",
    ];
    let i = pick_node(g, rng, is_op(ops))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let x = dims_of(g, &node.inputs[0]);
    let rank = x.len() as i64 + 1;
    let absurd = *rng.pick(&[(1u64 << 31) + 1, 1 << 40, u64::MAX]);
    let (attr, value): (&str, Value) = match node.op.as_str() {
        "conv2d" => {
            let c_in = x[0];
            let c_out = g.shapes[&node.name][0];
            let divides = |k: usize| c_in.is_multiple_of(k) && c_out.is_multiple_of(k);
            let not_dividing = (2..=c_in + 1).find(|&k| !divides(k)).expect("c_in + 1");
            let choices = [
                ("stride", json!([0, 1])),
                ("stride", json!(0)),
                ("dilation", json!([1, 0])),
                ("groups", json!(0)),
                ("groups", json!(not_dividing)),
                ("stride", json!([absurd, 1])),
                ("padding", json!(absurd)),
                ("dilation", json!(absurd)),
            ];
            rng.pick(&choices).clone()
        }
        "max_pool2d" | "avg_pool2d" => {
            let k = pool_kernel(node);
            let choices = [
                ("kernel_size", json!([0, k[1]])),
                ("stride", json!([k[0], 0])),
                ("padding", json!([k[0] / 2 + 1, 0])),
                ("padding", json!([0, k[1] / 2 + 1])),
                ("kernel_size", json!(absurd)),
                ("stride", json!(absurd)),
            ];
            let mut pick = rng.pick(&choices).clone();
            if node.op == "max_pool2d" && rng.chance(0.2) {
                pick = ("dilation", json!(0));
            }
            if pick.0 == "padding" {
                // Keep the window: a wider padding alone is what must be refused.
                node.attrs.insert("kernel_size".into(), json!(k));
            }
            pick
        }
        "adaptive_avg_pool2d" => {
            let choices = [
                ("output_size", json!([0, 1])),
                ("output_size", json!(0)),
                ("output_size", json!(absurd)),
            ];
            rng.pick(&choices).clone()
        }
        "mean" => {
            let choices = [json!([1, 2]), json!([0, 1]), json!([2]), json!([2, 3, 1])];
            ("dims", rng.pick(&choices).clone())
        }
        "flatten" => {
            let choices = [
                ("start_dim", json!(rank)),
                ("start_dim", json!(-rank - 1)),
                ("end_dim", json!(rank)),
                ("end_dim", json!(65)),
            ];
            let mut pick = rng.pick(&choices).clone();
            if rank >= 3 && rng.chance(0.3) {
                // end before start
                node.attrs.insert("start_dim".into(), json!(rank - 1));
                pick = ("end_dim", json!(1));
            }
            pick
        }
        "concat" | "softmax" => {
            let mut choices = vec![json!(rank), json!(-rank - 1), json!(100)];
            if node.op == "concat" {
                choices.extend([json!(0), json!(-rank)]);
            }
            ("dim", rng.pick(&choices).clone())
        }
        _ => ("eps", json!(*rng.pick(&[-1.0, -1e-5]))),
    };
    b.what = format!("{} ({}) has {attr}: {value}", node.name, node.op);
    node.attrs.insert(attr.into(), value);
    b.culprits = vec![q(&node.name)];
    Some(b)
}

/// A pool node's kernel_size as written.
fn pool_kernel(node: &NodeDef) -> [usize; 2] {
    read_pair(&node.attrs["kernel_size"])
}

pub(super) fn missing_attr(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let ops = &["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean"];
    let i = pick_node(g, rng, is_op(ops))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let attr = match node.op.as_str() {
        "adaptive_avg_pool2d" => "output_size",
        "mean" => "dims",
        _ => "kernel_size",
    };
    node.attrs.remove(attr);
    b.what = format!("{} ({}) lacks {attr}", node.name, node.op);
    b.culprits = vec![q(&node.name), q(attr)];
    Some(b)
}
