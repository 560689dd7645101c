//! The SE gate on the GPU: `se_gate_f32` in `se_gate.cu`, a block per image doing the
//! pool and both layers (the algorithm: the top of the .cu).

use super::SeGateParams;
use crate::activation::cuda::act_defines;
use crate::cuda::{check_int_indexable, ensure, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "se_gate.cu",
    code: include_str!("se_gate.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 512;

/// The most floats of shared memory the pooled and hidden vectors may take: 40 KB of the
/// 48 KB a block may declare statically. EfficientNet-B7's widest SE has 3840 channels.
pub const MAX_SHARED: usize = 10 * 1024;

/// gate = gate(w2 · act(w1 · mean_hw(x) + b1) + b2): x is `Arg::Input(0)`, the gate
/// `Arg::Output`; the weights are the op's constants (a missing bias as zeros). An error
/// past [`MAX_SHARED`], a batch over 2^31 - 1 blocks or 32-bit indices.
pub fn se_gate(
    p: &SeGateParams,
    [w1, w2]: [&[f32]; 2],
    [b1, b2]: [Option<&[f32]>; 2],
) -> Result<CudaOp, CudaError> {
    let op = "se_gate";
    p.validate().map_err(|e| CudaError::Unsupported {
        op: op.into(),
        detail: e.0,
    })?;
    ensure(
        p.c + p.hidden <= MAX_SHARED,
        op,
        format_args!(
            "{} channels and {} hidden, over {MAX_SHARED} floats",
            p.c, p.hidden
        ),
    )?;
    check_int_indexable(op, "input", p.n * p.c * p.hw)?;
    check_int_indexable(op, "w1", p.hidden * p.c)?;
    let gate = match p.gate {
        Activation::HardSigmoid => 5,
        _ => 8,
    };
    let bias = |b: Option<&[f32]>, len| b.map_or_else(|| vec![0.0; len], <[f32]>::to_vec);
    let defines = [
        ("C", p.c as i64),
        ("HW", p.hw as i64),
        ("HIDDEN", p.hidden as i64),
        ("GATE", gate),
        ("THREADS", THREADS as i64),
    ];
    Ok(CudaOp {
        consts: vec![w1.to_vec(), w2.to_vec(), bias(b1, p.hidden), bias(b2, p.c)],
        launches: vec![Launch {
            source: &SOURCE,
            entry: "se_gate_f32",
            defines: defines.into_iter().chain(act_defines(p.act)).collect(),
            grid: [p.n as u32, 1, 1],
            block: [THREADS as u32, 1, 1],
            shared_bytes: 0,
            args: vec![
                Arg::Input(0),
                Arg::Const(0),
                Arg::Const(1),
                Arg::Const(2),
                Arg::Const(3),
                Arg::Output,
            ],
        }],
    })
}
