//! Shapes that do not agree: an op reading a value it cannot take, windows and kernels
//! larger than their padded input, flatten of the batch.

use super::{broken, dims_of, earlier, is_op, pick_node, q, Broken};
use crate::random_graph::{RandomGraph, Rng};
use serde_json::json;

/// Node `i` made to read, in input `slot`, an earlier value for which `refused` holds.
fn rewire(
    g: &RandomGraph,
    rng: &mut Rng,
    i: usize,
    slot: usize,
    refused: impl Fn(&[usize]) -> bool,
) -> Option<Broken> {
    let bad: Vec<(String, Vec<usize>)> = earlier(g, i)
        .into_iter()
        .filter(|(_, dims)| refused(dims))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let (name, dims) = rng.pick(&bad).clone();
    let node = &g.def.nodes[i];
    let mut b = broken(
        g,
        format!("{} ({}) reads {name} {dims:?}", node.name, node.op),
    );
    let inputs = &mut b.def.nodes[i].inputs;
    match slot < inputs.len() {
        true => inputs[slot] = name,
        false => inputs.push(name),
    }
    b.culprits = vec![q(&node.name)];
    Some(b)
}

pub(super) fn add_unequal(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["add"]))?;
    let slot = rng.range(0, 1);
    let keep = dims_of(g, &g.def.nodes[i].inputs[1 - slot]).to_vec();
    // Two values must have one rank and broadcast: each dim equal, or 1 in one of them.
    let broadcasts = |d: &[usize]| {
        d.len() == keep.len()
            && d.iter()
                .zip(&keep)
                .all(|(&x, &y)| x == y || x == 1 || y == 1)
    };
    rewire(g, rng, i, slot, |d| !broadcasts(d))
}

pub(super) fn concat_mismatch(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["concat"]))?;
    let node = &g.def.nodes[i];
    let first = dims_of(g, &node.inputs[0]).to_vec();
    let rank = first.len() as i64 + 1;
    let dim = node
        .attrs
        .get("dim")
        .map_or(1, |d| d.as_i64().expect("dim"));
    let dim = (if dim < 0 { dim + rank } else { dim }) as usize;
    // Replace an input other than the first, or add one when there is only the first.
    let slot = rng.range(1, node.inputs.len());
    let refused = |d: &[usize]| {
        d.len() != first.len() || (0..d.len()).any(|a| a + 1 != dim && d[a] != first[a])
    };
    rewire(g, rng, i, slot, refused)
}

pub(super) fn wrong_rank(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let ops = &[
        "conv2d",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "mean",
    ];
    let i = pick_node(g, rng, is_op(ops))?;
    rewire(g, rng, i, 0, |d| d.len() != 3)
}

pub(super) fn conv_channels(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["conv2d"]))?;
    let c = dims_of(g, &g.def.nodes[i].inputs[0])[0];
    rewire(g, rng, i, 0, |d| d.len() == 3 && d[0] != c)
}

pub(super) fn linear_in_features(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["linear"]))?;
    let in_f = *dims_of(g, &g.def.nodes[i].inputs[0])
        .last()
        .expect("rank >= 2");
    rewire(g, rng, i, 0, |d| d.last() != Some(&in_f))
}

pub(super) fn flatten_batch(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["flatten"]))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let rank = dims_of(g, &node.inputs[0]).len() as i64 + 1;
    let start = *rng.pick(&[0, -rank]);
    node.attrs.insert("start_dim".into(), json!(start));
    if rng.chance(0.3) {
        node.attrs.insert("end_dim".into(), json!(0));
    }
    b.what = format!("{} flattens from dim {start}", node.name);
    b.culprits = vec![q(&node.name)];
    Some(b)
}

/// A pool whose window, even unpadded and at stride 1, is larger than its input on one
/// axis or both (through the kernel or, for max pooling, the dilation).
pub(super) fn pool_too_big(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["max_pool2d", "avg_pool2d"]))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let x = dims_of(g, &node.inputs[0]);
    let (h, w) = (x[1], x[2]);
    let (k, d) = match rng.range(0, 2) {
        0 => ([h + 1, w + 1], [1, 1]),
        1 => ([1, w + 1], [1, 1]),
        _ if node.op == "max_pool2d" => ([2, 2], [h + 1, 1]),
        _ => ([h + 1 + rng.range(0, 5), 1], [1, 1]),
    };
    node.attrs.clear();
    node.attrs.insert("kernel_size".into(), json!(k));
    node.attrs.insert("stride".into(), json!([1, 1]));
    if node.op == "max_pool2d" {
        node.attrs.insert("dilation".into(), json!(d));
    }
    b.what = format!("{} on {h}x{w}: kernel {k:?} dilation {d:?}", node.name);
    b.culprits = vec![q(&node.name)];
    Some(b)
}

/// A conv whose (dilated) kernel is larger than its padded input: a new weight with
/// kh = h + 2·pad_h + 1.
pub(super) fn conv_too_big(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["conv2d"]))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let h = dims_of(g, &node.inputs[0])[1];
    node.attrs.insert("padding".into(), json!([0, 0]));
    let t = b
        .tensors
        .iter_mut()
        .find(|t| t.name == node.weights["weight"])
        .expect("conv weight");
    t.shape[2] = h + 1;
    t.data = vec![0.25; t.shape.iter().product()];
    b.what = format!("{} on height {h}: weight {:?}", node.name, t.shape);
    b.culprits = vec![q(&node.name)];
    Some(b)
}
