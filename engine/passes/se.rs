//! Squeeze-and-excitation in two kernel calls: `global pool → 1×1 conv (+act) → 1×1 conv
//! (+sigmoid or hardsigmoid)` becomes one gate node (`Op::SeGate`), which the broadcast
//! `mul` by x then follows, instead of four nodes and the mul. MobileNetV3 has 8 such
//! blocks, EfficientNet-B0 16; each was five kernel calls over tiny tensors.

use super::{absorb, use_counts};
use crate::graph::{Activation, Graph, Op, Value};

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
