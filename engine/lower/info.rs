//! What the tables and the profiler say of a kernel call: its label, its floating-point
//! operations and the constants it reads.

use super::{Data, Kernel};
use crate::graph::Activation;
use kestrel_kernels::quantize::conv::QConv2d;
use kestrel_kernels::quantize::qdw::QDepthwiseCpu;
use kestrel_kernels::upsample::UpsampleMode;

impl Kernel {
    /// A short name for tables: the op, with the fused parts.
    pub(crate) fn label(&self) -> String {
        let act = |a: &Activation| match a {
            Activation::None => String::new(),
            a => format!("+{}", a.describe()),
        };
        match self {
            Kernel::Conv2d {
                p,
                residual,
                act: a,
                in_scale,
                ..
            } => {
                let kind = match p.depthwise_multiplier() {
                    Some(_) if !in_scale => "dwconv",
                    _ => "conv",
                };
                let scale = if *in_scale { "+in_scale" } else { "" };
                let add = if *residual { "+add" } else { "" };
                let [kh, kw, s] = [p.kh, p.kw, p.stride[0]];
                format!("{kind}{kh}x{kw}s{s}{scale}{add}{}", act(a))
            }
            Kernel::BatchNorm { .. } => "batch_norm".into(),
            Kernel::Act(a) => a.describe(),
            Kernel::MaxPool2d(_) => "max_pool2d".into(),
            Kernel::AvgPool2d(_) => "avg_pool2d".into(),
            Kernel::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d".into(),
            Kernel::Mean(_) => "mean".into(),
            Kernel::Linear { act: a, .. } => format!("linear{}", act(a)),
            Kernel::Add { act: a } => format!("add{}", act(a)),
            Kernel::Binary { op, act: a, .. } => format!("{}{}", op.name(), act(a)),
            Kernel::Concat { .. } => "concat".into(),
            Kernel::Softmax(_) => "softmax".into(),
            Kernel::Alias => "alias".into(),
            Kernel::LayerNorm { act: a, .. } => format!("layer_norm{}", act(a)),
            Kernel::Copy(_) => "copy".into(),
            Kernel::View { .. } => "view".into(),
            Kernel::FakeQuant(p) => format!("fake_quant_{}", p.dtype.name()),
            Kernel::QConv2d {
                q,
                bytes_in,
                bytes_out,
                add,
                ..
            } => {
                let p = &q.p;
                let relu = match add {
                    // A fused residual add, and its relu.
                    Some(a) => format!("{}+add{}", act_note(q), if a.relu { "+relu" } else { "" }),
                    None => act_note(q).to_string(),
                };
                let bytes = bytes_note(*bytes_in, *bytes_out);
                let dtype = add.map_or(q.y.dtype, |a| a.y.dtype).name();
                // The int8 depthwise kernel's convs (kernels/src/quantize/qdw).
                let kind = match QDepthwiseCpu::applies(q) {
                    true => "qdwconv",
                    false => "qconv",
                };
                format!(
                    "{kind}{}x{}s{}{relu}_{dtype}{bytes}",
                    p.kh, p.kw, p.stride[0]
                )
            }
            Kernel::QAdd {
                q,
                bytes_in,
                bytes_out,
            } => {
                let relu = if q.relu { "+relu" } else { "" };
                let bytes = bytes_note(bytes_in.iter().any(|&b| b), *bytes_out);
                format!("qadd{relu}_{}{bytes}", q.y.dtype.name())
            }
            Kernel::QMaxPool {
                pool,
                bytes_in,
                bytes_out,
            } => {
                let bytes = bytes_note(*bytes_in, *bytes_out);
                format!("qmax_pool2d_{}{bytes}", pool.y().dtype.name())
            }
            Kernel::QLut {
                lut,
                act,
                bytes_in,
                bytes_out,
            } => {
                let bytes = bytes_note(*bytes_in, *bytes_out);
                format!("qlut_{}_{}{bytes}", act.describe(), lut.y().dtype.name())
            }
            Kernel::QLinear {
                q,
                bytes_in,
                bytes_out,
                ..
            } => {
                let relu = act_note(q);
                let bytes = bytes_note(*bytes_in, *bytes_out);
                format!("qlinear{relu}_{}{bytes}", q.y.dtype.name())
            }
            Kernel::Upsample(p) => match p.mode {
                UpsampleMode::Nearest => "upsample_nearest".into(),
                UpsampleMode::Bilinear { .. } => "upsample_bilinear".into(),
            },
            Kernel::SeGate { p, .. } => {
                format!("se_gate+{}+{}", p.act.describe(), p.gate.describe())
            }
            Kernel::ConvTranspose2d { p, act: a, .. } => {
                format!("convT{}x{}s{}{}", p.kh, p.kw, p.stride[0], act(a))
            }
        }
    }

    /// Floating-point operations of one call, counting a multiply-add as two and a
    /// compare or an add as one.
    pub(crate) fn flops(&self, out_elems: usize) -> u64 {
        let out = out_elems as u64;
        match self {
            // The input scale: one multiply per input element, the mul it replaces.
            Kernel::Conv2d { p, in_scale, .. } => {
                p.flops() + *in_scale as u64 * (p.n * p.c_in * p.h * p.w) as u64
            }
            Kernel::Linear { p, .. } => p.flops(),
            // Integer multiply-adds, counted as FLOPs are.
            Kernel::QConv2d { q, .. } | Kernel::QLinear { q, .. } => q.p.flops(),
            Kernel::MaxPool2d(p) | Kernel::AvgPool2d(p) => out * (p.kernel[0] * p.kernel[1]) as u64,
            Kernel::AdaptiveAvgPool2d(p) => (p.n * p.c * p.h * p.w) as u64,
            Kernel::Mean(p) => (p.n * p.c * p.h * p.w) as u64,
            Kernel::BatchNorm { .. } => 2 * out,
            Kernel::Alias | Kernel::View { .. } | Kernel::Concat { .. } | Kernel::Copy(_) => 0,
            // A multiply-add per tap, as a conv of the output's size would count.
            Kernel::ConvTranspose2d { p, .. } => {
                2 * (p.n * p.c_in * p.h * p.w * (p.c_out / p.groups) * p.kh * p.kw) as u64
            }
            // The pool, then a multiply-add per weight of each layer.
            Kernel::SeGate { p, .. } => (p.n * p.c * (p.hw + 4 * p.hidden)) as u64,
            // Mean, variance, normalise, scale and shift: about five per element.
            Kernel::LayerNorm { .. } => 5 * out,
            // Multiply, round, add, clamp (two), subtract, multiply.
            Kernel::FakeQuant(_) => 7 * out,
            // Two dequantizes, the add, the relu, a quantize.
            Kernel::QAdd { .. } => 12 * out,
            // A quantize (f32 inputs) or none, and a lookup.
            Kernel::QLut { .. } => out,
            Kernel::QMaxPool { pool, .. } => out * pool.taps() as u64,
            Kernel::Upsample(p) => match p.mode {
                UpsampleMode::Nearest => 0,
                UpsampleMode::Bilinear { .. } => 6 * out,
            },
            Kernel::Act(_) | Kernel::Add { .. } | Kernel::Binary { .. } | Kernel::Softmax(_) => out,
        }
    }

    /// Floats of constants one call must read: weights and bias as stored, unpadded; a
    /// batch norm's scale and shift (both executors fold its four vectors into those two).
    /// Counted from the params where an executor may have released the data
    /// ([`Kernel::release_packed_weights`]).
    pub(crate) fn weight_len(&self) -> usize {
        let len = |b: &Option<Data>| b.as_ref().map_or(0, |b| b.len());
        let some = |b: &Option<Data>, n: usize| if b.is_some() { n } else { 0 };
        let product = |shape: [usize; 4]| shape.iter().product::<usize>();
        match self {
            Kernel::Conv2d { p, bias, .. } => product(p.weight_shape()) + some(bias, p.c_out),
            Kernel::Linear { p, bias, .. } => {
                p.in_features * p.out_features + some(bias, p.out_features)
            }
            Kernel::ConvTranspose2d { p, bias, .. } => {
                product(p.weight_shape()) + some(bias, p.c_out)
            }
            Kernel::LayerNorm { weight, bias, .. } => len(weight) + len(bias),
            Kernel::SeGate { p, b, .. } => {
                2 * p.c * p.hidden + some(&b[0], p.hidden) + some(&b[1], p.c)
            }
            Kernel::BatchNorm { p, .. } => 2 * p.c,
            // Bytes, not floats: a quarter of a float per weight.
            Kernel::QConv2d { q, bias, .. } | Kernel::QLinear { q, bias, .. } => {
                product(q.p.weight_shape()).div_ceil(4) + some(bias, q.p.c_out)
            }
            Kernel::Binary { operands, .. } => operands.constant().map_or(0, <[f32]>::len),
            _ => 0,
        }
    }

    /// The constants an executor packs or uploads into buffers of its own when the session
    /// is built: conv, linear, conv-transpose and SE gate weights and biases, a batch
    /// norm's four vectors. Layer-norm weights and binary constants are not among them:
    /// the kernels read those from the plan on every run.
    fn packed_weights(&mut self) -> Vec<&mut Data> {
        match self {
            Kernel::Conv2d { weight, bias, .. }
            | Kernel::Linear { weight, bias, .. }
            | Kernel::ConvTranspose2d { weight, bias, .. } => {
                std::iter::once(weight).chain(bias).collect()
            }
            Kernel::SeGate {
                w: [w1, w2],
                b: [b1, b2],
                ..
            } => [Some(w1), Some(w2), b1.as_mut(), b2.as_mut()]
                .into_iter()
                .flatten()
                .collect(),
            Kernel::BatchNorm {
                weight,
                bias,
                mean,
                var,
                ..
            } => [Some(mean), Some(var), weight.as_mut(), bias.as_mut()]
                .into_iter()
                .flatten()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Drops the constants a CPU SIMD or CUDA executor has packed or uploaded
    /// ([`Kernel::packed_weights`]), and releases the model file's pages of the mapped
    /// ones: such a session never reads them again, and the plan's copy (a folded conv's
    /// weights are an owned copy the size of the original) would only sit in memory beside
    /// the packed one. Whether it had any.
    pub(crate) fn release_packed_weights(&mut self) -> bool {
        let weights = self.packed_weights();
        let any = !weights.is_empty();
        for d in weights {
            d.release_pages();
            *d = Data::default();
        }
        any
    }

    /// Computes the packed constants that are computed on first read (folded weights,
    /// `F32Data::scaled`) now, for an executor that reads them from the plan on every
    /// run (the reference kernels): so that no run computes, or allocates, them.
    pub(crate) fn compute_weights(&mut self) {
        for d in self.packed_weights() {
            let _: &[f32] = d;
        }
    }
}

/// An int8 op's label's note of which of its values are stored as bytes.
fn bytes_note(bytes_in: bool, bytes_out: bool) -> &'static str {
    match (bytes_in, bytes_out) {
        (true, true) => " (bytes in, out)",
        (true, false) => " (bytes in)",
        (false, true) => " (bytes out)",
        (false, false) => "",
    }
}

/// An int8 conv's or linear's label's note of what follows its sums: a folded clamp, or
/// a relu.
fn act_note(q: &QConv2d) -> &'static str {
    match (q.relu, q.clamp.is_some()) {
        (_, true) => "+clamp",
        (true, false) => "+relu",
        (false, false) => "",
    }
}
