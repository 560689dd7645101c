//! The residual add on the GPU: `add_f32` in `add.cu`, y = act(a + b), one thread per
//! element.

use crate::activation::cuda::{act_defines, eltwise_len};
use crate::cuda::{blocks, Arg, CudaError, CudaOp, Launch, Source};
use crate::Activation;

static SOURCE: Source = Source {
    name: "add.cu",
    code: include_str!("add.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// y = act(a + b): a is `Arg::Input(0)`, b `Arg::Input(1)`, y `Arg::Output`, all (len).
/// y may share a's or b's storage. len 0 launches nothing.
pub fn add(len: usize, act: Activation) -> Result<CudaOp, CudaError> {
    Ok(CudaOp {
        consts: Vec::new(),
        launches: (len > 0)
            .then(|| launch_add_f32(len, act))
            .transpose()?
            .into_iter()
            .collect(),
    })
}

/// One thread per element, `THREADS` a block.
fn launch_add_f32(len: usize, act: Activation) -> Result<Launch, CudaError> {
    Ok(Launch {
        source: &SOURCE,
        entry: "add_f32",
        defines: [vec![("LEN", eltwise_len("add", len)?)], act_defines(act)].concat(),
        grid: [blocks(len, THREADS), 1, 1],
        block: [THREADS as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Input(1), Arg::Output],
    })
}
