//! From the file's graph JSON to the IR: names resolved, nodes sorted, weights bound.
//! Shapes are checked afterwards by lowering the graph at batch 1 (see `Model::from_parts`).

use super::attrs::Attrs;
use super::{
    Activation, BinaryOp, Graph, GraphInput, Node, Op, Operand, PoolAttrs, Value, WeightRef,
};
use crate::error::GraphError;
use crate::weights::Weights;
use kestrel_loader::{GraphDef, NodeDef};
use std::collections::{BTreeMap, HashMap};

/// Builds and validates the IR of `def`, binding its weights from `weights`.
pub fn build_graph(def: &GraphDef, weights: &Weights) -> Result<Graph, GraphError> {
    let inputs = build_inputs(def)?;
    let mut names: HashMap<&str, Value> = HashMap::new();
    for (i, input) in def.inputs.iter().enumerate() {
        if names.insert(&input.name, Value::Input(i)).is_some() {
            return Err(GraphError::DuplicateName {
                name: input.name.clone(),
            });
        }
    }
    for (i, node) in def.nodes.iter().enumerate() {
        if names.insert(&node.name, Value::Node(i)).is_some() {
            return Err(GraphError::DuplicateName {
                name: node.name.clone(),
            });
        }
    }
    let mut nodes = Vec::with_capacity(def.nodes.len());
    for nd in &def.nodes {
        let op = build_op(nd, weights)?;
        let needs = op_version(&op);
        if def.version < needs {
            return Err(GraphError::OpTooNew {
                node: nd.name.clone(),
                op: nd.op.clone(),
                needs,
                version: def.version,
            });
        }
        check_arity(nd, &op)?;
        let inputs = nd
            .inputs
            .iter()
            .map(|name| {
                names
                    .get(name.as_str())
                    .copied()
                    .ok_or_else(|| GraphError::MissingValue {
                        node: nd.name.clone(),
                        name: name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        nodes.push(Node {
            name: nd.name.clone(),
            op,
            inputs,
        });
    }
    let outputs = def
        .outputs
        .iter()
        .map(|name| {
            names
                .get(name.as_str())
                .copied()
                .ok_or_else(|| GraphError::MissingOutput { name: name.clone() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if outputs.is_empty() {
        return Err(GraphError::NoOutputs);
    }
    let (nodes, outputs) = topo_sort(nodes, outputs)?;
    Ok(Graph {
        inputs,
        nodes,
        outputs,
    })
}

fn build_inputs(def: &GraphDef) -> Result<Vec<GraphInput>, GraphError> {
    if def.inputs.is_empty() {
        return Err(GraphError::NoInputs);
    }
    let inputs: Vec<GraphInput> = def
        .inputs
        .iter()
        .map(|input| {
            let bad = |detail: String| GraphError::BadInput {
                name: input.name.clone(),
                detail,
            };
            let (&first, rest) = input
                .shape
                .split_first()
                .ok_or_else(|| bad("shape is empty: expected (batch, ...)".into()))?;
            let batch = match first {
                -1 => None,
                b if b >= 1 => Some(b as usize),
                b => return Err(bad(format!("batch dimension {b} is neither -1 nor >= 1"))),
            };
            let dims = rest
                .iter()
                .map(|&d| usize::try_from(d).ok().filter(|&d| d >= 1))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("shape {:?}: dimensions must be >= 1", input.shape)))?;
            Ok(GraphInput {
                name: input.name.clone(),
                batch,
                dims,
            })
        })
        .collect::<Result<_, _>>()?;
    // A session runs every input at one batch: two fixed batches that differ could load
    // but never run.
    let mut fixed = inputs.iter().filter(|i| i.batch.is_some());
    if let Some(first) = fixed.next() {
        if let Some(other) = fixed.find(|i| i.batch != first.batch) {
            return Err(GraphError::BadInput {
                name: other.name.clone(),
                detail: format!(
                    "batch {} differs from input \"{}\"'s fixed batch {}; every input runs at one batch",
                    other.batch.unwrap_or_default(),
                    first.name,
                    first.batch.unwrap_or_default()
                ),
            });
        }
    }
    Ok(inputs)
}

/// Sorts nodes so every node comes after its inputs (Kahn), keeping the file's order where
/// it already is one, and remaps every reference. A node left unsorted sits on a cycle.
fn topo_sort(nodes: Vec<Node>, outputs: Vec<Value>) -> Result<(Vec<Node>, Vec<Value>), GraphError> {
    let n = nodes.len();
    let mut pending: Vec<usize> = nodes
        .iter()
        .map(|nd| {
            nd.inputs
                .iter()
                .filter(|v| matches!(v, Value::Node(_)))
                .count()
        })
        .collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, nd) in nodes.iter().enumerate() {
        for v in &nd.inputs {
            if let Value::Node(j) = *v {
                users[j].push(i);
            }
        }
    }
    // A min-heap on the original index keeps an already sorted file in its own order.
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&i| pending[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready.push(std::cmp::Reverse(u));
            }
        }
    }
    if order.len() < n {
        // The first unsorted node may only read a cycle's output, not be on it (a file may
        // list nodes in any order). Every unsorted node reads an unsorted node, so walking
        // from one to the first unsorted node it reads n times ends on a cycle.
        let mut stuck = (0..n).find(|&i| pending[i] > 0).unwrap_or(0);
        for _ in 0..n {
            let next = nodes[stuck].inputs.iter().find_map(|v| match *v {
                Value::Node(j) if pending[j] > 0 => Some(j),
                _ => None,
            });
            // Always Some (see above); None would only leave the report less precise.
            stuck = next.unwrap_or(stuck);
        }
        return Err(GraphError::Cycle {
            node: nodes[stuck].name.clone(),
        });
    }
    let mut new_index = vec![0; n];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let remap = |v: Value| match v {
        Value::Node(j) => Value::Node(new_index[j]),
        input => input,
    };
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let sorted = order
        .iter()
        .map(|&old| {
            let mut nd = slots[old]
                .take()
                .expect("each index appears once in a topological order");
            nd.inputs.iter_mut().for_each(|v| *v = remap(*v));
            nd
        })
        .collect();
    Ok((sorted, outputs.into_iter().map(remap).collect()))
}

fn check_arity(nd: &NodeDef, op: &Op) -> Result<(), GraphError> {
    let (ok, expected) = match op {
        Op::Add { .. }
        | Op::Binary {
            operand: Operand::Value,
            ..
        } => (nd.inputs.len() == 2, "2"),
        Op::Concat { .. } => (!nd.inputs.is_empty(), "1 or more"),
        _ => (nd.inputs.len() == 1, "1"),
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::Arity {
            node: nd.name.clone(),
            op: op.name(),
            expected: expected.to_string(),
            found: nd.inputs.len(),
        })
    }
}

/// Binds a node's weights by role, refusing roles the op does not have.
pub(super) struct Bind<'a> {
    nd: &'a NodeDef,
    op: &'static str,
    weights: &'a Weights,
}

impl Bind<'_> {
    pub(super) fn new<'a>(
        nd: &'a NodeDef,
        op: &'static str,
        weights: &'a Weights,
        roles: &[&str],
    ) -> Result<Bind<'a>, GraphError> {
        if let Some(role) = nd.weights.keys().find(|r| !roles.contains(&r.as_str())) {
            return Err(GraphError::UnexpectedWeight {
                node: nd.name.clone(),
                op,
                role: role.clone(),
            });
        }
        Ok(Bind { nd, op, weights })
    }

    pub(super) fn optional(&self, role: &str) -> Result<Option<WeightRef>, GraphError> {
        let Some(tensor) = self.nd.weights.get(role) else {
            return Ok(None);
        };
        if let Some(w) = self.weights.get(tensor) {
            return Ok(Some(w.clone()));
        }
        if let Some(q) = self
            .weights
            .int(tensor)
            .filter(|t| t.dtype == kestrel_loader::Dtype::I8)
        {
            return super::quantized::dequantize(&self.nd.name, tensor, q, self.weights).map(Some);
        }
        Err(match self.weights.non_float_dtype(tensor) {
            Some(dtype) => GraphError::WeightNotFloat {
                node: self.nd.name.clone(),
                role: role.to_string(),
                tensor: tensor.clone(),
                dtype: dtype.to_string(),
            },
            None => GraphError::MissingWeight {
                node: self.nd.name.clone(),
                role: role.to_string(),
                tensor: tensor.clone(),
            },
        })
    }

    pub(super) fn required(&self, role: &'static str) -> Result<WeightRef, GraphError> {
        self.optional(role)?
            .ok_or_else(|| GraphError::WeightNotGiven {
                node: self.nd.name.clone(),
                op: self.op,
                role,
            })
    }
}

/// The graph version that introduced `op`: 2 for the activations past relu and relu6 and
/// the binary ops, 3 for layer norm, the layout ops, resizing and transposed convs, 4 for
/// quantization.
fn op_version(op: &Op) -> u32 {
    match op {
        Op::Act(Activation::Relu | Activation::Relu6) => 1,
        Op::Act(_) | Op::Binary { .. } => 2,
        Op::LayerNorm { .. }
        | Op::Permute { .. }
        | Op::Reshape { .. }
        | Op::Slice { .. }
        | Op::Upsample { .. }
        | Op::ConvTranspose2d { .. } => 3,
        Op::FakeQuant(_) => 4,
        _ => 1,
    }
}

/// An `add` with a weight or a number as its second operand: version 2's general form;
/// two inputs and nothing else is version 1's residual add.
fn is_general_add(nd: &NodeDef) -> bool {
    !nd.weights.is_empty() || !nd.attrs.is_empty() || nd.inputs.len() != 2
}

/// add, sub, mul or div: two inputs, or one input and a weight `other` or a `scalar`.
fn binary(nd: &NodeDef, weights: &Weights) -> Result<Op, GraphError> {
    let op = match nd.op.as_str() {
        "add" => BinaryOp::Add,
        "sub" => BinaryOp::Sub,
        "mul" => BinaryOp::Mul,
        _ => BinaryOp::Div,
    };
    let a = Attrs::new(&nd.name, &nd.attrs, &["scalar", "reverse"])?;
    let b = Bind::new(nd, op.name(), weights, &["other"])?;
    let other = b.optional("other")?;
    let scalar = nd.attrs.contains_key("scalar");
    let operand = match (other, scalar) {
        (Some(_), true) => {
            return Err(a.err(
                "scalar",
                "a binary op takes a weight `other` or a scalar, not both",
            ))
        }
        (Some(w), false) => Operand::Weight(w),
        (None, true) => Operand::Scalar(a.f32("scalar", 0.0)?),
        (None, false) => Operand::Value,
    };
    let reverse = a.bool("reverse", false)?;
    if operand == Operand::Value && !nd.attrs.is_empty() {
        let attr = nd.attrs.keys().next().expect("not empty");
        return Err(a.err(attr, "two inputs take no attributes"));
    }
    Ok(Op::Binary {
        op,
        operand,
        reverse,
        act: Activation::None,
    })
}

/// A version-2 activation node's activation, its attributes checked.
fn activation(nd: &NodeDef) -> Result<Activation, GraphError> {
    let name = nd.name.as_str();
    let attrs = |known: &[&str]| Attrs::new(name, &nd.attrs, known);
    Ok(match nd.op.as_str() {
        "clamp" => {
            let a = attrs(&["min", "max"])?;
            let min = a.f32("min", f32::NEG_INFINITY)?;
            let max = a.f32("max", f32::INFINITY)?;
            if nd.attrs.is_empty() {
                return Err(a.err("min", "clamp needs a min, a max or both"));
            }
            if min > max {
                return Err(a.err("min", format!("{min} is above max {max}")));
            }
            Activation::Clamp { min, max }
        }
        "leaky_relu" => {
            Activation::LeakyRelu(attrs(&["negative_slope"])?.f32("negative_slope", 0.01)?)
        }
        "elu" => Activation::Elu(attrs(&["alpha"])?.f32("alpha", 1.0)?),
        "gelu" => match attrs(&["approximate"])?.string("approximate", "none")? {
            "none" => Activation::Gelu,
            "tanh" => Activation::GeluTanh,
            other => {
                let detail = format!("\"{other}\" is not \"none\" or \"tanh\"");
                return Err(attrs(&["approximate"])?.err("approximate", detail));
            }
        },
        op => {
            attrs(&[])?;
            match op {
                "hardsigmoid" => Activation::HardSigmoid,
                "hardswish" => Activation::HardSwish,
                "sigmoid" => Activation::Sigmoid,
                "silu" => Activation::Silu,
                _ => Activation::Tanh,
            }
        }
    })
}

fn build_op(nd: &NodeDef, weights: &Weights) -> Result<Op, GraphError> {
    let name = nd.name.as_str();
    let no_weights = |op| Bind::new(nd, op, weights, &[]).map(|_| ());
    let op = match nd.op.as_str() {
        "conv2d" => {
            let a = Attrs::new(
                name,
                &nd.attrs,
                &["stride", "padding", "dilation", "groups"],
            )?;
            let b = Bind::new(nd, "conv2d", weights, &["weight", "bias"])?;
            Op::Conv2d {
                weight: b.required("weight")?,
                bias: b.optional("bias")?,
                stride: a.pair("stride", [1, 1])?,
                pad: a.pair("padding", [0, 0])?,
                dilation: a.pair("dilation", [1, 1])?,
                groups: a.usize("groups", 1)?,
                act: Activation::None,
                in_scale: false,
            }
        }
        "batch_norm" => {
            let a = Attrs::new(name, &nd.attrs, &["eps"])?;
            let roles = ["weight", "bias", "running_mean", "running_var"];
            let b = Bind::new(nd, "batch_norm", weights, &roles)?;
            Op::BatchNorm {
                weight: b.optional("weight")?,
                bias: b.optional("bias")?,
                mean: b.required("running_mean")?,
                var: b.required("running_var")?,
                eps: a.f32("eps", 1e-5)?,
            }
        }
        "clamp" | "leaky_relu" | "hardsigmoid" | "hardswish" | "elu" | "sigmoid" | "silu"
        | "tanh" | "gelu" => {
            let act = activation(nd)?;
            no_weights(super::act_op_name(act))?;
            Op::Act(act)
        }
        "add" | "sub" | "mul" | "div" if nd.op != "add" || is_general_add(nd) => {
            binary(nd, weights)?
        }
        "relu" | "relu6" | "add" | "identity" | "dropout" => {
            let op = match nd.op.as_str() {
                "relu" => Op::Act(Activation::Relu),
                "relu6" => Op::Act(Activation::Relu6),
                "add" => Op::Add {
                    act: Activation::None,
                },
                _ => Op::Identity,
            };
            // Dropout's probability is meaningless at inference; accept it, ignore it.
            let known: &[&str] = if nd.op == "dropout" { &["p"] } else { &[] };
            Attrs::new(name, &nd.attrs, known)?;
            no_weights(op.name())?;
            op
        }
        "max_pool2d" | "avg_pool2d" => {
            let is_max = nd.op == "max_pool2d";
            let known: &[&str] = if is_max {
                &["kernel_size", "stride", "padding", "dilation", "ceil_mode"]
            } else {
                &[
                    "kernel_size",
                    "stride",
                    "padding",
                    "ceil_mode",
                    "count_include_pad",
                ]
            };
            let a = Attrs::new(name, &nd.attrs, known)?;
            let kernel = a.required_pair("kernel_size")?;
            let attrs = PoolAttrs {
                kernel,
                stride: a.pair("stride", kernel)?,
                pad: a.pair("padding", [0, 0])?,
                dilation: a.pair("dilation", [1, 1])?,
                ceil_mode: a.bool("ceil_mode", false)?,
                count_include_pad: a.bool("count_include_pad", true)?,
            };
            let op = if is_max {
                Op::MaxPool2d(attrs)
            } else {
                Op::AvgPool2d(attrs)
            };
            no_weights(op.name())?;
            op
        }
        "adaptive_avg_pool2d" => {
            let a = Attrs::new(name, &nd.attrs, &["output_size"])?;
            no_weights("adaptive_avg_pool2d")?;
            Op::AdaptiveAvgPool2d {
                output_size: a.required_pair("output_size")?,
            }
        }
        "mean" => {
            let a = Attrs::new(name, &nd.attrs, &["dims", "keepdim"])?;
            no_weights("mean")?;
            let mut dims: Vec<i64> = a
                .dims("dims")?
                .iter()
                .map(|&d| if d < 0 { d + 4 } else { d })
                .collect();
            dims.sort_unstable();
            if dims != [2, 3] {
                return Err(GraphError::Attr {
                    node: nd.name.clone(),
                    attr: "dims".into(),
                    detail: format!(
                        "only the mean over H and W ([2, 3]) is supported, got {:?}",
                        nd.attrs["dims"]
                    ),
                });
            }
            Op::Mean {
                keepdim: a.bool("keepdim", false)?,
            }
        }
        "linear" => {
            Attrs::new(name, &nd.attrs, &[])?;
            let b = Bind::new(nd, "linear", weights, &["weight", "bias"])?;
            Op::Linear {
                weight: b.required("weight")?,
                bias: b.optional("bias")?,
                act: Activation::None,
            }
        }
        "flatten" => {
            let a = Attrs::new(name, &nd.attrs, &["start_dim", "end_dim"])?;
            no_weights("flatten")?;
            Op::Flatten {
                start_dim: a.dim("start_dim", 1)?,
                end_dim: a.dim("end_dim", -1)?,
            }
        }
        "concat" => {
            let a = Attrs::new(name, &nd.attrs, &["dim"])?;
            no_weights("concat")?;
            Op::Concat {
                dim: a.dim("dim", 1)?,
            }
        }
        "softmax" => {
            let a = Attrs::new(name, &nd.attrs, &["dim"])?;
            no_weights("softmax")?;
            Op::Softmax {
                dim: a.dim("dim", -1)?,
            }
        }
        other => {
            let later = match super::build_v3::build_v3_op(nd, weights)? {
                Some(op) => Some(op),
                None => super::build_v4::build_v4_op(nd, weights)?,
            };
            match later {
                Some(op) => op,
                None => {
                    return Err(GraphError::UnknownOp {
                        node: nd.name.clone(),
                        op: other.to_string(),
                    })
                }
            }
        }
    };
    Ok(op)
}

/// Number of parameters of every distinct weight the graph holds.
pub(crate) fn parameter_count(graph: &Graph) -> usize {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for node in &graph.nodes {
        for w in node.op.weights() {
            seen.insert(&w.name, w.data.len());
        }
    }
    seen.values().sum()
}
