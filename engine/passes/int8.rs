//! int8 convs: a PT2E model's `fake_quant(x) → conv2d → [relu] → fake_quant(y)`, the conv's
//! weight int8 per output channel with zero points 0, becomes one `QConv2d` node, which the
//! integer kernel computes (kernels/src/quantize/qconv). Its result is the integer form of
//! the quantized conv: within one quantization step of PyTorch's reference form, equal
//! nearly everywhere (kernels/src/quantize/conv.rs says where they differ).
//!
//! The conv reads x and quantizes it as the input's `fake_quant` would, so where that
//! `fake_quant` feeds nothing else it goes: one pass over the activation less. Otherwise
//! the conv reads its output, whose values quantize back to the same integers; so does a
//! conv that reads another int8 conv's output (a ResNet bottleneck's 1×1 → 3×3 → 1×1),
//! quantized by that conv's output quantization.

use super::{absorb, use_counts};
use crate::graph::Node;
use crate::graph::{Activation, Graph, Op, Value};
use kestrel_kernels::quantize::conv::MAX_K;
use kestrel_kernels::quantize::QuantParams;

/// Folds every such pattern (module doc) into a `QConv2d`, which takes the output
/// `fake_quant`'s name.
pub(super) fn fold_int8_convs(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::FakeQuant(y) = graph.nodes[i].op else {
            continue;
        };
        let Value::Node(c) = graph.nodes[i].inputs[0] else {
            continue;
        };
        let Some((f, x)) = foldable(graph, c).filter(|_| uses[c] == 1) else {
            continue;
        };
        let conv = std::mem::replace(&mut graph.nodes[c].op, Op::Identity);
        graph.nodes[c].op = Op::QConv2d {
            conv: Box::new(conv),
            x,
            y,
            bytes_in: false,
            bytes_out: false,
        };
        if uses[f] == 1 && matches!(graph.nodes[f].op, Op::FakeQuant(_)) {
            graph.nodes[c].inputs[0] = graph.nodes[f].inputs[0];
            graph.nodes[f].op = Op::Identity;
        }
        absorb(graph, c, i);
    }
}

/// The node conv `c` reads and that value's quantization, when it is quantized (a
/// `fake_quant`'s output, or an int8 conv's folded here already) and `c` is a conv the
/// integer kernel computes: int8 weight with zero points 0, no activation or relu, no residual
/// or input scale, sums that fit an i32, and at least 8 output channels per group.
///
/// Depthwise and narrow-group convs keep the float form: the integer GEMM computes
/// panels of 8 output channels per group, so a depthwise conv wastes 7 of 8 rows, and
/// MobileNetV2 ran 2.3× slower than in fp32 with them folded (18.5 vs 8.0 ms, 1 thread,
/// Xeon model 207, `side_by_side.py --int8`).
fn foldable(graph: &Graph, c: usize) -> Option<(usize, QuantParams)> {
    let node = &graph.nodes[c];
    let Op::Conv2d {
        weight,
        act,
        in_scale,
        groups,
        ..
    } = &node.op
    else {
        return None;
    };
    let q = weight.quant.as_ref()?;
    let k: usize = weight.shape.iter().skip(1).product();
    let per_group = weight.shape[0] / *groups;
    let plain = matches!(act, Activation::None | Activation::Relu) && !in_scale && per_group >= 8;
    if !plain || node.inputs.len() != 1 || q.zero_point.iter().any(|&z| z != 0) || k > MAX_K {
        return None;
    }
    let Value::Node(mut f) = node.inputs[0] else {
        return None;
    };
    // A producer folded earlier in this pass: its output `fake_quant` is now an identity
    // of it until the pass ends.
    while let (Op::Identity, Value::Node(j)) = (&graph.nodes[f].op, graph.nodes[f].inputs[0]) {
        f = j;
    }
    match graph.nodes[f].op {
        Op::FakeQuant(x) | Op::QConv2d { y: x, .. } => Some((f, x)),
        _ => None,
    }
}

/// Stores as bytes every int8 conv's output that only int8 convs read (as their x), and
/// tells those readers: a quarter of the bytes written and read, and no quantize on the
/// way in (kernels/src/quantize/qconv). Runs on a graph without identities.
pub(super) fn bytes_between_int8_convs(graph: &mut Graph) {
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for v in &node.inputs {
            if let Value::Node(j) = *v {
                readers[j].push(i);
            }
        }
    }
    let outputs: Vec<usize> = graph
        .outputs
        .iter()
        .filter_map(|v| match v {
            Value::Node(j) => Some(*j),
            Value::Input(_) => None,
        })
        .collect();
    for (j, readers) in readers.iter().enumerate() {
        let Op::QConv2d { y, .. } = graph.nodes[j].op else {
            continue;
        };
        let reads_bytes = |r: &Node| {
            matches!(r.op, Op::QConv2d { x, .. } if x == y) && r.inputs == [Value::Node(j)]
        };
        let all = readers.iter().all(|&r| reads_bytes(&graph.nodes[r]));
        if readers.is_empty() || !all || outputs.contains(&j) {
            continue;
        }
        if let Op::QConv2d { bytes_out, .. } = &mut graph.nodes[j].op {
            *bytes_out = true;
        }
        for &r in readers {
            if let Op::QConv2d { bytes_in, .. } = &mut graph.nodes[r].op {
                *bytes_in = true;
            }
        }
    }
}
