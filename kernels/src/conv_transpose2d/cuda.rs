//! conv_transpose2d on the GPU: `conv_transpose2d_f32` in `conv_transpose2d.cu`, one
//! thread per output value gathering its taps, the weight (and bias) uploaded once as
//! constants, the activation fused.

use super::ConvTranspose2dParams;
use crate::activation::cuda::act_defines;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "conv_transpose2d.cu",
    code: include_str!("conv_transpose2d.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// x is `Arg::Input(0)`: (n, c_in, h, w); y is `Arg::Output`: (n, c_out, oh, ow).
/// `consts[0]` is `weight`: (c_in, c_out/groups, kh, kw) as PyTorch stores it;
/// `consts[1]` is `bias`: (c_out), when given.
pub fn conv_transpose2d(
    p: &ConvTranspose2dParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<CudaOp, CudaError> {
    const OP: &str = "conv_transpose2d";
    p.validate().map_err(|e| CudaError::Unsupported {
        op: OP.into(),
        detail: e.0,
    })?;
    let w_len: usize = p.weight_shape().iter().product();
    ensure(
        weight.len() == w_len,
        OP,
        format_args!("{} weights for shape {:?}", weight.len(), p.weight_shape()),
    )?;
    if let Some(b) = bias {
        ensure(
            b.len() == p.c_out,
            OP,
            format_args!("{} biases for {} output channels", b.len(), p.c_out),
        )?;
    }
    // The kernel indexes with 32-bit ints, and computes oy + PAD - ky * DIL and
    // (oy + PAD) / STRIDE in them.
    let [n, c_out, oh, ow] = p.output_shape();
    check_int_indexable(OP, "input", p.in_len())?;
    check_int_indexable(OP, "weight", w_len)?;
    check_int_indexable(OP, "output", p.out_len())?;
    for (axis, out, k, i) in [("h", oh, p.kh, 0), ("w", ow, p.kw, 1)] {
        let reach = [out + p.pad[i], (k - 1) * p.dilation[i]];
        ensure(
            reach.iter().all(|&v| v <= i32::MAX as usize),
            OP,
            format_args!("tap coordinates along {axis} reach {reach:?}, over 2^31 - 1"),
        )?;
    }
    let mut defines = vec![
        ("N", n as i64),
        ("C_IN", p.c_in as i64),
        ("IN_H", p.h as i64),
        ("IN_W", p.w as i64),
        ("C_OUT", c_out as i64),
        ("OUT_H", oh as i64),
        ("OUT_W", ow as i64),
        ("K_H", p.kh as i64),
        ("K_W", p.kw as i64),
        ("STRIDE_H", p.stride[0] as i64),
        ("STRIDE_W", p.stride[1] as i64),
        ("PAD_H", p.pad[0] as i64),
        ("PAD_W", p.pad[1] as i64),
        ("DIL_H", p.dilation[0] as i64),
        ("DIL_W", p.dilation[1] as i64),
        ("GROUPS", p.groups as i64),
        ("HAS_BIAS", bias.is_some() as i64),
    ];
    defines.extend(act_defines(act));
    let mut args = vec![Arg::Input(0), Arg::Const(0)];
    let mut consts = vec![weight.to_vec()];
    if let Some(b) = bias {
        args.push(Arg::Const(1));
        consts.push(b.to_vec());
    }
    args.push(Arg::Output);
    Ok(CudaOp {
        consts,
        launches: vec![Launch {
            source: &SOURCE,
            entry: "conv_transpose2d_f32",
            defines,
            grid: [blocks(p.out_len(), THREADS), 1, 1],
            block: [THREADS as u32, 1, 1],
            shared_bytes: 0,
            args,
        }],
    })
}
