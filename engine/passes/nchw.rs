//! Channels-last detours made NCHW: ConvNeXt's block runs `permute(0, 2, 3, 1) →
//! layer_norm(c) → linear → gelu → linear → permute(0, 3, 1, 2)` (and its downsampling
//! `LayerNorm2d` the same with the layer norm alone), so that PyTorch's `linear` and
//! `layer_norm` act on the channels. Every op between the permutes acts on the last dim
//! or elementwise, so on the NCHW tensor each has an exact twin: the layer norm over dim 1
//! at each pixel, the linear a 1×1 conv with the same weights, an activation or a
//! number itself, a per-channel weight reshaped to (c, 1, 1). The rewrite drops both
//! permutes, so no transposed copy is ever made, and the 1×1 convs then take the
//! activation and the residual add like any other conv.

use super::{absorb, use_counts};
use crate::graph::{Graph, Op, Operand, Value, Weight};
use std::sync::Arc;

const TO_NHWC: [usize; 4] = [0, 2, 3, 1];
const TO_NCHW: [usize; 4] = [0, 3, 1, 2];

pub(super) fn drop_channels_last_detours(graph: &mut Graph) {
    let uses = use_counts(graph);
    // users[j]: the one node reading node j, when exactly one node reads it once.
    let mut user = vec![None; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for v in &node.inputs {
            if let Value::Node(j) = *v {
                user[j] = Some(i);
            }
        }
    }
    for first in 0..graph.nodes.len() {
        if !matches!(&graph.nodes[first].op, Op::Permute { dims } if dims == &TO_NHWC) {
            continue;
        }
        // Walk the single-use chain to the permute back, every op on it convertible.
        let mut chain = Vec::new();
        let mut at = first;
        let last = loop {
            let Some(next) = user[at].filter(|_| uses[at] == 1) else {
                break None;
            };
            let node = &graph.nodes[next];
            if node.inputs != [Value::Node(at)] {
                break None;
            }
            match &node.op {
                Op::Permute { dims } if dims == &TO_NCHW => break Some(next),
                op if nchw_twin(op).is_some() => chain.push(next),
                _ => break None,
            }
            at = next;
        };
        let (Some(last), Some(&tail)) = (last, chain.last()) else {
            continue;
        };
        for &j in &chain {
            let twin = nchw_twin(&graph.nodes[j].op).expect("checked while walking");
            graph.nodes[j].op = twin;
            // Its value is now NCHW, not the channels-last tensor PyTorch names so.
            graph.nodes[j].name = format!("{}.nchw", graph.nodes[j].name);
        }
        let source = graph.nodes[first].inputs[0];
        graph.nodes[first].op = Op::Identity;
        graph.nodes[first].name = format!("{}.dropped", graph.nodes[first].name);
        graph.nodes[chain[0]].inputs = vec![source];
        // The chain's last op now computes the permute back's value, PyTorch's NCHW one.
        absorb(graph, tail, last);
    }
}

/// The op that computes on the NCHW tensor what `op` computes on its channels-last
/// permute, or None when there is none (a layer norm over more than the channels, a
/// binary op with a second value or a weight that varies along other dims).
fn nchw_twin(op: &Op) -> Option<Op> {
    match op {
        Op::LayerNorm {
            normalized,
            channels: false,
            weight,
            bias,
            eps,
            act,
        } if normalized.len() == 1 => Some(Op::LayerNorm {
            normalized: normalized.clone(),
            channels: true,
            weight: weight.clone(),
            bias: bias.clone(),
            eps: *eps,
            act: *act,
        }),
        Op::Linear { weight, bias, act } if weight.shape.len() == 2 => Some(Op::Conv2d {
            weight: reshaped(weight, vec![weight.shape[0], weight.shape[1], 1, 1]),
            bias: bias.clone(),
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
            act: *act,
            in_scale: false,
        }),
        Op::Act(_) => Some(op.clone()),
        Op::Binary {
            operand: Operand::Scalar(_),
            ..
        } => Some(op.clone()),
        Op::Binary {
            op: bop,
            operand: Operand::Weight(w),
            reverse,
            act,
        } => {
            // Broadcast along the last dim only: (c), (1, c), (1, 1, c) or (1, 1, 1, c).
            let (&c, rest) = w.shape.split_last()?;
            if rest.len() > 3 || rest.iter().any(|&d| d != 1) {
                return None;
            }
            Some(Op::Binary {
                op: *bop,
                operand: Operand::Weight(reshaped(w, vec![c, 1, 1])),
                reverse: *reverse,
                act: *act,
            })
        }
        _ => None,
    }
}

/// The same data under another shape (and a name that says so).
fn reshaped(w: &Arc<Weight>, shape: Vec<usize>) -> Arc<Weight> {
    Arc::new(Weight {
        name: format!("{}.nchw", w.name),
        shape,
        data: w.data.clone(),
        quant: w.quant.clone(),
    })
}
