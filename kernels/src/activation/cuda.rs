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
        defines: vec![
            ("LEN", eltwise_len("activation", len)?),
            ("ACT", act_code(act)),
        ],
        grid: [blocks(len, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    })
}

/// The `ACT` define of the element-wise kernels: 0 none, 1 relu, 2 relu6.
pub(crate) fn act_code(act: Activation) -> i64 {
    match act {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::Relu6 => 2,
    }
}

/// `len` as the `LEN` define, after checking the kernels' 32-bit indices can hold it.
pub(crate) fn eltwise_len(op: &str, len: usize) -> Result<i64, CudaError> {
    check_int_indexable(op, "its tensor", len)?;
    Ok(len as i64)
}
