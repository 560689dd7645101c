//! Graph passes run when a session is built: fold each batch norm into the conv before it,
//! drop identity nodes (identity, dropout, and the batch norms just folded), run
//! channels-last detours on NCHW (`nchw`), fold per-channel scales into the conv before
//! them, move a non-decreasing activation that follows a max pool into the conv before the
//! pool, fuse each activation into the node before it, on the CPU a PT2E model's
//! `fake_quant → conv (int8 weight) → [relu] → fake_quant` into one int8 conv and its
//! residual adds into int8 adds (`int8`),
//! squeeze-excite's gate into one node (`se`), and each residual add into the conv that feeds it, so a ResNet block's
//! `relu(bn(conv(x)) + identity)` is one kernel call; last, squeeze-excite's `x · gate`
//! into the projection conv that reads it (`se`).
//!
//! A node that absorbs the nodes after it takes the last one's name: it now produces the
//! value PyTorch calls by that name, which is what `compare --per-layer` checks.

mod int8;
mod nchw;
mod se;

use crate::graph::{Activation, BinaryOp, Graph, Node, Op, Operand, Value, Weight};
use kestrel_kernels::batch_norm::scale_shift;
use kestrel_loader::F32Data;
use std::sync::Arc;

/// `int8`: fold int8 convs into the integer kernel (`int8.rs`): CPU sessions, the only
/// ones with that kernel.
pub(crate) fn optimize(graph: &mut Graph, int8: bool) {
    fold_batch_norms(graph);
    remove_identities(graph);
    nchw::drop_channels_last_detours(graph);
    remove_identities(graph);
    fold_channel_scales(graph);
    remove_identities(graph);
    hoist_activations_over_max_pools(graph);
    remove_identities(graph);
    fuse_activations(graph);
    remove_identities(graph);
    if int8 {
        int8::merge_repeated_quantizes(graph);
        remove_identities(graph);
        int8::fold_int8_ops(graph);
        remove_identities(graph);
        int8::bytes_between_int8_ops(graph);
        int8::fuse_residual_adds(graph);
        remove_identities(graph);
    }
    se::fuse_squeeze_excite(graph);
    remove_identities(graph);
    fuse_residual_adds(graph);
    remove_identities(graph);
    se::scale_in_conv_reads(graph);
    remove_identities(graph);
}

/// conv | linear | add | binary | layer_norm | conv_transpose2d → activation becomes one
/// node with that activation, when the first node's output feeds nothing else.
fn fuse_activations(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Some(act) = fusable_activation(&graph.nodes[i].op) else {
            continue;
        };
        let Value::Node(j) = graph.nodes[i].inputs[0] else {
            continue;
        };
        if uses[j] != 1 {
            continue;
        }
        let slot = match &mut graph.nodes[j].op {
            Op::Conv2d { act, .. }
            | Op::Linear { act, .. }
            | Op::Add { act }
            | Op::Binary { act, .. }
            | Op::LayerNorm { act, .. }
            | Op::ConvTranspose2d { act, .. } => act,
            _ => continue,
        };
        if *slot != Activation::None {
            continue;
        }
        *slot = act;
        absorb(graph, j, i);
    }
}

/// conv → max_pool2d → act becomes conv+act → max_pool2d for a non-decreasing act (relu,
/// relu6, clamp, sigmoid, tanh, hardsigmoid; elu and leaky_relu with a parameter ≥ 0),
/// when the conv and the pool each feed only the next node and the conv has no activation
/// yet: a max commutes with a non-decreasing activation (NaN passes through both), so the
/// conv's epilogue applies it for free and one kernel call goes (the CIFAR net's conv →
/// pool → relu). The pool now yields the activation's value and takes its name; the conv's value is
/// no longer PyTorch's conv output, so its name says what it holds instead.
fn hoist_activations_over_max_pools(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Some(act) = fusable_activation(&graph.nodes[i].op) else {
            continue;
        };
        if !act.is_non_decreasing() {
            continue;
        }
        let Value::Node(pool) = graph.nodes[i].inputs[0] else {
            continue;
        };
        if uses[pool] != 1 || !matches!(graph.nodes[pool].op, Op::MaxPool2d(_)) {
            continue;
        }
        let Value::Node(conv) = graph.nodes[pool].inputs[0] else {
            continue;
        };
        let Op::Conv2d { act: slot, .. } = &mut graph.nodes[conv].op else {
            continue;
        };
        if uses[conv] != 1 || *slot != Activation::None {
            continue;
        }
        *slot = act;
        let renamed = format!("{}+{}", graph.nodes[conv].name, graph.nodes[i].name);
        graph.nodes[conv].name = renamed;
        absorb(graph, pool, i);
    }
}

/// conv → add(·, r) [→ act] becomes conv(x) + r [→ act], when the conv's output feeds
/// only the add and r is computed before the conv runs (nodes are in topological order, so
/// r's producer must come earlier in the list).
fn fuse_residual_adds(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::Add { act: add_act } = graph.nodes[i].op else {
            continue;
        };
        let [a, b] = [graph.nodes[i].inputs[0], graph.nodes[i].inputs[1]];
        let fusable = |conv: Value, residual: Value| {
            let Value::Node(j) = conv else { return None };
            let plain_conv = matches!(
                graph.nodes[j].op,
                Op::Conv2d {
                    act: Activation::None,
                    ..
                }
            );
            let ready = match residual {
                Value::Input(_) => true,
                Value::Node(r) => r < j,
            };
            (plain_conv && uses[j] == 1 && graph.nodes[j].inputs.len() == 1 && ready).then_some(j)
        };
        let Some((j, residual)) = fusable(a, b)
            .map(|j| (j, b))
            .or_else(|| fusable(b, a).map(|j| (j, a)))
        else {
            continue;
        };
        if let Op::Conv2d { act, .. } = &mut graph.nodes[j].op {
            *act = add_act;
        }
        graph.nodes[j].inputs.push(residual);
        absorb(graph, j, i);
    }
}

/// Node `j` now computes node `i`'s value: it takes `i`'s name and `i` becomes an identity
/// of it, removed by the next `remove_identities`.
fn absorb(graph: &mut Graph, j: usize, i: usize) {
    let name = std::mem::take(&mut graph.nodes[i].name);
    graph.nodes[i].name = format!("{name}.fused");
    graph.nodes[i].op = Op::Identity;
    graph.nodes[i].inputs = vec![Value::Node(j)];
    graph.nodes[j].name = name;
}

/// conv → batch_norm becomes one conv with w' = w·scale[oc] and b' = b·scale + shift, when
/// the conv's output feeds nothing else. The folded conv takes the batch norm's name, since
/// it now produces the value PyTorch calls by that name.
fn fold_batch_norms(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::BatchNorm {
            weight,
            bias,
            mean,
            var,
            eps,
        } = &graph.nodes[i].op
        else {
            continue;
        };
        let Value::Node(j) = graph.nodes[i].inputs[0] else {
            continue;
        };
        if uses[j] != 1 || !matches!(graph.nodes[j].op, Op::Conv2d { .. }) {
            continue;
        }
        let (scale, shift) = scale_shift(
            weight.as_ref().map(|w| &w.data[..]),
            bias.as_ref().map(|w| &w.data[..]),
            &mean.data,
            &var.data,
            *eps,
        );
        let bn_name = graph.nodes[i].name.clone();
        scale_conv(&mut graph.nodes[j].op, &scale, &shift, &bn_name);
        absorb(graph, j, i);
    }
}

/// conv → mul by a per-channel constant (ConvNeXt's layer scale, a (c, 1, 1) weight)
/// becomes one conv with w' = w·s[oc] and b' = b·s, when the conv's output feeds nothing
/// else and the conv has no activation or residual yet.
fn fold_channel_scales(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::Binary {
            op: BinaryOp::Mul,
            operand: Operand::Weight(s),
            act: Activation::None,
            ..
        } = &graph.nodes[i].op
        else {
            continue;
        };
        let Value::Node(j) = graph.nodes[i].inputs[0] else {
            continue;
        };
        let Op::Conv2d {
            weight,
            act: Activation::None,
            ..
        } = &graph.nodes[j].op
        else {
            continue;
        };
        let c = weight.shape[0];
        let per_channel = matches!(s.shape[..], [cs, 1, 1] | [1, cs, 1, 1] if cs == c);
        if uses[j] != 1 || graph.nodes[j].inputs.len() != 1 || !per_channel {
            continue;
        }
        let (scale, name) = (s.data.to_vec(), graph.nodes[i].name.clone());
        scale_conv(&mut graph.nodes[j].op, &scale, &vec![0.0; c], &name);
        absorb(graph, j, i);
    }
}

/// A conv's weights and bias scaled and shifted per output channel: w' = w·scale[oc],
/// b' = b·scale + shift, named after the node `by` that is folded in.
fn scale_conv(conv: &mut Op, scale: &[f32], shift: &[f32], by: &str) {
    let Op::Conv2d { weight, bias, .. } = conv else {
        unreachable!("scale_conv is called on convs only");
    };
    // Scaled when the session packs this conv, and dropped once packed
    // (`Kernel::release_packed_weights`): a model's folded weights are as large as the
    // model, and made all at once here they would all be resident before packing starts.
    // w: (c_out, c_in/groups, kh, kw): every weight of output channel oc scales by scale[oc].
    let w = F32Data::scaled(weight.data.clone(), Arc::from(scale));
    let b: Vec<f32> = (0..scale.len())
        .map(|oc| bias.as_ref().map_or(0.0, |b| b.data[oc]) * scale[oc] + shift[oc])
        .collect();
    *weight = Arc::new(Weight {
        name: format!("{}+{by}", weight.name),
        shape: weight.shape.clone(),
        data: w,
        quant: None,
    });
    *bias = Some(Arc::new(Weight {
        name: format!("{by}.folded_bias"),
        shape: vec![scale.len()],
        data: b.into(),
        quant: None,
    }));
}

/// The activation an activation node applies, which an earlier node can take over.
fn fusable_activation(op: &Op) -> Option<Activation> {
    match op {
        Op::Act(a) => Some(*a),
        _ => None,
    }
}

fn use_counts(graph: &Graph) -> Vec<usize> {
    let mut uses = vec![0; graph.nodes.len()];
    let all = graph
        .nodes
        .iter()
        .flat_map(|n| &n.inputs)
        .chain(&graph.outputs);
    for v in all {
        if let Value::Node(j) = *v {
            uses[j] += 1;
        }
    }
    uses
}

/// Rewires every user of an identity node to the identity's input, then drops it.
fn remove_identities(graph: &mut Graph) {
    let mut replace: Vec<Value> = Vec::with_capacity(graph.nodes.len());
    let mut kept: Vec<Node> = Vec::with_capacity(graph.nodes.len());
    let resolve = |v: Value, replace: &[Value]| match v {
        Value::Node(j) => replace[j],
        input => input,
    };
    for mut node in std::mem::take(&mut graph.nodes) {
        node.inputs
            .iter_mut()
            .for_each(|v| *v = resolve(*v, &replace));
        if node.op == Op::Identity {
            replace.push(node.inputs[0]);
        } else {
            replace.push(Value::Node(kept.len()));
            kept.push(node);
        }
    }
    graph
        .outputs
        .iter_mut()
        .for_each(|v| *v = resolve(*v, &replace));
    graph.nodes = kept;
}
