//! Kestrel: low-latency inference for PyTorch-trained convolutional networks.
//!
//! ```no_run
//! use kestrel::{Model, SessionOptions};
//! let model = Model::load("net.safetensors")?;
//! let mut session = model.session(&SessionOptions::default())?;
//! let shape = session.input_shape(0).expect("a model has an input"); // NCHW
//! let input = vec![0.0f32; shape.iter().product()];
//! let outputs = session.run(&[&input])?;
//! println!("{:?}", outputs.get(0).map(|o| o.shape));
//! # Ok::<(), kestrel::Error>(())
//! ```

#![warn(missing_docs)]

pub mod compare;
pub mod error;
mod exec;
mod graph;
mod lower;
mod model;
mod passes;
mod plan;
pub mod reference;
mod session;
mod tensor;
mod weights;

pub use error::{Error, ErrorKind, GraphError};
pub use exec::cuda::{CudaBuild, CudaInfo, CudaKernel};
/// The graph IR is internal: build graphs in code with [`GraphDef`]; what a model holds is
/// read through [`Model::inputs`], [`Model::output_names`] and [`Model::layers`].
pub use graph::{GraphInput, OP_NAMES};
pub use kestrel_kernels::cuda::CudaError;
pub use kestrel_kernels::{Isa, Precision};
pub use kestrel_loader::{GraphDef, InputDef, NodeDef};
pub use model::{LayerInfo, Model};
pub use session::{Device, Kernels, Outputs, Session, SessionOptions, StepInfo, StepTimes};
pub use tensor::{Tensor, TensorView};
pub use weights::Weights;

/// Pins the calling thread (the one that will call `Session::run`) to the first core this
/// process may use, and the worker pool's threads (`SessionOptions::threads` above 1 draws
/// on them) to the next ones, one each; returns the calling thread's core and the
/// workers'. Optional: a pinned thread is never migrated, which trims the latency tail on
/// a machine with other load. The pool is process-wide, so this is too; call it once, from
/// the thread that runs the sessions. Linux only; elsewhere an error.
pub fn pin_threads() -> Result<Vec<usize>, Error> {
    use kestrel_kernels::{affinity, parallel};
    // The pool sizes itself by the caller's affinity and its threads inherit it: start it
    // before the caller is pinned to one core.
    let worker_count = parallel::worker_count();
    let cores = affinity::allowed_cores();
    let Some((&mine, rest)) = cores.split_first() else {
        return Err(Error::Pin(affinity::PinError {
            core: 0,
            reason: "this process's allowed cores cannot be read".into(),
        }));
    };
    affinity::pin_current_thread(mine)?;
    // With one core, the workers share it with the caller.
    let workers: Vec<usize> = match rest.is_empty() {
        true => vec![mine],
        false => rest.to_vec(),
    };
    parallel::pin_workers(&workers)?;
    let used = workers.len().min(worker_count);
    Ok(std::iter::once(mine)
        .chain(workers.into_iter().take(used))
        .collect())
}

/// The README's Rust snippet, compiled by `cargo test --doc`: the code users copy first
/// must build. Its other blocks are fenced `sh`, `python` or `text`, which rustdoc skips.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeSnippets;

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
