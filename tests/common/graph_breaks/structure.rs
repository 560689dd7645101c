//! Broken structure: names, references, cycles, inputs, outputs, op names and arity.

use super::{broken, pick_node, q, Broken};
use crate::random_graph::{RandomGraph, Rng};
use kestrel::GraphDef;
use std::collections::HashSet;

pub(super) fn unknown_input(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = pick_node(g, rng, |n| !n.inputs.is_empty())?;
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let slot = rng.range(0, node.inputs.len() - 1);
    let ghost = format!("ghost_{}", rng.range(0, 99));
    b.what = format!("{} reads {ghost}", node.name);
    node.inputs[slot] = ghost.clone();
    b.culprits = vec![q(&node.name), q(&ghost)];
    Some(b)
}

pub(super) fn unknown_output(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "output names nothing");
    let slot = rng.range(0, b.def.outputs.len() - 1);
    let ghost = *rng.pick(&["nothing", "logits", "output", "conv2d_999"]);
    b.def.outputs[slot] = ghost.to_string();
    b.culprits = vec![q(ghost)];
    Some(b)
}

pub(super) fn no_outputs(g: &RandomGraph, _: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "outputs: []");
    b.def.outputs.clear();
    b.culprits = vec!["no outputs".into()];
    Some(b)
}

pub(super) fn no_inputs(g: &RandomGraph, _: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "inputs: []");
    b.def.inputs.clear();
    b.culprits = vec!["no inputs".into()];
    Some(b)
}

pub(super) fn version(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let v = *rng.pick(&[0, kestrel_loader::GRAPH_VERSION + 1, 7]);
    let mut b = broken(g, format!("version {v}"));
    b.def.version = v;
    b.culprits = vec![format!("version {v}")];
    Some(b)
}

/// Node j, read by node i, is made to read i: every node on a path from j to i is then
/// on a cycle, and the error must name one of them. Half the time the nodes are also
/// listed out of order, as a file may list them.
pub(super) fn cycle(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let index = |name: &str| g.def.nodes.iter().position(|n| n.name == name);
    let edges: Vec<(usize, usize)> = (0..g.def.nodes.len())
        .flat_map(|i| {
            let reads: Vec<usize> = g.def.nodes[i]
                .inputs
                .iter()
                .filter_map(|x| index(x))
                .collect();
            reads.into_iter().map(move |j| (i, j))
        })
        .collect();
    if edges.is_empty() {
        return None;
    }
    let (i, j) = *rng.pick(&edges);
    let mut b = broken(g, "");
    let i_name = b.def.nodes[i].name.clone();
    b.what = format!("{} reads {i_name}", b.def.nodes[j].name);
    b.def.nodes[j].inputs[0] = i_name;
    // On the cycle: j, i, and whatever lies on a path between them.
    let from_j = reachable(&g.def, j, true);
    let to_i = reachable(&g.def, i, false);
    b.one_of = from_j
        .intersection(&to_i)
        .map(|&k| q(&g.def.nodes[k].name))
        .collect();
    if rng.chance(0.5) {
        rng.shuffle(&mut b.def.nodes);
        b.what += ", nodes shuffled";
    }
    Some(b)
}

/// Nodes reachable from node `start` following edges forward (to readers) or backward
/// (to what it reads), itself included.
fn reachable(def: &GraphDef, start: usize, forward: bool) -> HashSet<usize> {
    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(k) = stack.pop() {
        for (m, node) in def.nodes.iter().enumerate() {
            let edge = match forward {
                true => node.inputs.contains(&def.nodes[k].name),
                false => def.nodes[k].inputs.contains(&node.name),
            };
            if edge && seen.insert(m) {
                stack.push(m);
            }
        }
    }
    seen
}

pub(super) fn self_loop(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = rng.range(0, g.def.nodes.len() - 1);
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let slot = rng.range(0, node.inputs.len() - 1);
    node.inputs[slot] = node.name.clone();
    b.what = format!("{} reads itself", node.name);
    b.culprits = vec![q(&node.name)];
    if rng.chance(0.5) {
        rng.shuffle(&mut b.def.nodes);
        b.what += ", nodes shuffled";
    }
    Some(b)
}

/// A node renamed to another node's or an input's name, or an input to a node's.
pub(super) fn duplicate_name(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    let mut names: Vec<String> = g.def.inputs.iter().map(|x| x.name.clone()).collect();
    names.extend(g.def.nodes.iter().map(|n| n.name.clone()));
    let i = rng.range(0, g.def.nodes.len() - 1);
    let taken = rng.pick(&names).clone();
    if taken == g.def.nodes[i].name || rng.chance(0.2) {
        let node = g.def.nodes[rng.range(0, g.def.nodes.len() - 1)]
            .name
            .clone();
        b.what = format!("input renamed {node}");
        b.def.inputs[0].name = node.clone();
        b.culprits = vec![q(&node)];
    } else {
        b.what = format!("{} renamed {taken}", g.def.nodes[i].name);
        b.def.nodes[i].name = taken.clone();
        b.culprits = vec![q(&taken)];
    }
    Some(b)
}

pub(super) fn bad_input_shape(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    let k = rng.range(0, b.def.inputs.len() - 1);
    let input = &mut b.def.inputs[k];
    let rank = input.shape.len();
    match rng.range(0, 3) {
        0 => input.shape[0] = *rng.pick(&[0, -2, -7]),
        1 => input.shape[rng.range(1, rank - 1)] = *rng.pick(&[0, -1, -3]),
        2 => input.shape.clear(),
        _ => input.shape[rng.range(1, rank - 1)] = i64::MIN,
    }
    b.what = format!("input {} has shape {:?}", input.name, input.shape);
    b.culprits = vec![q(&input.name)];
    Some(b)
}

pub(super) fn unknown_op(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = rng.range(0, g.def.nodes.len() - 1);
    let mut b = broken(g, "");
    let op = *rng.pick(&[
        "conv3d",
        "Conv2d",
        "relu ",
        "",
        "maxpool2d",
        "swish",
        "Sigmoid",
    ]);
    b.what = format!("{} has op {op:?}", g.def.nodes[i].name);
    b.def.nodes[i].op = op.to_string();
    b.culprits = vec![q(&g.def.nodes[i].name), q(op)];
    Some(b)
}

pub(super) fn wrong_arity(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let i = rng.range(0, g.def.nodes.len() - 1);
    let mut b = broken(g, "");
    let node = &mut b.def.nodes[i];
    let first = node.inputs[0].clone();
    match node.op.as_str() {
        "add" if rng.chance(0.5) => node.inputs.truncate(1),
        "add" => node.inputs.push(first),
        "concat" => node.inputs.clear(),
        _ if rng.chance(0.8) => node.inputs.push(first),
        _ => node.inputs.clear(),
    }
    b.what = format!("{} takes {} inputs", node.name, node.inputs.len());
    b.culprits = vec![q(&node.name)];
    Some(b)
}
