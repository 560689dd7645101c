//! Activations on the GPU: `activation_f32` in `activation.cu`, one thread per element.

use crate::cuda::{blocks, check_int_indexable, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "activation.cu",
    code: include_str!("activation.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// y = act(x): x is `Arg::Input(0)`, y is `Arg::Output`, both (len). The engine may give
/// x's storage as y (in place). `Activation::None` is a copy; len 0 launches nothing.
pub fn activate(act: Activation, len: usize) -> Result<CudaOp, CudaError> {
    Ok(CudaOp {
        consts: Vec::new(),
        launches: (len > 0)
            .then(|| launch_activation_f32(act, len))
            .transpose()?
            .into_iter()
            .collect(),
    })
}

/// One thread per element, `THREADS` a block.
fn launch_activation_f32(act: Activation, len: usize) -> Result<Launch, CudaError> {
    Ok(Launch {
        source: &SOURCE,
        entry: "activation_f32",
        defines: [
            vec![("LEN", eltwise_len("activation", len)?)],
            act_defines(act),
        ]
        .concat(),
        grid: [blocks(len, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    })
}

/// The defines of the fused activation (prelude.cuh's `activate`): `ACT`, its code (0
/// none, 1 relu, 2 relu6, 3 clamp, 4 leaky_relu, 5 hardsigmoid, 6 hardswish, 7 elu,
/// 8 sigmoid, 9 silu, 10 tanh, 11 gelu, 12 gelu tanh), then for those with parameters
/// `ACT_A` (and `ACT_B`): the f32 bit patterns of clamp's min and max, leaky_relu's slope,
/// elu's alpha. Integers, so that a module's text, and its cache key, is exact.
pub(crate) fn act_defines(act: Activation) -> Vec<(&'static str, i64)> {
    let bits = |v: f32| v.to_bits() as i32 as i64;
    let (code, params) = match act {
        Activation::None => (0, vec![]),
        Activation::Relu => (1, vec![]),
        Activation::Relu6 => (2, vec![]),
        Activation::Clamp { min, max } => (3, vec![("ACT_A", bits(min)), ("ACT_B", bits(max))]),
        Activation::LeakyRelu(slope) => (4, vec![("ACT_A", bits(slope))]),
        Activation::HardSigmoid => (5, vec![]),
        Activation::HardSwish => (6, vec![]),
        Activation::Elu(alpha) => (7, vec![("ACT_A", bits(alpha))]),
        Activation::Sigmoid => (8, vec![]),
        Activation::Silu => (9, vec![]),
        Activation::Tanh => (10, vec![]),
        Activation::Gelu => (11, vec![]),
        Activation::GeluTanh => (12, vec![]),
    };
    let mut defines = vec![("ACT", code)];
    defines.extend(params);
    defines
}

/// `len` as the `LEN` define, after checking the kernels' 32-bit indices can hold it.
pub(crate) fn eltwise_len(op: &str, len: usize) -> Result<i64, CudaError> {
    check_int_indexable(op, "its tensor", len)?;
    Ok(len as i64)
}
