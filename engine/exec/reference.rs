//! The reference executor: every kernel call goes to the plain-loop oracle.

use super::simd::{q_in, q_out};
use super::Io;
use crate::lower::Kernel;
use kestrel_kernels as k;
use kestrel_kernels::quantize::qconv::{QIn, QOut};
use kestrel_kernels::Activation;

/// Floats of scratch `run` needs for `kernel` (the SE gate's pooled and hidden vectors).
pub(super) fn scratch_len(kernel: &Kernel) -> usize {
    match kernel {
        Kernel::SeGate { p, .. } => p.scratch_len(),
        _ => 0,
    }
}

pub(super) fn run(kernel: &Kernel, io: &Io<'_>, y: &mut [f32], scratch: &mut [f32]) {
    let x = |i: usize| io.input(i);
    match kernel {
        Kernel::QConv2d {
            q,
            weight,
            bias,
            bytes_in,
            bytes_out,
            ..
        }
        // A linear's QConv2d is the 1×1 conv on a 1×1 image: (n, in) is (n, in, 1, 1).
        | Kernel::QLinear {
            q,
            weight,
            bias,
            bytes_in,
            bytes_out,
        } => {
            // The integer oracle, on x quantized as the SIMD kernel quantizes it.
            let x_q: Vec<i32> = match q_in(x(0), *bytes_in) {
                QIn::U8(b) => b
                    .iter()
                    .map(|&b| i32::from(b) - q.x.dtype.byte_shift())
                    .collect(),
                QIn::F32(v) => v
                    .iter()
                    .map(|&v| k::quantize::reference::quantize(&q.x, v))
                    .collect(),
            };
            let w: Vec<i32> = weight.values.iter().map(|&v| i32::from(v)).collect();
            let out = q.reference(&x_q, &w, bias.as_deref());
            if let Kernel::QConv2d { add: Some(add), .. } = kernel {
                // Then the add's oracle, on the conv's output as bytes and the residual's.
                let shift = q.y.dtype.byte_shift();
                let conv: Vec<u8> = out.iter().map(|&v| (v + shift) as u8).collect();
                let residual = q_in(x(1), true);
                return add.reference(QIn::U8(&conv), residual, q_out(y, *bytes_out));
            }
            match q_out(y, *bytes_out) {
                QOut::U8(y) => {
                    for (y, v) in y.iter_mut().zip(out) {
                        *y = (v + q.y.dtype.byte_shift()) as u8;
                    }
                }
                QOut::F32(y) => {
                    for (y, v) in y.iter_mut().zip(out) {
                        *y = k::quantize::reference::dequantize(&q.y, v);
                    }
                }
            }
        }
        Kernel::QAdd {
            q,
            bytes_in,
            bytes_out,
        } => {
            let [a, b] = [0, 1].map(|i| q_in(x(i), bytes_in[i]));
            q.reference(a, b, q_out(y, *bytes_out))
        }
        Kernel::QMaxPool {
            pool,
            bytes_in,
            bytes_out,
        } => pool.reference(q_in(x(0), *bytes_in), q_out(y, *bytes_out)),
        Kernel::QLut {
            lut,
            bytes_in,
            bytes_out,
            ..
        } => lut.reference(q_in(x(0), *bytes_in), q_out(y, *bytes_out)),
        Kernel::Conv2d {
            p,
            weight,
            bias,
            residual,
            act,
            in_scale,
        } => {
            let scale = in_scale.then(|| x(1 + *residual as usize));
            k::conv2d::reference::conv2d_scaled(p, x(0), scale, weight, bias.as_deref(), y);
            epilogue(y, residual.then(|| x(1)), *act);
        }
        Kernel::BatchNorm {
            p,
            weight,
            bias,
            mean,
            var,
        } => k::batch_norm::reference::batch_norm(
            p,
            x(0),
            weight.as_deref(),
            bias.as_deref(),
            mean,
            var,
            y,
        ),
        Kernel::Act(a) => k::activation::reference::activate(*a, x(0), y),
        Kernel::Binary {
            p,
            op,
            operands,
            act,
        } => {
            let (a, b) = operands.pick(|i| io.input(i));
            k::binary::reference::binary(p, *op, a, b, *act, y)
        }
        Kernel::MaxPool2d(p) => k::pool2d::reference::max_pool2d(p, x(0), y),
        Kernel::AvgPool2d(p) => k::pool2d::reference::avg_pool2d(p, x(0), y),
        Kernel::AdaptiveAvgPool2d(p) => {
            k::adaptive_avg_pool2d::reference::adaptive_avg_pool2d(p, x(0), y)
        }
        Kernel::Mean(p) => k::mean::reference::mean_hw(p, x(0), y),
        Kernel::Linear {
            p,
            weight,
            bias,
            act,
        } => {
            k::linear::reference::linear(p, x(0), weight, bias.as_deref(), y);
            epilogue(y, None, *act);
        }
        Kernel::Add { act } => {
            k::add::reference::add(x(0), x(1), y);
            epilogue(y, None, *act);
        }
        Kernel::Concat { outer, inner } => {
            let total: usize = inner.iter().sum();
            let mut at = 0;
            for (i, &n) in inner.iter().enumerate() {
                k::concat::reference::concat_part(*outer, x(i), n, at, total, y);
                at += n;
            }
        }
        Kernel::Softmax(p) => k::softmax::reference::softmax(p, x(0), y),
        Kernel::Alias | Kernel::View { .. } => {}
        Kernel::LayerNorm {
            p,
            weight,
            bias,
            act,
        } => k::layer_norm::reference::layer_norm(
            p,
            x(0),
            weight.as_deref(),
            bias.as_deref(),
            *act,
            y,
        ),
        Kernel::Copy(p) => k::copy::reference::copy(p, x(0), y),
        Kernel::SeGate { p, w, b } => k::se_gate::reference::se_gate(
            p,
            x(0),
            [&w[0], &w[1]],
            [b[0].as_deref(), b[1].as_deref()],
            y,
            scratch,
        ),
        Kernel::Upsample(p) => k::upsample::reference::upsample(p, x(0), y),
        Kernel::FakeQuant(p) => k::quantize::reference::fake_quant_slice(p, x(0), y),
        Kernel::ConvTranspose2d {
            p,
            weight,
            bias,
            act,
        } => k::conv_transpose2d::reference::conv_transpose2d(
            p,
            x(0),
            weight,
            bias.as_deref(),
            *act,
            y,
        ),
    }
}

/// The fused tail of a reference kernel, in the order the fast kernels apply it:
/// y = act(y + residual).
fn epilogue(y: &mut [f32], residual: Option<&[f32]>, act: Activation) {
    if let Some(r) = residual {
        y.iter_mut().zip(r).for_each(|(v, r)| *v += r);
    }
    if act != Activation::None {
        let apply = k::activation::reference::apply;
        y.iter_mut().for_each(|v| *v = apply(act, *v));
    }
}
