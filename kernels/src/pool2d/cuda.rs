//! max_pool2d and avg_pool2d on the GPU: `max_pool2d_f32` and `avg_pool2d_f32` in
//! `pool2d.cu`, one thread per output value. Window and divisor rules are the
//! reference's (PyTorch's), explained in the `.cu`.

use super::Pool2dParams;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "pool2d.cu",
    code: include_str!("pool2d.cu"),
};

/// Threads per block of both kernels (their `THREADS`).
const THREADS: usize = 256;

/// x is `Arg::Input(0)`: (n, c, h, w); y is `Arg::Output`: (n, c, oh, ow).
pub fn max_pool2d(p: &Pool2dParams) -> Result<CudaOp, CudaError> {
    let mut defines = layer_defines(p)?;
    defines.extend([
        ("POOL_MAX", 1),
        ("DIL_H", p.dilation[0] as i64),
        ("DIL_W", p.dilation[1] as i64),
    ]);
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![launch_pool2d(p, "max_pool2d_f32", defines)],
    })
}

/// x is `Arg::Input(0)`: (n, c, h, w); y is `Arg::Output`: (n, c, oh, ow).
/// The dilation must be [1, 1], as in PyTorch.
pub fn avg_pool2d(p: &Pool2dParams) -> Result<CudaOp, CudaError> {
    ensure(
        p.dilation == [1, 1],
        "avg_pool2d",
        format_args!("dilation must be [1, 1], got {:?}", p.dilation),
    )?;
    let mut defines = layer_defines(p)?;
    // Its own int arithmetic: the window's end o * STRIDE - PAD + K (the taps' with one
    // more tap), IN + PAD, and the divisor, at most K_H * K_W.
    let (oh, ow) = p.output_hw();
    for (axis, out, i) in [("h", oh, 0), ("w", ow, 1)] {
        let window = [out, p.kernel[i] + 1, p.stride[i], p.pad[i], 1];
        check_window_indexable("avg_pool2d", axis, window)?;
    }
    for (what, v) in [
        ("h + pad", p.h + p.pad[0]),
        ("w + pad", p.w + p.pad[1]),
        ("the kernel's area", p.kernel[0] * p.kernel[1]),
    ] {
        ensure(
            v <= i32::MAX as usize,
            "avg_pool2d",
            format_args!("{what} is {v}, over 2^31 - 1"),
        )?;
    }
    defines.extend([
        ("POOL_MAX", 0),
        ("COUNT_INCLUDE_PAD", p.count_include_pad as i64),
    ]);
    Ok(CudaOp {
        consts: Vec::new(),
        launches: vec![launch_pool2d(p, "avg_pool2d_f32", defines)],
    })
}

/// One thread per output value, `THREADS` a block.
fn launch_pool2d(
    p: &Pool2dParams,
    entry: &'static str,
    defines: Vec<(&'static str, i64)>,
) -> Launch {
    let outputs: usize = p.output_shape().iter().product();
    Launch {
        source: &SOURCE,
        entry,
        defines,
        grid: [blocks(outputs, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    }
}

/// The shapes and window attributes both kernels share.
fn layer_defines(p: &Pool2dParams) -> Result<Vec<(&'static str, i64)>, CudaError> {
    let [n, c, oh, ow] = p.output_shape();
    // The kernels index with 32-bit ints.
    for (what, len) in [("input", n * c * p.h * p.w), ("output", n * c * oh * ow)] {
        check_int_indexable("pool2d", what, len)?;
    }
    for (axis, out, i) in [("h", oh, 0), ("w", ow, 1)] {
        let window = [out, p.kernel[i], p.stride[i], p.pad[i], p.dilation[i]];
        check_window_indexable("pool2d", axis, window)?;
    }
    Ok(vec![
        ("NC", (n * c) as i64),
        ("IN_H", p.h as i64),
        ("IN_W", p.w as i64),
        ("OUT_H", oh as i64),
        ("OUT_W", ow as i64),
        ("K_H", p.kernel[0] as i64),
        ("K_W", p.kernel[1] as i64),
        ("STRIDE_H", p.stride[0] as i64),
        ("STRIDE_W", p.stride[1] as i64),
        ("PAD_H", p.pad[0] as i64),
        ("PAD_W", p.pad[1] as i64),
    ])
}

/// Ok when the window coordinates the pool and conv kernels compute along one axis
/// fit an int. For output o < out and tap t < k they compute `o * STRIDE - PAD + t * DIL`
/// left to right in 32-bit ints, so every partial result lies between -pad and the
/// largest of (out - 1) * stride, (k - 1) * dil and their sum less pad. A tensor of fewer
/// than 2^31 elements can still go past: an axis almost 2^31 long, with padding.
/// `window`: [out, k, stride, pad, dil].
pub(crate) fn check_window_indexable(
    op: &str,
    axis: &str,
    window: [usize; 5],
) -> Result<(), CudaError> {
    let [out, k, stride, pad, dil] = window;
    let last = out.saturating_sub(1) * stride;
    let taps = k.saturating_sub(1) * dil;
    let reach = [last, taps, pad, (last + taps).saturating_sub(pad)]
        .into_iter()
        .max()
        .unwrap_or(0);
    ensure(
        reach <= i32::MAX as usize,
        op,
        format_args!("window coordinates along {axis} reach {reach}, over 2^31 - 1"),
    )
}
