//! `kestrel.compare`: a model run on a PyTorch reference file's inputs, each output's error
//! against PyTorch's, judged as `kestrel compare` judges it.

use crate::{errors, model_of, options};
use kestrel::reference::{self, Tolerance};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// One output against its reference.
#[pyclass(frozen, get_all, name = "OutputError", module = "kestrel")]
pub struct PyOutputError {
    /// The output's name in the model.
    name: String,
    /// Its shape, batch first.
    shape: Vec<usize>,
    /// max |out − ref| over elements (infinite where a NaN or Inf does not match).
    max_abs: f64,
    /// max |ref|: the scale the tolerance is relative to.
    max_ref: f64,
    /// max_abs / max_ref.
    max_rel: f64,
    /// The max_abs allowed.
    tolerance: f64,
    /// Whether the output is within tolerance.
    ok: bool,
    /// For a quantized output: its quantization step, and how many elements are equal,
    /// one step off and further, and the most steps any is off. None otherwise.
    steps: Option<(f64, usize, usize, usize, f64)>,
}

#[pymethods]
impl PyOutputError {
    fn __repr__(&self) -> String {
        format!(
            "kestrel.OutputError(name={:?}, shape={:?}, max_abs={:.3e}, max_rel={:.3e}, tolerance={:.3e}, ok={})",
            self.name,
            self.shape,
            self.max_abs,
            self.max_rel,
            self.tolerance,
            if self.ok { "True" } else { "False" }
        )
    }
}

/// Runs `model` (a `Model` or a path) on the reference file's inputs, at the file's batch,
/// and returns each output's error by name. `rtol` defaults to the precision's (fp32:
/// 1e-4 · max|ref| + 1e-6); a quantized output passes within `steps` quantization steps.
#[pyfunction]
#[pyo3(signature = (model, reference, device = "cpu", threads = 1, precision = "fp32", rtol = None, steps = 1.0))]
#[allow(clippy::too_many_arguments)] // Python keywords, each with a default
pub fn compare<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    reference: PathBuf,
    device: &str,
    threads: usize,
    precision: &str,
    rtol: Option<f64>,
    steps: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let model = model_of(model)?;
    let opts = options(1, threads, device, precision)?;
    let default = Tolerance::of(&opts);
    let tolerance = Tolerance {
        rtol: rtol.unwrap_or(default.rtol),
        steps,
        ..default
    };
    let checks = py
        .detach(|| reference::compare(&model, &reference, &opts, &tolerance))
        .map_err(errors::to_py)?;
    let dict = PyDict::new(py);
    // By the model's output names; the reference file calls them `output`, `output.0`, ….
    for (c, name) in checks.into_iter().zip(model.output_names()) {
        let error = PyOutputError {
            max_abs: c.diff.max_abs,
            max_ref: c.diff.max_ref,
            max_rel: c.diff.rel(),
            tolerance: c.diff.tolerance,
            ok: c.ok(),
            steps: c.steps.map(|s| (s.step, s.equal, s.one, s.beyond, s.most)),
            name: name.clone(),
            shape: c.shape,
        };
        dict.set_item(name, Py::new(py, error)?)?;
    }
    Ok(dict)
}
