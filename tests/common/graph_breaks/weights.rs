//! Broken weights: missing, misnamed, of a role the op has not, of the wrong shape.

use super::{broken, is_op, pick_node, q, Broken};
use crate::random_graph::{RandomGraph, Rng, Tensor};

/// A random (node index, role, tensor index) of the graph's weights.
fn pick_weight(g: &RandomGraph, rng: &mut Rng) -> Option<(usize, String, usize)> {
    let all: Vec<(usize, String, usize)> = g
        .def
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            n.weights
                .iter()
                .map(move |(r, t)| (i, r.clone(), t.clone()))
        })
        .map(|(i, r, t)| (i, r, g.tensors.iter().position(|x| x.name == t).expect("t")))
        .collect();
    (!all.is_empty()).then(|| rng.pick(&all).clone())
}

pub(super) fn missing_tensor(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let (i, _, t) = pick_weight(g, rng)?;
    let mut b = broken(g, "");
    let gone = b.tensors.remove(t);
    b.what = format!("tensor {} missing", gone.name);
    b.culprits = vec![q(&g.def.nodes[i].name), q(&gone.name)];
    Some(b)
}

pub(super) fn misnamed_tensor(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let (i, role, t) = pick_weight(g, rng)?;
    let mut b = broken(g, "");
    let name = &g.tensors[t].name;
    let typo = match rng.chance(0.5) {
        true => name.replace('.', "_"),
        false => format!("{name}s"),
    };
    b.what = format!("{}.{role} names {typo}", g.def.nodes[i].name);
    b.def.nodes[i].weights.insert(role, typo.clone());
    b.culprits = vec![q(&g.def.nodes[i].name), q(&typo)];
    Some(b)
}

pub(super) fn missing_role(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, is_op(&["conv2d", "linear", "batch_norm"]))?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let role = match node.op.as_str() {
        "batch_norm" => *rng.pick(&["running_mean", "running_var"]),
        _ => "weight",
    };
    node.weights.remove(role);
    b.what = format!("{} has no {role}", node.name);
    b.culprits = vec![q(&node.name), q(role)];
    Some(b)
}

pub(super) fn unexpected_role(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = rng.range(0, g.def.nodes.len() - 1);
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let role = match node.op.as_str() {
        "conv2d" | "linear" => *rng.pick(&["scale", "running_mean", "bias_"]),
        "batch_norm" => *rng.pick(&["gamma", "beta", "num_batches_tracked"]),
        _ => *rng.pick(&["weight", "bias"]),
    };
    let tensor = g
        .tensors
        .first()
        .map_or("extra.weight".into(), |t| t.name.clone());
    node.weights.insert(role.into(), tensor);
    b.what = format!("{} ({}) has weight {role}", node.name, node.op);
    b.culprits = vec![q(&node.name), q(role)];
    Some(b)
}

/// The shape the op checks a weight against: conv and linear take c_out and the kernel
/// size from the weight itself, so only their input dimension (and rank) is checked.
fn checked_shape_change(role: &str, op: &str, shape: &[usize], rng: &mut Rng) -> Vec<usize> {
    let mut s = shape.to_vec();
    let bump = |d: usize, rng: &mut Rng| match d {
        1 => 2,
        d if rng.chance(0.5) => d - 1,
        d => d + 1,
    };
    match (op, role) {
        ("conv2d" | "linear", "weight") if rng.chance(0.7) => s[1] = bump(s[1], rng),
        ("conv2d" | "linear", "weight") if rng.chance(0.5) => s.push(1),
        ("conv2d" | "linear", "weight") => {
            let last = s.pop().expect("rank >= 2");
            *s.last_mut().expect("rank >= 1") *= last;
        }
        _ if rng.chance(0.8) => s[0] = bump(s[0], rng),
        _ => s.push(1),
    }
    s
}

pub(super) fn wrong_weight_shape(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let (i, role, t) = pick_weight(g, rng)?;
    let mut b = broken(g, "");
    let node = &g.def.nodes[i];
    let tensor = &mut b.tensors[t];
    let shape = checked_shape_change(&role, &node.op, &tensor.shape, rng);
    b.what = format!(
        "{} ({}) {role} {} is {:?} for {:?}",
        node.name, node.op, tensor.name, shape, tensor.shape
    );
    tensor.data = vec![0.25; shape.iter().product()];
    tensor.shape = shape;
    b.culprits = vec![q(&node.name), q(&tensor.name)];
    Some(b)
}

pub(super) fn other_tensor(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let (i, role, t) = pick_weight(g, rng)?;
    let node = &g.def.nodes[i];
    let want = &g.tensors[t].shape;
    let refused = |s: &[usize]| match (node.op.as_str(), role.as_str()) {
        ("conv2d" | "linear", "weight") => s.len() != want.len() || s[1] != want[1],
        _ => s != want.as_slice(),
    };
    let others: Vec<&Tensor> = g.tensors.iter().filter(|x| refused(&x.shape)).collect();
    if others.is_empty() {
        return None;
    }
    let other = *rng.pick(&others);
    let mut b = broken(g, format!("{}.{role} names {}", node.name, other.name));
    // A conv takes c_out and its kernel size from its weight: another rank-4 weight can
    // fail as "kernel larger than the padded input", which names the node only.
    b.culprits = match node.op == "conv2d" && role == "weight" && other.shape.len() == 4 {
        true => vec![q(&node.name)],
        false => vec![q(&node.name), q(&other.name)],
    };
    b.def.nodes[i].weights.insert(role, other.name.clone());
    Some(b)
}
