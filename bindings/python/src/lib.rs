//! The native half of Kestrel's Python package (`kestrel._kestrel`): models, sessions and
//! comparisons against PyTorch references, over the Rust library. The package's
//! `__init__.py` re-exports it; `_kestrel.pyi` is its typed surface.

mod arrays;
mod batched;
mod compare;
mod errors;
mod inputs;
mod session;

use batched::PyBatchedSession;
use kestrel::{Device, Model, Precision, SessionOptions};
use pyo3::prelude::*;
use session::PySession;
use std::path::PathBuf;
use std::sync::Arc;

/// A model loaded from a Kestrel `.safetensors` file: its graph checked and its weights
/// read. Shared freely between threads; each thread builds its own session.
#[pyclass(frozen, name = "Model", module = "kestrel")]
struct PyModel {
    model: Arc<Model>,
    path: PathBuf,
}

#[pymethods]
impl PyModel {
    #[new]
    fn new(path: PathBuf) -> PyResult<PyModel> {
        let model = Model::load(&path).map_err(errors::to_py)?;
        Ok(PyModel {
            model: Arc::new(model),
            path,
        })
    }

    /// `(name, shape)` per input, in the order `run` takes them; the batch is `None`.
    #[getter]
    fn inputs(&self) -> Vec<(String, Vec<Option<usize>>)> {
        self.model
            .inputs()
            .iter()
            .map(|i| {
                let shape = std::iter::once(None).chain(i.dims.iter().map(|&d| Some(d)));
                (i.name.clone(), shape.collect())
            })
            .collect()
    }

    /// The outputs' names, in order.
    #[getter]
    fn outputs(&self) -> Vec<String> {
        self.model.output_names().to_vec()
    }

    /// The file it came from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// A session for one batch size: every kernel chosen and buffer placed now, so that
    /// `run` only computes.
    #[pyo3(signature = (batch = 1, threads = 1, device = "cpu", precision = "fp32"))]
    fn session(
        &self,
        py: Python<'_>,
        batch: usize,
        threads: usize,
        device: &str,
        precision: &str,
    ) -> PyResult<PySession> {
        let opts = options(batch, threads, device, precision)?;
        let model = Arc::clone(&self.model);
        // Building packs weights (and on CUDA compiles kernels): let other threads run.
        let session = py.detach(|| model.session(&opts)).map_err(errors::to_py)?;
        Ok(PySession::new(session))
    }

    /// Sessions for every batch size from 1 to `max_batch` (one per power of two below it,
    /// and one for it): `run` takes any batch in that range, as a server's batcher forms
    /// them.
    #[pyo3(signature = (max_batch = 8, threads = 1, device = "cpu", precision = "fp32"))]
    fn batched_session(
        &self,
        py: Python<'_>,
        max_batch: usize,
        threads: usize,
        device: &str,
        precision: &str,
    ) -> PyResult<PyBatchedSession> {
        let opts = options(max_batch, threads, device, precision)?;
        let model = Arc::clone(&self.model);
        py.detach(|| PyBatchedSession::new(&model, &opts))
            .map_err(errors::to_py)
    }

    fn __repr__(&self) -> String {
        let inputs: Vec<String> = self
            .model
            .inputs()
            .iter()
            .map(|i| format!("({:?}, [None, {}])", i.name, join(&i.dims)))
            .collect();
        format!(
            "kestrel.Model({:?}, inputs=[{}], outputs={:?})",
            self.path.display().to_string(),
            inputs.join(", "),
            self.outputs()
        )
    }
}

/// `1, 2, 3`: a shape's dims as Python lists print them.
fn join(dims: &[usize]) -> String {
    let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
    dims.join(", ")
}

/// Session options from the Python keywords; a bad value is an `OptionError` naming it.
fn options(
    batch: usize,
    threads: usize,
    device: &str,
    precision: &str,
) -> PyResult<SessionOptions> {
    // Parsed as the command line and the C ABI parse them, with the library's messages.
    let bad = |option: &str, e: String| {
        errors::OptionError::new_err(format!("session option {option}: {e}"))
    };
    let device: Device = device.parse().map_err(|e| bad("device", e))?;
    let precision: Precision = precision.parse().map_err(|e| bad("precision", e))?;
    Ok(SessionOptions::default()
        .with_batch(batch)
        .with_threads(threads)
        .with_device(device)
        .with_precision(precision))
}

/// The model a call names: a `Model`, or a path to load one from.
fn model_of(model: &Bound<'_, PyAny>) -> PyResult<Arc<Model>> {
    if let Ok(m) = model.cast::<PyModel>() {
        return Ok(Arc::clone(&m.get().model));
    }
    let path: PathBuf = model.extract()?;
    Ok(Arc::new(Model::load(&path).map_err(errors::to_py)?))
}

#[pymodule]
fn _kestrel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PySession>()?;
    m.add_class::<PyBatchedSession>()?;
    m.add_class::<compare::PyOutputError>()?;
    m.add_function(wrap_pyfunction!(compare::compare, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)
}
