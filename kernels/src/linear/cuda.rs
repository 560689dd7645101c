//! linear on the GPU. One row (batch 1): `linear_gemv_f32`, a warp per output feature.
//! More rows: the conv implicit GEMM (`conv2d_igemm`, in the session's precision) as a
//! 1×1 conv on a 1×1 image, since the layouts coincide: x (rows, in) = (n, c_in, 1, 1), w (out, in) = (c_out, c_in, 1, 1),
//! y (rows, out) = (n, c_out, 1, 1).

use super::LinearParams;
use crate::conv2d::cuda::{conv2d, epilogue_defines};
use crate::conv2d::Conv2dParams;
use crate::cuda::{blocks, check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::{Activation, Precision};

static SOURCE: Source = Source {
    name: "linear.cu",
    code: include_str!("linear.cu"),
};

/// Warps (= output features) per block of `linear_gemv_f32` (its `WARPS`).
const GEMV_WARPS: usize = 8;

/// The layer as CUDA launches. x is `Arg::Input(0)`: (rows, in_features); y is
/// `Arg::Output`: (rows, out_features). `weight`: (out_features, in_features), as PyTorch;
/// `bias`: (out_features). The GEMV is fp32 whatever `precision` says: one row reads each
/// weight once, so it is bound by memory, not by products.
pub fn linear(
    p: &LinearParams,
    weight: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    precision: Precision,
) -> Result<CudaOp, CudaError> {
    let (len, want) = (weight.len(), p.in_features * p.out_features);
    ensure(
        len == want,
        "linear",
        format_args!("{len} weights for {} x {}", p.out_features, p.in_features),
    )?;
    if let Some(b) = bias {
        let len = b.len();
        ensure(
            len == p.out_features,
            "linear",
            format_args!("{len} biases for {} outputs", p.out_features),
        )?;
    }
    if p.rows > 1 {
        return conv2d(&as_conv(p), weight, bias, false, act, precision);
    }
    // The kernel indexes with 32-bit ints; x, y and bias are shorter than the weight.
    check_int_indexable("linear", "weight", weight.len())?;
    let mut consts = vec![weight.to_vec()];
    consts.extend(bias.map(<[f32]>::to_vec));
    Ok(CudaOp {
        consts,
        launches: vec![launch_linear_gemv_f32(p, bias.is_some(), act)],
    })
}

/// One warp per output feature, `GEMV_WARPS` warps a block.
fn launch_linear_gemv_f32(p: &LinearParams, bias: bool, act: Activation) -> Launch {
    let mut defines = vec![
        ("IN_F", p.in_features as i64),
        ("OUT_F", p.out_features as i64),
    ];
    // No residual: the GEMV has no such argument.
    defines.extend(
        epilogue_defines(bias, false, act)
            .into_iter()
            .filter(|(name, _)| *name != "HAS_RESIDUAL"),
    );
    let mut args = vec![Arg::Input(0), Arg::Const(0)];
    if bias {
        args.push(Arg::Const(1));
    }
    args.push(Arg::Output);
    Launch {
        source: &SOURCE,
        entry: "linear_gemv_f32",
        defines,
        grid: [blocks(p.out_features, GEMV_WARPS), 1, 1],
        block: [(GEMV_WARPS * 32) as u32, 1, 1],
        shared_bytes: 0,
        args,
    }
}

/// The same layer as a 1×1 conv over `rows` images of 1×1 pixels.
fn as_conv(p: &LinearParams) -> Conv2dParams {
    Conv2dParams {
        n: p.rows,
        c_in: p.in_features,
        h: 1,
        w: 1,
        c_out: p.out_features,
        kh: 1,
        kw: 1,
        stride: [1, 1],
        pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_is_a_gemv_more_rows_a_conv() {
        let p = LinearParams {
            rows: 1,
            in_features: 3,
            out_features: 9,
        };
        let w = [0.25; 27];
        let op = linear(&p, &w, Some(&[1.0; 9]), Activation::Relu, Precision::Tf32).unwrap();
        let l = &op.launches[0];
        assert_eq!(l.entry, "linear_gemv_f32");
        assert_eq!(l.grid, [2, 1, 1]);
        assert_eq!(
            l.args,
            [Arg::Input(0), Arg::Const(0), Arg::Const(1), Arg::Output]
        );
        assert_eq!(
            l.defines,
            [("IN_F", 3), ("OUT_F", 9), ("HAS_BIAS", 1), ("ACT", 1)]
        );

        let rows = LinearParams { rows: 4, ..p };
        let op = linear(&rows, &w, None, Activation::None, Precision::Tf32).unwrap();
        assert_eq!(op.launches[0].entry, "conv2d_igemm");
        assert!(op.launches[0].defines.contains(&("MATH", 1)));
        assert_eq!(
            op.launches[0].args,
            [Arg::Input(0), Arg::Const(0), Arg::Output]
        );
    }
}
