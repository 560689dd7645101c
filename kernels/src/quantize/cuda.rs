//! `fake_quant` on the GPU: `fake_quant_f32` in `quantize.cu`, one thread per element, the
//! reference's steps in the same f32 operations.

use super::QuantParams;
use crate::activation::cuda::eltwise_len;
use crate::cuda::{blocks, Arg, CudaError, CudaOp, Launch, Source};

static SOURCE: Source = Source {
    name: "quantize.cu",
    code: include_str!("quantize.cu"),
};

/// Threads per block (the kernel's `THREADS`).
const THREADS: usize = 256;

/// y = dequantize(quantize(x)): x is `Arg::Input(0)`, y is `Arg::Output`, both (len); len
/// 0 launches nothing.
pub fn fake_quant(p: &QuantParams, len: usize) -> Result<CudaOp, CudaError> {
    let bits = |v: f32| v.to_bits() as i32 as i64;
    let launch = |len| -> Result<Launch, CudaError> {
        Ok(Launch {
            source: &SOURCE,
            entry: "fake_quant_f32",
            defines: vec![
                ("LEN", eltwise_len("fake_quant", len)?),
                ("INV", bits(p.inv_scale)),
                ("SCALE", bits(p.scale)),
                ("ZP", i64::from(p.zero_point)),
                ("QMIN", i64::from(p.qmin)),
                ("QMAX", i64::from(p.qmax)),
            ],
            grid: [blocks(len, THREADS), 1, 1],
            block: [THREADS as u32, 1, 1],
            shared_bytes: 0,
            args: vec![Arg::Input(0), Arg::Output],
        })
    };
    Ok(CudaOp {
        consts: Vec::new(),
        launches: (len > 0)
            .then(|| launch(len))
            .transpose()?
            .into_iter()
            .collect(),
    })
}
