//! Kestrel's kernels: one folder per op, slices and params in, slices out.
//!
//! Each `<op>/mod.rs` holds the op's params and the only shape arithmetic and validation
//! for it; `<op>/reference.rs` holds plain loops, the test oracle (and the first CPU
//! executor). SIMD `cpu.rs` and CUDA `cuda.rs` files slot in beside them and call the same
//! shape arithmetic. Every tensor is f32, NCHW, contiguous.

#![warn(missing_docs)]

pub mod activation;
pub mod adaptive_avg_pool2d;
pub mod add;
pub mod affinity;
pub mod batch_norm;
pub mod binary;
pub mod compare;
pub mod concat;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod copy;
pub mod cpu_info;
pub mod cuda;
pub mod epilogue;
pub mod gemm;
pub mod isa;
pub mod layer_norm;
pub mod linear;
pub mod mean;
pub mod parallel;
pub mod peak;
pub mod pool2d;
pub mod precision;
pub mod quantize;
pub mod rng;
pub mod se_gate;
pub(crate) mod simd;
pub mod softmax;
pub mod subnormals;
pub mod upsample;

mod error;
mod taps;
pub use epilogue::Activation;
pub use error::ParamError;
pub use isa::Isa;
pub use precision::Precision;

/// The test kit, for this crate's tests and the engine's (the `testing` feature).
#[cfg(feature = "testing")]
pub mod testing;
