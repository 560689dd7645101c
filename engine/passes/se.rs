//! Squeeze-and-excitation in two kernel calls: `global pool → 1×1 conv (+act) → 1×1 conv
//! (+sigmoid or hardsigmoid)` becomes one gate node (`Op::SeGate`), which the broadcast
//! `mul` by x then follows, instead of four nodes and the mul. MobileNetV3 has 8 such
//! blocks, EfficientNet-B0 16; each was five kernel calls over tiny tensors.
//!
//! Then (`scale_in_conv_reads`) the mul goes too where the block's projection conv reads
//! x · gate: the conv reads x and multiplies in the gate itself (its `in_scale`).

use super::{absorb, use_counts};
use crate::graph::{Activation, BinaryOp, Graph, Op, Operand, Value};

/// Runs after the activations are fused, so the convs carry theirs.
pub(super) fn fuse_squeeze_excite(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Some(gate) = conv1x1_act(&graph.nodes[i].op) else {
            continue;
        };
        if !matches!(gate, Activation::Sigmoid | Activation::HardSigmoid) {
            continue;
        }
        let Some(fc1) = single_use_input(graph, &uses, i) else {
            continue;
        };
        let Some(act) = conv1x1_act(&graph.nodes[fc1].op) else {
            continue;
        };
        let Some(pool) = single_use_input(graph, &uses, fc1) else {
            continue;
        };
        let pools_all = match &graph.nodes[pool].op {
            Op::AdaptiveAvgPool2d { output_size } => *output_size == [1, 1],
            Op::Mean { keepdim } => *keepdim,
            _ => false,
        };
        if !pools_all {
            continue;
        }
        let [Op::Conv2d {
            weight: w1,
            bias: b1,
            ..
        }, Op::Conv2d {
            weight: w2,
            bias: b2,
            ..
        }] = [&graph.nodes[fc1].op, &graph.nodes[i].op]
        else {
            unreachable!("conv1x1_act matched both");
        };
        let op = Op::SeGate {
            w1: w1.clone(),
            b1: b1.clone(),
            act,
            w2: w2.clone(),
            b2: b2.clone(),
            gate,
        };
        let x = graph.nodes[pool].inputs[0];
        // The pool node computes the gate now, under the excite conv's name (its value).
        graph.nodes[pool].op = op;
        graph.nodes[fc1].op = Op::Identity;
        graph.nodes[fc1].name = format!("{}.fused", graph.nodes[fc1].name);
        graph.nodes[pool].inputs = vec![x];
        absorb(graph, pool, i);
    }
}

/// `x · gate` (either order, gate an `Op::SeGate` of x) read by nothing but one conv the
/// kernels take an input scale for (`Conv2dParams::in_scale_applies`: 1×1, stride 1, no
/// padding, one group, the block's projection) becomes that conv reading x with the gate
/// as its input scale, which the kernels multiply in as they read x. The mul wrote the
/// whole expanded tensor and the conv read it back: one write and one read per SE block of
/// EfficientNet-B0's 32×112×112 floats (1.6 MB) in its first, 96×56×56 in its second.
///
/// Runs after the residual adds are fused: `fuse_residual_adds` takes one-input convs
/// only, and the scale is the conv's last input, after the residual.
pub(super) fn scale_in_conv_reads(graph: &mut Graph) {
    let uses = use_counts(graph);
    for (m, &used) in uses.iter().enumerate() {
        // Read once, as the conv's x (checked below).
        if used != 1 {
            continue;
        }
        let Op::Binary {
            op: BinaryOp::Mul,
            operand: Operand::Value,
            act: Activation::None,
            ..
        } = graph.nodes[m].op
        else {
            continue;
        };
        let [a, b] = graph.nodes[m].inputs[..] else {
            continue;
        };
        let Some((x, gate, channels)) = gated(graph, a, b).or_else(|| gated(graph, b, a)) else {
            continue;
        };
        // Its one reader, as the conv's x (a later node: the nodes are in order).
        let read_as_x = |n: &crate::graph::Node| n.inputs.first() == Some(&Value::Node(m));
        let Some(c) = (m + 1..graph.nodes.len()).find(|&c| read_as_x(&graph.nodes[c])) else {
            continue;
        };
        let Op::Conv2d {
            weight,
            stride: [1, 1],
            pad: [0, 0],
            groups: 1,
            in_scale,
            ..
        } = &mut graph.nodes[c].op
        else {
            continue;
        };
        if weight.shape[1..] != [channels, 1, 1] || *in_scale {
            continue;
        }
        *in_scale = true;
        graph.nodes[c].inputs[0] = x;
        graph.nodes[c].inputs.push(gate);
        // The mul computes nothing now: an identity of x, removed by `remove_identities`.
        let name = std::mem::take(&mut graph.nodes[m].name);
        graph.nodes[m].name = format!("{name}.fused");
        graph.nodes[m].op = Op::Identity;
        graph.nodes[m].inputs = vec![x];
    }
}

/// (x, gate, channels) when `gate` is squeeze-excite's gate of `x`: (n, channels, 1, 1)
/// against x's (n, channels, h, w), so `x · gate` scales each image's channels.
fn gated(graph: &Graph, x: Value, gate: Value) -> Option<(Value, Value, usize)> {
    let Value::Node(g) = gate else { return None };
    let Op::SeGate { w1, w2, .. } = &graph.nodes[g].op else {
        return None;
    };
    // w1: (hidden, c, 1, 1) reads x's c channels; w2: (c, hidden, 1, 1) gives c gates.
    let channels = w1.shape[1];
    (graph.nodes[g].inputs[0] == x && w2.shape[0] == channels).then_some((x, gate, channels))
}

/// The activation of a plain 1×1 conv (stride 1, no padding, no groups, no residual).
fn conv1x1_act(op: &Op) -> Option<Activation> {
    match op {
        Op::Conv2d {
            weight,
            stride: [1, 1],
            pad: [0, 0],
            groups: 1,
            act,
            ..
        } if weight.shape[2..] == [1, 1] => Some(*act),
        _ => None,
    }
}

/// The node that node `i` reads as its only input, when nothing else reads it.
fn single_use_input(graph: &Graph, uses: &[usize], i: usize) -> Option<usize> {
    match graph.nodes[i].inputs[..] {
        [Value::Node(j)] if uses[j] == 1 => Some(j),
        _ => None,
    }
}
