//! The graph IR: inputs, nodes in topological order, outputs. Every node has one output
//! value, named by the node. Weights are resolved to shared f32 data when the graph is built.

mod attrs;
mod build;
mod build_v3;
mod build_v4;
mod quantized;

pub use build::build_graph;
pub(crate) use build::parameter_count;

pub use kestrel_kernels::binary::BinaryOp;
use kestrel_kernels::quantize::qadd::QAdd;
use kestrel_kernels::quantize::QuantParams;
pub use kestrel_kernels::Activation;
use kestrel_loader::F32Data;
use std::sync::Arc;

/// A weight tensor: its name in the file, its shape and its f32 data.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// Its name in the file (or as given in code).
    pub name: String,
    /// Its shape, as PyTorch stores it.
    pub shape: Vec<usize>,
    /// Its values, shared between the graph and every session made from it: in place
    /// from the mapped model file, or owned (converted dtypes, folded weights, weights
    /// given in code).
    pub data: F32Data,
    /// Set where the file stored it as int8 (GRAPH_FORMAT.md's int8 weights): the stored
    /// values, which `data` holds dequantized.
    pub quant: Option<Arc<Int8Weight>>,
}

/// An int8 weight as the file stores it: values q, and per entry c of the first dim a
/// scale and a zero point; the weight is (q − zero_point[c]) · scale[c].
#[derive(Debug, PartialEq)]
pub struct Int8Weight {
    /// The values, in the weight's layout.
    pub values: Vec<i8>,
    /// Per first-dim entry (output channel).
    pub scale: Vec<f32>,
    /// Per first-dim entry, in −128..=127.
    pub zero_point: Vec<i32>,
}

/// A weight shared between graphs and sessions without copying its data.
pub type WeightRef = Arc<Weight>;

/// A value a node reads: a graph input or another node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// Graph input number `i`.
    Input(usize),
    /// The output of node number `i`.
    Node(usize),
}

/// A graph input: NCHW dims after the batch; `batch` is None when the batch is dynamic.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInput {
    /// The input's name.
    pub name: String,
    /// The batch size, when the graph fixes it.
    pub batch: Option<usize>,
    /// The dimensions after the batch: (c, h, w) for an image.
    pub dims: Vec<usize>,
}

/// One node: an op, the values it reads, and its output named by `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's name, also the name of its output.
    pub name: String,
    /// The op, with its attributes and weights.
    pub op: Op,
    /// The values it reads, in the op's order.
    pub inputs: Vec<Value>,
}

/// Pooling window attributes, shared by max and average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAttrs {
    /// Window (kh, kw).
    pub kernel: [usize; 2],
    /// Step between windows (sh, sw).
    pub stride: [usize; 2],
    /// Padding on each side (ph, pw).
    pub pad: [usize; 2],
    /// Spacing between window taps (dh, dw); 1 for average pooling.
    pub dilation: [usize; 2],
    /// Whether a partial window at the end makes one more output, as PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
    /// Whether average pooling divides by the window size including padding.
    pub count_include_pad: bool,
}

/// An op with its typed attributes and weights. Dimensions (`dim`, `start_dim`) may be
/// negative, as in PyTorch; they are resolved against the input's rank in `lower`.
/// `act` fields are set only by the session's fusion pass: the file's graph has none.
/// A conv's inputs are x, then the residual it adds before its activation (if the passes
/// fused one), then its input scale (if `in_scale`).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// 2-D convolution, NCHW.
    Conv2d {
        /// (c_out, c_in/groups, kh, kw).
        weight: WeightRef,
        /// (c_out), when the conv has one.
        bias: Option<WeightRef>,
        /// (sh, sw).
        stride: [usize; 2],
        /// Zero padding on each side (ph, pw).
        pad: [usize; 2],
        /// (dh, dw).
        dilation: [usize; 2],
        /// Channel groups; `groups == c_in == c_out` is depthwise.
        groups: usize,
        /// The activation fused after bias and residual add.
        act: Activation,
        /// Whether the last input is a scale (n, c_in, 1, 1) multiplied into x as the conv
        /// reads it: squeeze-excite's gate, moved there by the passes (`passes/se.rs`).
        in_scale: bool,
    },
    /// An int8 conv: what `fake_quant(x) → conv2d → [relu] → fake_quant(y)` computes, the
    /// conv's weight int8 (`Weight::quant`), computed by the integer kernel. Made by the
    /// session's passes (`passes/int8.rs`), never read from a file.
    QConv2d {
        /// The `Conv2d`, its `act` None or Relu.
        conv: Box<Op>,
        /// The input's quantization.
        x: QuantParams,
        /// The output's quantization.
        y: QuantParams,
        /// A narrower clamp of the output integers: a clamping activation on the
        /// quantized output, folded in (`QConv2d::clamp`).
        clamp: Option<[i32; 2]>,
        /// x is stored as bytes (another int8 conv's `bytes_out`).
        bytes_in: bool,
        /// y is stored as bytes: every reader is an int8 conv (`passes/int8.rs`).
        bytes_out: bool,
        /// An int8 add of the conv's output (its first input) and the node's second
        /// input, a residual stored as bytes, fused in (`passes/int8.rs`): the node's
        /// value is the add's, y and `bytes_out` the add's output.
        add: Option<QAdd>,
    },
    /// An int8 linear: what `fake_quant(x) → linear → [relu] → fake_quant(y)` computes, the
    /// linear's weight int8 (`Weight::quant`), computed by the integer kernel as a 1×1 conv
    /// on a 1×1 image would be. Made by the session's passes (`passes/int8.rs`), never
    /// read from a file.
    QLinear {
        /// The `Linear`, its `act` None or Relu.
        linear: Box<Op>,
        /// The input's quantization.
        x: QuantParams,
        /// The output's quantization.
        y: QuantParams,
        /// A narrower clamp of the output integers, as `QConv2d`'s.
        clamp: Option<[i32; 2]>,
        /// x is stored as bytes (another int8 op's `bytes_out`).
        bytes_in: bool,
        /// y is stored as bytes: every reader is an int8 op.
        bytes_out: bool,
    },
    /// An int8 add: `fake_quant(a) + fake_quant(b) → [relu] → fake_quant(y)`, made by the
    /// session's passes (`passes/int8.rs`), never read from a file.
    QAdd {
        /// The quantizations and the relu.
        q: QAdd,
        /// Which inputs are stored as bytes.
        bytes_in: [bool; 2],
        /// y is stored as bytes: every reader is an int8 op.
        bytes_out: bool,
    },
    /// An elementwise activation of int8 values: `fake_quant(x) → act → fake_quant(y)`, a
    /// table of 256 results (`QLut`), made by the session's passes (`passes/int8.rs`),
    /// never read from a file.
    QLut {
        /// The activation.
        act: Activation,
        /// The input's quantization.
        x: QuantParams,
        /// The output's quantization.
        y: QuantParams,
        /// x is stored as bytes.
        bytes_in: bool,
        /// y is stored as bytes: every reader is an int8 op.
        bytes_out: bool,
    },
    /// A max pool of int8 values: `fake_quant(x) → max_pool2d → fake_quant(y)`, made by the
    /// session's passes (`passes/int8.rs`), never read from a file.
    QMaxPool {
        /// The pool's attributes.
        attrs: PoolAttrs,
        /// The input's quantization.
        x: QuantParams,
        /// The output's quantization.
        y: QuantParams,
        /// x is stored as bytes.
        bytes_in: bool,
        /// y is stored as bytes: every reader is an int8 op.
        bytes_out: bool,
    },
    /// Batch normalisation with running statistics; folded into the conv before it when a
    /// session is built.
    BatchNorm {
        /// Scale (gamma) per channel; `None` means 1.
        weight: Option<WeightRef>,
        /// Shift (beta) per channel; `None` means 0.
        bias: Option<WeightRef>,
        /// Running mean per channel.
        mean: WeightRef,
        /// Running variance per channel.
        var: WeightRef,
        /// Added to the variance before its square root.
        eps: f32,
    },
    /// An element-wise activation: relu, relu6, clamp, leaky_relu, hardsigmoid,
    /// hardswish, elu, sigmoid, silu, tanh, gelu (never `Activation::None`).
    Act(Activation),
    /// Max pooling.
    MaxPool2d(PoolAttrs),
    /// Average pooling.
    AvgPool2d(PoolAttrs),
    /// Average pooling to a fixed output size, as PyTorch's `adaptive_avg_pool2d`.
    AdaptiveAvgPool2d {
        /// (out_h, out_w).
        output_size: [usize; 2],
    },
    /// Mean over H and W of an NCHW tensor.
    Mean {
        /// Whether the output keeps H and W as 1×1.
        keepdim: bool,
    },
    /// Fully connected: `y = x · weightᵀ + bias`.
    Linear {
        /// (out_features, in_features).
        weight: WeightRef,
        /// (out_features), when it has one.
        bias: Option<WeightRef>,
        /// The activation fused after the bias.
        act: Activation,
    },
    /// Merges dimensions `start_dim..=end_dim` into one.
    Flatten {
        /// First dimension merged; negative counts from the end.
        start_dim: i64,
        /// Last dimension merged; negative counts from the end.
        end_dim: i64,
    },
    /// Elementwise sum of two tensors of equal shape.
    Add {
        /// The activation fused after the sum.
        act: Activation,
    },
    /// `a op b` with PyTorch's broadcasting: a is the node's first input, b its second
    /// input, a weight or a number (`operand`); `reverse` swaps them (`b op a`).
    Binary {
        /// add, sub, mul or div.
        op: BinaryOp,
        /// Where b comes from.
        operand: Operand,
        /// Compute `b op a` (a weight or number first, as in `1 - x`).
        reverse: bool,
        /// The activation fused after it.
        act: Activation,
    },
    /// Joins its inputs along `dim`.
    Concat {
        /// The dimension joined along (not the batch); negative counts from the end.
        dim: i64,
    },
    /// Softmax along `dim`.
    Softmax {
        /// The dimension normalised; negative counts from the end.
        dim: i64,
    },
    /// `identity` and `dropout` (inference): removed when a session is built.
    Identity,
    /// Layer normalisation over the trailing dims `normalized` (their shape), as PyTorch's
    /// `layer_norm`: `y = act((x - mean) / sqrt(var + eps) * weight + bias)`; or, when
    /// `channels` (set only by the passes), over dim 1 of an NCHW tensor at each position.
    LayerNorm {
        /// The trailing dims normalised over, as the file gives them; `[c]` when `channels`.
        normalized: Vec<usize>,
        /// Normalise over the channels (dim 1), not the trailing dims.
        channels: bool,
        /// Scale per normalised element, shaped `normalized`; `None` means 1.
        weight: Option<WeightRef>,
        /// Shift per normalised element; `None` means 0.
        bias: Option<WeightRef>,
        /// Added to the variance before its square root.
        eps: f32,
        /// The activation fused after it.
        act: Activation,
    },
    /// Reorders the dims: output dim i is input dim `dims[i]` (`dims[0]` is 0, the batch).
    Permute {
        /// A permutation of the input's dims.
        dims: Vec<usize>,
    },
    /// The same elements under the shape `(batch, shape...)`; one entry of `shape` may be
    /// -1, inferred from the element count.
    Reshape {
        /// The dims after the batch.
        shape: Vec<i64>,
    },
    /// Elements `start, start + step, ...` below `end` of dim `dim` (never the batch).
    Slice {
        /// The dim sliced; negative counts from the end.
        dim: i64,
        /// First index taken.
        start: usize,
        /// One past the last index that may be taken (clamped to the dim's size).
        end: usize,
        /// Step between indices, at least 1.
        step: usize,
    },
    /// Nearest or bilinear resizing of an (n, c, h, w) tensor to `size`, with PyTorch's
    /// index rule (which depends on whether a scale factor was given).
    Upsample {
        /// (out_h, out_w).
        size: [usize; 2],
        /// The scale factor (h, w) the model gave, if it gave one.
        scales: Option<[f64; 2]>,
        /// Nearest or bilinear.
        mode: Resize,
    },
    /// Transposed 2-D convolution, NCHW, as PyTorch's `conv_transpose2d`.
    ConvTranspose2d {
        /// (c_in, c_out/groups, kh, kw).
        weight: WeightRef,
        /// (c_out), when it has one.
        bias: Option<WeightRef>,
        /// (sh, sw).
        stride: [usize; 2],
        /// Padding taken off each side of the full output (ph, pw).
        pad: [usize; 2],
        /// Extra rows and columns at the bottom and right of the output.
        output_padding: [usize; 2],
        /// (dh, dw).
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// The activation fused after the bias.
        act: Activation,
    },
    /// A PT2E quantize–dequantize pair on an activation: y = (clamp(round(x / scale) +
    /// zero_point, qmin, qmax) − zero_point) · scale, as PyTorch computes it
    /// (`kestrel_kernels::quantize`).
    FakeQuant(QuantParams),
    /// Squeeze-and-excitation's gate, made by the passes from global pool → 1×1 conv →
    /// act → 1×1 conv → sigmoid or hardsigmoid: an (n, c, h, w) input gives (n, c, 1, 1).
    SeGate {
        /// The squeeze conv's weight, (hidden, c, 1, 1).
        w1: WeightRef,
        /// Its bias, (hidden).
        b1: Option<WeightRef>,
        /// Its activation.
        act: Activation,
        /// The excite conv's weight, (c, hidden, 1, 1).
        w2: WeightRef,
        /// Its bias, (c).
        b2: Option<WeightRef>,
        /// Sigmoid or hardsigmoid.
        gate: Activation,
    },
}

/// How [`Op::Upsample`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// `upsample_nearest2d`.
    Nearest,
    /// `upsample_bilinear2d`, with PyTorch's `align_corners`.
    Bilinear {
        /// Whether the corner pixels of input and output are aligned.
        align_corners: bool,
    },
}

/// The op names of the graph JSON, as `GRAPH_FORMAT.md` lists them.
pub const OP_NAMES: &[&str] = &[
    "conv2d",
    "batch_norm",
    "relu",
    "relu6",
    "clamp",
    "leaky_relu",
    "hardsigmoid",
    "hardswish",
    "elu",
    "sigmoid",
    "silu",
    "tanh",
    "gelu",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "mean",
    "linear",
    "flatten",
    "add",
    "sub",
    "mul",
    "div",
    "concat",
    "softmax",
    "identity",
    "dropout",
    "layer_norm",
    "permute",
    "reshape",
    "slice",
    "upsample_nearest2d",
    "upsample_bilinear2d",
    "conv_transpose2d",
    "fake_quant",
];

impl Op {
    /// The op's name in the graph JSON (`dropout` reads back as `identity`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Act(act) => act_op_name(*act),
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
            Op::Mean { .. } => "mean",
            Op::Linear { .. } => "linear",
            Op::Flatten { .. } => "flatten",
            Op::Add { .. } => "add",
            Op::Binary { op, .. } => op.name(),
            Op::Concat { .. } => "concat",
            Op::Softmax { .. } => "softmax",
            Op::Identity => "identity",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Permute { .. } => "permute",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Upsample {
                mode: Resize::Nearest,
                ..
            } => "upsample_nearest2d",
            Op::Upsample { .. } => "upsample_bilinear2d",
            Op::ConvTranspose2d { .. } => "conv_transpose2d",
            Op::FakeQuant(_) => "fake_quant",
            Op::SeGate { .. } => "se_gate",
            Op::QConv2d { .. } => "qconv2d",
            Op::QAdd { .. } => "qadd",
            Op::QLut { .. } => "qlut",
            Op::QMaxPool { .. } => "qmax_pool2d",
            Op::QLinear { .. } => "qlinear",
        }
    }

    /// The weights this op holds, for counting parameters.
    pub fn weights(&self) -> Vec<&WeightRef> {
        match self {
            Op::Conv2d { weight, bias, .. }
            | Op::Linear { weight, bias, .. }
            | Op::ConvTranspose2d { weight, bias, .. } => {
                std::iter::once(weight).chain(bias).collect()
            }
            Op::LayerNorm { weight, bias, .. } => weight.iter().chain(bias).collect(),
            Op::SeGate { w1, b1, w2, b2, .. } => [Some(w1), b1.as_ref(), Some(w2), b2.as_ref()]
                .into_iter()
                .flatten()
                .collect(),
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
            Op::Binary {
                operand: Operand::Weight(w),
                ..
            } => vec![w],
            Op::QConv2d { conv, .. } => conv.weights(),
            Op::QLinear { linear, .. } => linear.weights(),
            _ => Vec::new(),
        }
    }
}

/// The second operand of a binary op.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// The node's second input.
    Value,
    /// A weight of the file, broadcast against the input.
    Weight(WeightRef),
    /// A number.
    Scalar(f32),
}

/// The graph op that is `act`.
pub(crate) fn act_op_name(act: Activation) -> &'static str {
    match act {
        Activation::None => "identity",
        Activation::Relu => "relu",
        Activation::Relu6 => "relu6",
        Activation::Clamp { .. } => "clamp",
        Activation::LeakyRelu(_) => "leaky_relu",
        Activation::HardSigmoid => "hardsigmoid",
        Activation::HardSwish => "hardswish",
        Activation::Elu(_) => "elu",
        Activation::Sigmoid => "sigmoid",
        Activation::Silu => "silu",
        Activation::Tanh => "tanh",
        Activation::Gelu | Activation::GeluTanh => "gelu",
    }
}

/// A validated graph: names unique, every reference resolved, nodes topologically sorted,
/// every weight present with the shape its op needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The graph's inputs, in the order `run` takes them.
    pub inputs: Vec<GraphInput>,
    /// The nodes, in topological order.
    pub nodes: Vec<Node>,
    /// The values the graph returns, in order.
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
