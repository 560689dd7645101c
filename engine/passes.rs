//! Graph passes run when a session is built: fold each batch norm into the conv before it,
//! then drop identity nodes (identity, dropout, and the batch norms just folded).

use crate::graph::{Graph, Node, Op, Value, Weight};
use kestrel_kernels::batch_norm::scale_shift;
use std::sync::Arc;

pub(crate) fn optimize(graph: &mut Graph) {
    fold_batch_norms(graph);
    remove_identities(graph);
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
        let Op::Conv2d { weight, bias, .. } = &mut graph.nodes[j].op else {
            unreachable!("matched as Conv2d above");
        };
        let per_out = weight.data.len() / scale.len();
        // w: (c_out, c_in/groups, kh, kw): every weight of output channel oc scales by scale[oc].
        let w: Vec<f32> = weight
            .data
            .iter()
            .enumerate()
            .map(|(k, &v)| v * scale[k / per_out])
            .collect();
        let b: Vec<f32> = (0..scale.len())
            .map(|oc| bias.as_ref().map_or(0.0, |b| b.data[oc]) * scale[oc] + shift[oc])
            .collect();
        *weight = Arc::new(Weight {
            name: format!("{}+{bn_name}", weight.name),
            shape: weight.shape.clone(),
            data: Arc::from(w),
        });
        *bias = Some(Arc::new(Weight {
            name: format!("{bn_name}.folded_bias"),
            shape: vec![scale.len()],
            data: Arc::from(b),
        }));
        graph.nodes[j].name = bn_name;
        graph.nodes[i].op = Op::Identity;
        graph.nodes[i].name.push_str(".folded");
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
