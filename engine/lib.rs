//! Kestrel: low-latency inference for PyTorch-trained convolutional networks.
//!
//! ```no_run
//! use kestrel::{Model, SessionOptions};
//! let model = Model::load("net.safetensors")?;
//! let mut session = model.session(&SessionOptions::default())?;
//! let input = vec![0.0f32; session.input_shape(0).iter().product()];
//! let outputs = session.run(&[&input])?;
//! println!("{:?}", outputs.get(0).map(|o| o.shape));
//! # Ok::<(), kestrel::Error>(())
//! ```

mod compare;
pub mod error;
mod exec;
pub mod graph;
mod lower;
mod model;
mod passes;
mod plan;
mod session;
mod tensor;
mod weights;

pub use compare::{diff, Diff};
pub use error::{Error, GraphError};
pub use kestrel_kernels::cuda::CudaError;
pub use kestrel_kernels::Isa;
pub use kestrel_loader::{GraphDef, InputDef, NodeDef};
pub use model::{LayerInfo, Model};
pub use session::{Device, Kernels, Outputs, Session, SessionOptions, StepInfo};
pub use tensor::{Tensor, TensorView};
pub use weights::Weights;

/// The default fp32 tolerance of `compare`, per output and per layer:
/// `max|out − ref| ≤ rtol · max|ref| + ATOL`. Kestrel and PyTorch sum in different orders;
/// 1e-4 of the largest magnitude covers that for deep nets while catching any wrong index.
pub const DEFAULT_RTOL: f64 = 1e-4;
pub const ATOL: f64 = 1e-6;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    #[test]
    fn model_is_send_sync_and_session_is_send() {
        assert_send_sync::<crate::Model>();
        assert_send::<crate::Session>();
    }
}
