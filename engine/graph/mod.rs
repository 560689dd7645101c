//! The graph IR: inputs, nodes in topological order, outputs. Every node has one output
//! value, named by the node. Weights are resolved to shared f32 data when the graph is built.

mod attrs;
mod build;

pub use build::build_graph;
pub(crate) use build::parameter_count;

pub use kestrel_kernels::Activation;
use std::sync::Arc;

/// A weight tensor: its name in the file, its shape and its f32 data.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Arc<[f32]>,
}

pub type WeightRef = Arc<Weight>;

/// A value a node reads: a graph input or another node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    Input(usize),
    Node(usize),
}

/// A graph input: NCHW dims after the batch; `batch` is None when the batch is dynamic.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInput {
    pub name: String,
    pub batch: Option<usize>,
    pub dims: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Value>,
}

/// Pooling window attributes, shared by max and average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAttrs {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

/// An op with its typed attributes and weights. Dimensions (`dim`, `start_dim`) may be
/// negative, as in PyTorch; they are resolved against the input's rank in `lower`.
/// `act` fields are set only by the session's fusion pass: the file's graph has none.
/// A conv with two inputs adds the second (the residual) before its activation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv2d {
        weight: WeightRef,
        bias: Option<WeightRef>,
        stride: [usize; 2],
        pad: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        act: Activation,
    },
    BatchNorm {
        weight: Option<WeightRef>,
        bias: Option<WeightRef>,
        mean: WeightRef,
        var: WeightRef,
        eps: f32,
    },
    Relu,
    Relu6,
    MaxPool2d(PoolAttrs),
    AvgPool2d(PoolAttrs),
    AdaptiveAvgPool2d {
        output_size: [usize; 2],
    },
    /// Mean over H and W of an NCHW tensor.
    Mean {
        keepdim: bool,
    },
    Linear {
        weight: WeightRef,
        bias: Option<WeightRef>,
        act: Activation,
    },
    Flatten {
        start_dim: i64,
        end_dim: i64,
    },
    Add {
        act: Activation,
    },
    Concat {
        dim: i64,
    },
    Softmax {
        dim: i64,
    },
    /// `identity` and `dropout` (inference): removed when a session is built.
    Identity,
}

/// The op names of the graph JSON, as `GRAPH_FORMAT.md` lists them.
pub const OP_NAMES: &[&str] = &[
    "conv2d",
    "batch_norm",
    "relu",
    "relu6",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "mean",
    "linear",
    "flatten",
    "add",
    "concat",
    "softmax",
    "identity",
    "dropout",
];

impl Op {
    /// The op's name in the graph JSON (`dropout` reads back as `identity`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            Op::Mean { .. } => "mean",
            Op::Linear { .. } => "linear",
            Op::Flatten { .. } => "flatten",
            Op::Add { .. } => "add",
            Op::Concat { .. } => "concat",
            Op::Softmax { .. } => "softmax",
            Op::Identity => "identity",
        }
    }

    /// The weights this op holds, for counting parameters.
    pub fn weights(&self) -> Vec<&WeightRef> {
        match self {
            Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias, .. } => {
                std::iter::once(weight).chain(bias).collect()
            }
            Op::BatchNorm {
                weight,
                bias,
                mean,
                var,
                ..
            } => [weight.as_ref(), bias.as_ref(), Some(mean), Some(var)]
                .into_iter()
                .flatten()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A validated graph: names unique, every reference resolved, nodes topologically sorted,
/// every weight present with the shape its op needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub inputs: Vec<GraphInput>,
    pub nodes: Vec<Node>,
    pub outputs: Vec<Value>,
}

impl Graph {
    /// The name a value is known by: the input's or the producing node's.
    pub fn value_name(&self, value: Value) -> &str {
        match value {
            Value::Input(i) => &self.inputs[i].name,
            Value::Node(i) => &self.nodes[i].name,
        }
    }
}
