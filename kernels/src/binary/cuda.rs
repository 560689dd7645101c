//! Binary ops with broadcasting on the GPU: `binary_f32` in `binary.cu`, one thread per
//! output element, each finding its operands' offsets from the merged dims.

use super::{BinaryOp, BinaryParams, Operands, MAX_DIMS};
use crate::activation::cuda::{act_defines, eltwise_len};
use crate::cuda::{blocks, check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "binary.cu",
    code: include_str!("binary.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// y = act(a op b) over `p`; y is `Arg::Output`. Two inputs are `Arg::Input(0)` and
/// `Arg::Input(1)`; with a constant operand the other is `Arg::Input(0)` and the constant
/// `consts[0]` (its span of floats, `p.span` of its strides). An error past the kernel's
/// six merged dims or its 32-bit indices. An empty output launches nothing.
pub fn binary(
    p: &BinaryParams,
    op: BinaryOp,
    operands: Operands<&[f32]>,
    act: Activation,
) -> Result<CudaOp, CudaError> {
    let len = p.len();
    if p.dims.len() > MAX_DIMS {
        return Err(CudaError::Unsupported {
            op: op.name().into(),
            detail: format!(
                "{} dims after merging broadcast ones, over {MAX_DIMS}",
                p.dims.len()
            ),
        });
    }
    check_int_indexable(op.name(), "a", p.span(&p.a_strides))?;
    check_int_indexable(op.name(), "b", p.span(&p.b_strides))?;
    let (a, b) = match operands {
        Operands::Inputs => (Arg::Input(0), Arg::Input(1)),
        Operands::ConstB(_) => (Arg::Input(0), Arg::Const(0)),
        Operands::ConstA(_) => (Arg::Const(0), Arg::Input(0)),
    };
    let consts = operands
        .constant()
        .map(|c| c.to_vec())
        .into_iter()
        .collect();
    if len == 0 {
        return Ok(CudaOp::default());
    }
    let mut defines = vec![("LEN", eltwise_len(op.name(), len)?), ("OP", op as i64)];
    // Outermost first, padded with 1-sized dims in front.
    let pad = MAX_DIMS - p.dims.len();
    for (names, values) in [
        (["D0", "D1", "D2", "D3", "D4", "D5"], &p.dims),
        (["SA0", "SA1", "SA2", "SA3", "SA4", "SA5"], &p.a_strides),
        (["SB0", "SB1", "SB2", "SB3", "SB4", "SB5"], &p.b_strides),
    ] {
        let fill = if names[0] == "D0" { 1 } else { 0 };
        for (k, name) in names.into_iter().enumerate() {
            let v = if k < pad { fill } else { values[k - pad] };
            defines.push((name, v as i64));
        }
    }
    defines.extend(act_defines(act));
    Ok(CudaOp {
        consts,
        launches: vec![Launch {
            source: &SOURCE,
            entry: "binary_f32",
            defines,
            grid: [blocks(len, THREADS), 1, 1],
            block: [THREADS as u32, 1, 1],
            shared_bytes: 0,
            args: vec![a, b, Arg::Output],
        }],
    })
}
