//! The SIMD executor: the one place where each lowered kernel call is dispatched to the
//! fast kernel for its shape. Weights are packed here, once, when the session is built.

use super::Io;
use crate::lower::Kernel;
use kestrel_kernels as k;
use kestrel_kernels::conv2d::cpu::CpuConv;
use kestrel_kernels::conv2d::ExactWeights;
use kestrel_kernels::conv_transpose2d::ConvTranspose2dCpu;
use kestrel_kernels::linear::cpu::LinearCpu;
use kestrel_kernels::quantize::qconv::{QConvCpu, QIn, QOut};
use kestrel_kernels::quantize::qdw::QDepthwiseCpu;
use kestrel_kernels::quantize::qlinear::QLinearCpu;
use kestrel_kernels::quantize::qmaxpool::QMaxPool;
use kestrel_kernels::quantize::QIsa;
use kestrel_kernels::se_gate::cpu::SeGateCpu;
use kestrel_kernels::{Activation, Isa};
use kestrel_loader::F32Data as Data;
use std::sync::Arc;

/// What a step keeps from session build: packed weights, folded constants.
pub(crate) enum Prepared {
    /// Whichever kernel `CpuConv::new` picks for the conv's shape.
    Conv(CpuConv),
    Linear(LinearCpu),
    ConvTranspose(ConvTranspose2dCpu),
    SeGate(SeGateCpu),
    /// The int8 conv on the best int8 path the session's ISA allows.
    QConv(QConvCpu),
    /// The int8 max pool (its scratch: the input as bytes).
    QMaxPool(Box<QMaxPool>),
    /// The int8 linear on the best int8 path the session's ISA allows.
    QLinear(QLinearCpu),
    /// A depthwise int8 conv, on the f32 vectors of that path.
    QDepthwise(Box<QDepthwiseCpu>),
    /// Standalone batch norm as y = x·scale[c] + shift[c].
    ScaleShift {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Nothing,
}

impl Prepared {
    /// The conv algorithm chosen for this step (`CpuConv::name`), None for other kernels.
    pub(crate) fn algorithm(&self) -> Option<&'static str> {
        match self {
            Prepared::Conv(c) => Some(c.name()),
            Prepared::QConv(c) => Some(match c.qisa() {
                QIsa::Avx512Vnni => "int8-gemm-avx512-vnni",
                QIsa::AvxVnni => "int8-gemm-avx-vnni",
                QIsa::Avx2 => "int8-gemm-avx2",
                QIsa::Scalar => "int8-gemm-scalar",
            }),
            Prepared::QLinear(l) => Some(match l.qisa() {
                QIsa::Avx512Vnni => "int8-gemv-avx512-vnni",
                QIsa::AvxVnni => "int8-gemv-avx-vnni",
                QIsa::Avx2 => "int8-gemv-avx2",
                QIsa::Scalar => "int8-gemv-scalar",
            }),
            Prepared::QDepthwise(c) => Some(match (c.sums_bytes(), c.qisa().float_isa()) {
                (true, _) => "int8-depthwise-avx512-vnni",
                (false, Isa::Avx512) => "int8-depthwise-avx512",
                (false, Isa::Avx2) => "int8-depthwise-avx2",
                (false, Isa::Scalar) => "int8-depthwise-scalar",
            }),
            _ => None,
        }
    }

    pub(crate) fn scratch_len(&self, threads: usize) -> usize {
        match self {
            Prepared::Conv(c) => c.scratch_len(threads),
            Prepared::ConvTranspose(c) => c.scratch_len(threads),
            Prepared::SeGate(g) => g.scratch_len(),
            Prepared::QConv(c) => c.scratch_len(threads),
            Prepared::QMaxPool(p) => p.scratch_len(threads),
            Prepared::QLinear(l) => l.scratch_len(threads),
            Prepared::QDepthwise(c) => c.scratch_len(threads),
            _ => 0,
        }
    }
}

pub(crate) fn prepare(kernel: &Kernel, isa: Isa) -> Prepared {
    match kernel {
        Kernel::Conv2d {
            p,
            weight,
            bias,
            in_scale,
            ..
        } => Prepared::Conv(CpuConv::with_exact(
            p,
            weight,
            bias.as_deref(),
            isa,
            *in_scale,
            Some(exact_weights(weight)),
        )),
        Kernel::QConv2d {
            q,
            weight,
            bias,
            add,
            ..
        } => {
            let (w, bias, qisa) = (&weight.values, bias.as_deref(), QIsa::for_isa(isa));
            // The int8 pass fuses adds into the GEMM's convs only.
            match (QDepthwiseCpu::applies(q), add) {
                (true, None) => {
                    Prepared::QDepthwise(Box::new(QDepthwiseCpu::new(q, w, bias, qisa)))
                }
                (_, None) => Prepared::QConv(QConvCpu::new(q, w, bias, qisa)),
                (_, Some(add)) => Prepared::QConv(QConvCpu::new(q, w, bias, qisa).with_add(*add)),
            }
        }
        Kernel::QMaxPool { pool, .. } => Prepared::QMaxPool(pool.clone()),
        Kernel::QLinear {
            q, weight, bias, ..
        } => Prepared::QLinear(QLinearCpu::new(
            q,
            &weight.values,
            bias.as_deref(),
            QIsa::for_isa(isa),
        )),
        Kernel::Linear {
            p, weight, bias, ..
        } => Prepared::Linear(LinearCpu::new(p, weight, bias.as_deref(), isa)),
        Kernel::ConvTranspose2d {
            p, weight, bias, ..
        } => Prepared::ConvTranspose(ConvTranspose2dCpu::new(p, weight, bias.as_deref(), isa)),
        Kernel::SeGate { p, w, b } => Prepared::SeGate(SeGateCpu::new(
            p,
            [&w[0], &w[1]],
            [b[0].as_deref(), b[1].as_deref()],
            isa,
        )),
        Kernel::BatchNorm {
            weight,
            bias,
            mean,
            var,
            p,
        } => {
            let (scale, shift) =
                k::batch_norm::scale_shift(weight.as_deref(), bias.as_deref(), mean, var, p.eps);
            Prepared::ScaleShift { scale, shift }
        }
        _ => Prepared::Nothing,
    }
}

/// What a conv's exact path (Winograd's, for images holding a NaN or an infinity) reads,
/// shared rather than copied: the weights as the file holds them (mapped: no memory until
/// read) with a folded batch norm's factors, or the plan's weights themselves.
fn exact_weights(weight: &Data) -> ExactWeights {
    match weight.scaled_parts() {
        Some((original, factors)) => ExactWeights {
            weight: Arc::new(original.clone()),
            out_scale: Some(Arc::clone(factors)),
        },
        None => ExactWeights {
            weight: Arc::new(weight.clone()),
            out_scale: None,
        },
    }
}

/// What every fast kernel call gets besides its data.
pub(crate) struct Ctx<'a> {
    pub isa: Isa,
    pub threads: usize,
    pub scratch: &'a mut [f32],
}

pub(crate) fn run(kernel: &Kernel, prepared: &Prepared, io: &Io<'_>, y: &mut [f32], ctx: Ctx<'_>) {
    let Ctx {
        isa,
        threads,
        scratch,
    } = ctx;
    let x = |i: usize| io.input(i);
    match (kernel, prepared) {
        (
            Kernel::Conv2d {
                residual,
                act,
                in_scale,
                ..
            },
            Prepared::Conv(c),
        ) => {
            let scale = in_scale.then(|| x(1 + *residual as usize));
            let residual = residual.then(|| x(1));
            c.run_scaled(x(0), scale, residual, *act, y, scratch, threads)
        }
        (
            Kernel::QConv2d {
                bytes_in,
                bytes_out,
                add,
                ..
            },
            Prepared::QConv(c),
        ) => {
            let (x0, y) = (q_in(x(0), *bytes_in), q_out(y, *bytes_out));
            match add {
                // The residual is stored as bytes (passes/int8.rs fuses no other).
                Some(_) => c.run_add(x0, bytes_of(x(1)), y, scratch, threads),
                None => c.run_io(x0, y, scratch, threads),
            }
        }
        (
            Kernel::QConv2d {
                bytes_in,
                bytes_out,
                ..
            },
            Prepared::QDepthwise(c),
        ) => c.run_io(
            q_in(x(0), *bytes_in),
            q_out(y, *bytes_out),
            scratch,
            threads,
        ),
        (
            Kernel::QLinear {
                bytes_in,
                bytes_out,
                ..
            },
            Prepared::QLinear(l),
        ) => l.run_io(
            q_in(x(0), *bytes_in),
            q_out(y, *bytes_out),
            scratch,
            threads,
        ),
        (
            Kernel::QAdd {
                q,
                bytes_in,
                bytes_out,
            },
            _,
        ) => {
            let [a, b] = [0, 1].map(|i| q_in(x(i), bytes_in[i]));
            q.run(isa, a, b, q_out(y, *bytes_out), threads)
        }
        (
            Kernel::QMaxPool {
                bytes_in,
                bytes_out,
                ..
            },
            Prepared::QMaxPool(pool),
        ) => pool.run(
            isa,
            q_in(x(0), *bytes_in),
            q_out(y, *bytes_out),
            scratch,
            threads,
        ),
        (
            Kernel::QLut {
                lut,
                bytes_in,
                bytes_out,
                ..
            },
            _,
        ) => lut.run(isa, q_in(x(0), *bytes_in), q_out(y, *bytes_out), threads),
        (Kernel::Linear { act, .. }, Prepared::Linear(l)) => l.run(x(0), *act, y, threads),
        (Kernel::BatchNorm { p, .. }, Prepared::ScaleShift { scale, shift }) => {
            k::batch_norm::cpu::scale_shift(isa, p, scale, shift, Activation::None, x(0), y)
        }
        (Kernel::Act(a), _) => k::activation::cpu::activate(isa, *a, x(0), y, threads),
        (Kernel::MaxPool2d(p), _) => k::pool2d::cpu::max_pool2d(isa, p, x(0), y, threads),
        (Kernel::AvgPool2d(p), _) => k::pool2d::cpu::avg_pool2d(isa, p, x(0), y, threads),
        (Kernel::AdaptiveAvgPool2d(p), _) => {
            k::adaptive_avg_pool2d::cpu::adaptive_avg_pool2d(isa, p, x(0), y, threads)
        }
        (Kernel::Mean(p), _) => k::mean::cpu::mean_hw(isa, p, x(0), y, threads),
        (Kernel::Add { act }, _) => k::add::cpu::add(isa, x(0), x(1), *act, y, threads),
        (
            Kernel::Binary {
                p,
                op,
                operands,
                act,
            },
            _,
        ) => {
            let (a, b) = operands.pick(|i| io.input(i));
            k::binary::cpu::binary(isa, p, *op, a, b, *act, y, threads)
        }
        (Kernel::Concat { outer, inner }, _) => {
            // A copy at memory speed, split over the threads; writing producers straight
            // into place is the planner's job.
            k::concat::cpu::concat(threads, *outer, |i| x(i), inner, y)
        }
        (Kernel::Softmax(p), _) => k::softmax::cpu::softmax(isa, p, x(0), y),
        (Kernel::Alias | Kernel::View { .. }, _) => {}
        (
            Kernel::LayerNorm {
                p,
                weight,
                bias,
                act,
            },
            _,
        ) => k::layer_norm::cpu::layer_norm(
            isa,
            p,
            x(0),
            weight.as_deref(),
            bias.as_deref(),
            *act,
            y,
            threads,
        ),
        (Kernel::Copy(p), _) => k::copy::cpu::copy(p, x(0), y, threads),
        (Kernel::Upsample(p), _) => k::upsample::cpu::upsample(isa, p, x(0), y, threads),
        (Kernel::FakeQuant(p), _) => k::quantize::cpu::fake_quant(isa, p, x(0), y, threads),
        (Kernel::SeGate { .. }, Prepared::SeGate(g)) => g.run(x(0), y, scratch, threads),
        (Kernel::ConvTranspose2d { act, .. }, Prepared::ConvTranspose(c)) => {
            c.run(x(0), *act, y, scratch, threads)
        }
        (kernel, _) => unreachable!("prepare() made no kernel for {kernel:?}"),
    }
}

/// A value stored as bytes (an int8 op's `bytes_out`): one byte per element, in the
/// first quarter of its slot of floats `v`.
pub(crate) fn bytes_of(v: &[f32]) -> &[u8] {
    // SAFETY: the same memory, a quarter of the bytes the floats hold; any byte is a u8.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()) }
}

/// An int8 op's input, its slot `v` read as bytes or as f32 as `bytes` says.
pub(crate) fn q_in(v: &[f32], bytes: bool) -> QIn<'_> {
    match bytes {
        true => QIn::U8(bytes_of(v)),
        false => QIn::F32(v),
    }
}

/// An int8 op's output, its slot `v` written as bytes or as f32 as `bytes` says.
pub(crate) fn q_out(v: &mut [f32], bytes: bool) -> QOut<'_> {
    let len = v.len();
    match bytes {
        // SAFETY: as for `bytes_of`; every byte pattern is a valid f32 as well.
        true => {
            QOut::U8(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) })
        }
        false => QOut::F32(v),
    }
}
