//! int8 ops on the CPU, from a PT2E model's quantize–dequantize pairs (`fake_quant`):
//! - `fake_quant(x) → conv2d → [relu] → fake_quant(y)`, the conv's weight int8 per output
//!   channel with zero points 0, becomes one `QConv2d` node, which the integer kernels
//!   compute (kernels/src/quantize/qconv, and kernels/src/quantize/qdw for depthwise
//!   convs): the integer form of the quantized conv, within one quantization step of
//!   PyTorch's reference form and equal nearly everywhere (kernels/src/quantize/conv.rs
//!   says where they differ);
//! - `add(fake_quant(a), fake_quant(b)) → [relu] → fake_quant(y)` (a residual add) becomes
//!   one `QAdd` node (kernels/src/quantize/qadd.rs), PyTorch's f32 steps bit for bit;
//! - an exact activation between two quantizations becomes the clamp of the int8 conv
//!   before it, where it only clamps that conv's integers (a relu6 between two equal
//!   quantizations), else a `QLut` (kernels/src/quantize/qlut.rs): a table of its 256
//!   results, bit for bit the float steps (MobileNetV3's hardswish and hardsigmoid);
//! - `max_pool2d` between two quantizations becomes a `QMaxPool`
//!   (kernels/src/quantize/qmaxpool.rs): the max of the integers, then the table from
//!   x's to y's, bit for bit the float steps.
//! - `fake_quant(x) → linear → [relu] → fake_quant(y)`, the weight as a conv's, becomes one
//!   `QLinear` node (kernels/src/quantize/qlinear.rs): the int8 conv's arithmetic for a
//!   1×1 conv on a 1×1 image. A classifier's `pool → fake_quant → flatten → fake_quant →
//!   linear` folds so: the linear reads the flatten and quantizes it as read.
//!
//! An int8 op reads x and quantizes it as the input's `fake_quant` would, so where that
//! `fake_quant` feeds nothing else it goes: one pass over the activation less. Otherwise
//! the op reads its output, whose values quantize back to the same integers; so does an
//! op that reads another int8 op's output (a ResNet bottleneck's 1×1 → 3×3 → 1×1, a block's
//! add → the next block's convs), quantized by that op's output quantization. Last, an
//! int8 op's output that only int8 ops read is stored as bytes (`bytes_between_int8_ops`).

use super::{absorb, use_counts};
use crate::graph::{Activation, Graph, Node, Op, PoolAttrs, Value};
use kestrel_kernels::quantize::conv::MAX_K;
use kestrel_kernels::quantize::qadd::QAdd;
use kestrel_kernels::quantize::qdw::MAX_TAPS;
use kestrel_kernels::quantize::{reference, QuantParams};

/// Makes a `fake_quant` that repeats an earlier one (same input, same quantization) an
/// identity of it: PT2E quantizes a value once per reader (a block's output for the next
/// block's conv and for its residual add), and one node with two readers is what the
/// folds below look for.
pub(super) fn merge_repeated_quantizes(graph: &mut Graph) {
    let mut seen: Vec<(Value, QuantParams, usize)> = Vec::new();
    for i in 0..graph.nodes.len() {
        let Op::FakeQuant(p) = graph.nodes[i].op else {
            continue;
        };
        let v = graph.nodes[i].inputs[0];
        match seen.iter().find(|(w, q, _)| *w == v && *q == p) {
            Some(&(_, _, first)) => {
                graph.nodes[i].op = Op::Identity;
                graph.nodes[i].inputs = vec![Value::Node(first)];
            }
            None => seen.push((v, p, i)),
        }
    }
}

/// Folds every such pattern (module doc) into a `QConv2d`, `QLinear` or `QAdd`, which takes the
/// output `fake_quant`'s name.
pub(super) fn fold_int8_ops(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::FakeQuant(y) = graph.nodes[i].op else {
            continue;
        };
        let Value::Node(c) = graph.nodes[i].inputs[0] else {
            continue;
        };
        if uses[c] != 1 {
            continue;
        }
        let folded = match &graph.nodes[c].op {
            Op::Conv2d { .. } => fold_conv(graph, &uses, c, y),
            Op::Add { .. } => fold_add(graph, &uses, c, y),
            Op::MaxPool2d(attrs) => fold_max_pool(graph, &uses, c, *attrs, y),
            Op::Linear { .. } => fold_linear(graph, &uses, c, y),
            Op::Act(act) => {
                let act = *act;
                match fold_act(graph, &uses, c, act, y) {
                    Some(p) => {
                        absorb(graph, p, i);
                        false
                    }
                    None => fold_lut(graph, &uses, c, act, y),
                }
            }
            _ => false,
        };
        if folded {
            absorb(graph, c, i);
        }
    }
}

/// Conv `c` into a `QConv2d` with output quantization `y`, when `foldable_conv` says.
fn fold_conv(graph: &mut Graph, uses: &[usize], c: usize, y: QuantParams) -> bool {
    let Some((f, x)) = foldable_conv(graph, c) else {
        return false;
    };
    let conv = std::mem::replace(&mut graph.nodes[c].op, Op::Identity);
    graph.nodes[c].op = Op::QConv2d {
        conv: Box::new(conv),
        x,
        y,
        clamp: None,
        bytes_in: false,
        bytes_out: false,
        add: None,
    };
    bypass(graph, uses, c, 0, f);
    true
}

/// Linear `c` into a `QLinear` with output quantization `y`: int8 weight with zero points
/// 0, no activation or relu, sums that fit an i32, reading a quantized value.
fn fold_linear(graph: &mut Graph, uses: &[usize], c: usize, y: QuantParams) -> bool {
    let node = &graph.nodes[c];
    let Op::Linear { weight, act, .. } = &node.op else {
        return false;
    };
    let Some(q) = weight.quant.as_ref() else {
        return false;
    };
    let plain = matches!(act, Activation::None | Activation::Relu) && node.inputs.len() == 1;
    let k = weight.shape.get(1).copied().unwrap_or(usize::MAX);
    if !plain || q.zero_point.iter().any(|&z| z != 0) || k > MAX_K {
        return false;
    }
    let Some((f, x)) = quantized(graph, node.inputs[0]) else {
        return false;
    };
    let linear = std::mem::replace(&mut graph.nodes[c].op, Op::Identity);
    graph.nodes[c].op = Op::QLinear {
        linear: Box::new(linear),
        x,
        y,
        clamp: None,
        bytes_in: false,
        bytes_out: false,
    };
    bypass(graph, uses, c, 0, f);
    true
}

/// Add `c` (no activation or relu, two inputs both quantized) into a `QAdd`.
fn fold_add(graph: &mut Graph, uses: &[usize], c: usize, y: QuantParams) -> bool {
    let node = &graph.nodes[c];
    let Op::Add { act } = node.op else {
        return false;
    };
    if !matches!(act, Activation::None | Activation::Relu) || node.inputs.len() != 2 {
        return false;
    }
    let (Some((fa, a)), Some((fb, b))) = (
        quantized(graph, node.inputs[0]),
        quantized(graph, node.inputs[1]),
    ) else {
        return false;
    };
    let relu = act == Activation::Relu;
    graph.nodes[c].op = Op::QAdd {
        q: QAdd { a, b, y, relu },
        bytes_in: [false; 2],
        bytes_out: false,
    };
    if fa != fb {
        bypass(graph, uses, c, 0, fa);
        bypass(graph, uses, c, 1, fb);
    }
    true
}

/// Activation `c` on an int8 conv's (or linear's) output, quantized again by that output's own
/// quantization `y` (PT2E shares it across a relu6): where that maps every integer q to
/// `clamp(q, lo, hi)` (`clamp_of`), the conv clamps its output so and `c` goes. Returns
/// the conv, which then produces what the outer `fake_quant` did.
fn fold_act(
    graph: &mut Graph,
    uses: &[usize],
    c: usize,
    act: Activation,
    y: QuantParams,
) -> Option<usize> {
    let mut p = match graph.nodes[c].inputs[..] {
        [Value::Node(p)] => p,
        _ => return None,
    };
    // Through the identities a fold leaves, each read by the next alone.
    while uses[p] == 1 && matches!(graph.nodes[p].op, Op::Identity) {
        let Value::Node(q) = graph.nodes[p].inputs[0] else {
            return None;
        };
        p = q;
    }
    if uses[p] != 1 || !act.is_exact() {
        return None;
    }
    let (Op::QConv2d {
        y: produced, clamp, ..
    }
    | Op::QLinear {
        y: produced, clamp, ..
    }) = &mut graph.nodes[p].op
    else {
        return None;
    };
    if *produced != y {
        return None;
    }
    let [lo, hi] = clamp_of(act, &y)?;
    let [old_lo, old_hi] = clamp.unwrap_or([y.qmin, y.qmax]);
    let (lo, hi) = (lo.max(old_lo), hi.min(old_hi));
    if lo > hi {
        return None;
    }
    *clamp = Some([lo, hi]);
    graph.nodes[c].op = Op::Identity;
    Some(p)
}

/// `[lo, hi]` when `quantize(act(dequantize(q)))` by `y` is `clamp(q, lo, hi)` for every
/// integer q of y's range, checked one by one with the reference arithmetic (the float
/// session's, bit for bit: `act` is exact).
fn clamp_of(act: Activation, y: &QuantParams) -> Option<[i32; 2]> {
    let f = |q: i32| reference::quantize(y, act.apply(reference::dequantize(y, q)));
    let (lo, hi) = (f(y.qmin), f(y.qmax));
    (y.qmin..=y.qmax)
        .all(|q| f(q) == q.clamp(lo, hi.max(lo)))
        .then_some([lo, hi])
}

/// Max pool `c` of a quantized value into a `QMaxPool` (the max of the integers, then
/// the table from x's to y's: kernels/src/quantize/qmaxpool.rs).
fn fold_max_pool(
    graph: &mut Graph,
    uses: &[usize],
    c: usize,
    attrs: PoolAttrs,
    y: QuantParams,
) -> bool {
    let Some((f, x)) = quantized(graph, graph.nodes[c].inputs[0]) else {
        return false;
    };
    graph.nodes[c].op = Op::QMaxPool {
        attrs,
        x,
        y,
        bytes_in: false,
        bytes_out: false,
    };
    bypass(graph, uses, c, 0, f);
    true
}

/// Activation `c` of a quantized value (exact: the table is filled with its scalar form,
/// which is the float kernels' bit for bit) into a `QLut`, where `fold_act` found no
/// clamp.
fn fold_lut(graph: &mut Graph, uses: &[usize], c: usize, act: Activation, y: QuantParams) -> bool {
    let node = &graph.nodes[c];
    if !act.is_exact() || node.inputs.len() != 1 {
        return false;
    }
    let Some((f, x)) = quantized(graph, node.inputs[0]) else {
        return false;
    };
    graph.nodes[c].op = Op::QLut {
        act,
        x,
        y,
        bytes_in: false,
        bytes_out: false,
    };
    bypass(graph, uses, c, 0, f);
    true
}

/// Input `slot` of node `c` reads `fake_quant` node `f` directly: where nothing else
/// reads `f`, `c` reads f's input instead and `f` goes (the int8 op quantizes as read).
fn bypass(graph: &mut Graph, uses: &[usize], c: usize, slot: usize, f: usize) {
    if uses[f] == 1 && matches!(graph.nodes[f].op, Op::FakeQuant(_)) {
        graph.nodes[c].inputs[slot] = graph.nodes[f].inputs[0];
        graph.nodes[f].op = Op::Identity;
    }
}

/// The node conv `c` reads and that value's quantization (`quantized`), when `c` is a
/// conv the integer kernels compute: int8 weight with zero points 0, no activation or
/// relu, no residual or input scale, sums that fit an i32, and at least 8 output channels
/// per group, or depthwise (`depthwise_int8`).
///
/// Other narrow-group convs (2 to 7 output channels per group) keep the float form: the
/// integer GEMM computes panels of 8 output channels per group, so they waste most rows
/// (on depthwise convs it wasted 7 of 8, and MobileNetV2 ran 2.3× slower than in fp32
/// with them folded: 18.5 vs 8.0 ms, 1 thread, Xeon model 207, `side_by_side.py --int8`).
fn foldable_conv(graph: &Graph, c: usize) -> Option<(usize, QuantParams)> {
    let node = &graph.nodes[c];
    let Op::Conv2d {
        weight,
        act,
        in_scale,
        groups,
        bias,
        ..
    } = &node.op
    else {
        return None;
    };
    let q = weight.quant.as_ref()?;
    // The integer kernel's epilogue takes finite biases only (its shortcut: qconv/epilogue.rs).
    if bias
        .as_ref()
        .is_some_and(|b| b.data.iter().any(|v| !v.is_finite()))
    {
        return None;
    }
    let k: usize = weight.shape.iter().skip(1).product();
    let per_group = weight.shape[0] / *groups;
    let wide = per_group >= 8 || depthwise_int8(&weight.shape, *groups);
    let plain = matches!(act, Activation::None | Activation::Relu) && !in_scale && wide;
    if !plain || node.inputs.len() != 1 || q.zero_point.iter().any(|&z| z != 0) || k > MAX_K {
        return None;
    }
    quantized(graph, node.inputs[0])
}

/// Whether a conv of weight shape (c_out, c_in/groups, kh, kw) is depthwise (one input
/// and one output channel per group: groups = c_in = c_out) with few enough taps for
/// the int8 depthwise kernel (kernels/src/quantize/qdw), which computes each channel's
/// plane alone.
fn depthwise_int8(shape: &[usize], groups: usize) -> bool {
    match *shape {
        [c_out, 1, kh, kw] => c_out == groups && kh.saturating_mul(kw) <= MAX_TAPS,
        _ => false,
    }
}

/// The node that produces `v` and v's quantization, when v is quantized: a `fake_quant`'s
/// output, or an int8 op's folded earlier in this pass (whose output `fake_quant` is an
/// identity of it until the pass ends).
fn quantized(graph: &Graph, v: Value) -> Option<(usize, QuantParams)> {
    let Value::Node(mut f) = v else {
        return None;
    };
    while let (Op::Identity, Value::Node(j)) = (&graph.nodes[f].op, graph.nodes[f].inputs[0]) {
        f = j;
    }
    match graph.nodes[f].op {
        Op::FakeQuant(x) => Some((f, x)),
        ref op => output_quant(op).map(|y| (f, y)),
    }
}

/// Stores as bytes every int8 op's output that only int8 ops read, each by the same
/// quantization, and tells those readers: a quarter of the bytes written and read, and no
/// quantize on the way in. Runs on a graph without identities.
pub(super) fn bytes_between_int8_ops(graph: &mut Graph) {
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for v in &node.inputs {
            if let Value::Node(j) = *v {
                if !readers[j].contains(&i) {
                    readers[j].push(i);
                }
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
        let Some(y) = output_quant(&graph.nodes[j].op) else {
            continue;
        };
        let all = readers
            .iter()
            .all(|&r| byte_slots(&graph.nodes[r], j, &y).is_some());
        if readers.is_empty() || !all || outputs.contains(&j) {
            continue;
        }
        set_bytes_out(&mut graph.nodes[j].op);
        for &r in readers {
            let slots = byte_slots(&graph.nodes[r], j, &y).expect("checked above");
            set_bytes_in(&mut graph.nodes[r].op, slots);
        }
    }
}

/// An int8 op's output quantization.
fn output_quant(op: &Op) -> Option<QuantParams> {
    match op {
        Op::QConv2d { add: Some(q), .. } => Some(q.y),
        Op::QConv2d { y, .. } | Op::QLinear { y, .. } => Some(*y),
        Op::QAdd { q, .. } => Some(q.y),
        Op::QLut { y, .. } | Op::QMaxPool { y, .. } => Some(*y),
        _ => None,
    }
}

/// The input slots by which int8 op `r` reads node `j`, when every slot that does reads it
/// quantized by `y`; None when `r` is no int8 op or reads j some other way.
fn byte_slots(r: &Node, j: usize, y: &QuantParams) -> Option<[bool; 2]> {
    let params: [Option<QuantParams>; 2] = match &r.op {
        Op::QConv2d { x, .. } | Op::QLinear { x, .. } => [Some(*x), None],
        Op::QAdd { q, .. } => [Some(q.a), Some(q.b)],
        Op::QLut { x, .. } | Op::QMaxPool { x, .. } => [Some(*x), None],
        _ => return None,
    };
    let mut slots = [false; 2];
    for (k, v) in r.inputs.iter().enumerate() {
        if *v != Value::Node(j) {
            continue;
        }
        if params.get(k).copied().flatten() != Some(*y) {
            return None;
        }
        slots[k] = true;
    }
    Some(slots)
}

fn set_bytes_out(op: &mut Op) {
    match op {
        Op::QConv2d { bytes_out, .. }
        | Op::QAdd { bytes_out, .. }
        | Op::QLut { bytes_out, .. }
        | Op::QMaxPool { bytes_out, .. }
        | Op::QLinear { bytes_out, .. } => *bytes_out = true,
        _ => unreachable!("only int8 ops store bytes"),
    }
}

fn set_bytes_in(op: &mut Op, slots: [bool; 2]) {
    match op {
        Op::QConv2d { bytes_in, .. }
        | Op::QLut { bytes_in, .. }
        | Op::QMaxPool { bytes_in, .. }
        | Op::QLinear { bytes_in, .. } => *bytes_in |= slots[0],
        Op::QAdd { bytes_in, .. } => {
            bytes_in[0] |= slots[0];
            bytes_in[1] |= slots[1];
        }
        _ => unreachable!("byte_slots takes only int8 ops"),
    }
}

/// A `QAdd` of an int8 conv's output and a residual, both stored as bytes, becomes that
/// conv with the add fused (`Op::QConv2d::add`: its epilogue takes QAdd's steps,
/// kernels/src/quantize/qconv), where the conv's output feeds the add alone, the conv is
/// no depthwise one (its kernel fuses nothing) and the residual is computed before the
/// conv runs (nodes are in topological order): ResNet's residual adds, a pass over each
/// block's output less (they were 5% of ResNet-50's int8 run). The add is commutative in
/// f32, so the conv's output may be either input. Runs after `bytes_between_int8_ops`,
/// on a graph without identities.
pub(super) fn fuse_residual_adds(graph: &mut Graph) {
    let uses = use_counts(graph);
    for i in 0..graph.nodes.len() {
        let Op::QAdd {
            q,
            bytes_in,
            bytes_out,
        } = graph.nodes[i].op
        else {
            continue;
        };
        let inputs = [graph.nodes[i].inputs[0], graph.nodes[i].inputs[1]];
        let fusable = |slot: usize| {
            let (Value::Node(j), other) = (inputs[slot], inputs[1 - slot]) else {
                return None;
            };
            let ready = matches!(other, Value::Node(r) if r < j);
            let Op::QConv2d {
                conv, y, add: None, ..
            } = &graph.nodes[j].op
            else {
                return None;
            };
            let Op::Conv2d { weight, groups, .. } = conv.as_ref() else {
                return None;
            };
            let quant = [q.a, q.b][slot];
            let plain = !depthwise_int8(&weight.shape, *groups) && *y == quant;
            (plain && ready && uses[j] == 1 && bytes_in == [true; 2]).then_some(j)
        };
        let Some((j, slot)) = [0, 1].into_iter().find_map(|s| fusable(s).map(|j| (j, s))) else {
            continue;
        };
        let add = match slot {
            0 => q,
            _ => QAdd {
                a: q.b,
                b: q.a,
                ..q
            },
        };
        if let Op::QConv2d {
            add: fused,
            bytes_out: out,
            ..
        } = &mut graph.nodes[j].op
        {
            (*fused, *out) = (Some(add), bytes_out);
        }
        graph.nodes[j].inputs.push(inputs[1 - slot]);
        absorb(graph, j, i);
    }
}
