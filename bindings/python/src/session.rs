//! `kestrel.Session`: a model prepared for one batch size and device. `run` takes NumPy
//! arrays (read in place when contiguous float32) and returns new ones, with the GIL
//! released while the network runs, so Python threads with their own sessions run in
//! parallel.

use crate::arrays::{outputs, slices};
use crate::errors;
use crate::inputs::gather;
use kestrel::Session;
use numpy::PyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// A session: build it with `Model.session(...)`; one per thread.
#[pyclass(frozen, name = "Session", module = "kestrel")]
pub struct PySession {
    // Python may call a session from any thread; the lock makes a second caller wait
    // rather than race (uncontended, it costs tens of nanoseconds a run).
    session: Mutex<Session>,
    io: Signature,
    kernels: String,
    threads: usize,
}

impl PySession {
    pub fn new(session: Session) -> PySession {
        PySession {
            io: Signature::of(&session),
            kernels: session.kernels_name().to_string(),
            threads: session.threads(),
            session: Mutex::new(session),
        }
    }

    /// Runs on `inputs` and returns the outputs as new arrays, in order.
    fn run_arrays<'py>(
        &self,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        let arrays = gather(inputs, &self.io.input_names, &self.io.input_shapes, false)?;
        let slices = slices(&arrays)?;
        outputs(
            inputs.py(),
            self.io.output_shapes.iter().cloned(),
            |dests| {
                let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
                let results = session.run(&slices)?;
                for (dest, out) in dests.iter_mut().zip(results.iter()) {
                    dest.copy_from_slice(out.data);
                }
                Ok(())
            },
        )
    }
}

/// A session's inputs and outputs: names, and shapes batch first, copied out once.
pub struct Signature {
    pub input_names: Vec<String>,
    pub input_shapes: Vec<Vec<usize>>,
    pub output_names: Vec<String>,
    pub output_shapes: Vec<Vec<usize>>,
}

impl Signature {
    pub fn of(session: &Session) -> Signature {
        let (n_in, n_out) = (session.input_names().len(), session.output_names().len());
        Signature {
            input_names: session.input_names().to_vec(),
            input_shapes: (0..n_in)
                .filter_map(|i| session.input_shape(i))
                .map(<[usize]>::to_vec)
                .collect(),
            output_names: session.output_names().to_vec(),
            output_shapes: (0..n_out)
                .filter_map(|i| session.output_shape(i))
                .map(<[usize]>::to_vec)
                .collect(),
        }
    }

    /// `(name, shape)` per input.
    pub fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        named(&self.input_names, &self.input_shapes)
    }

    /// `(name, shape)` per output.
    pub fn outputs(&self) -> Vec<(String, Vec<usize>)> {
        named(&self.output_names, &self.output_shapes)
    }
}

fn named(names: &[String], shapes: &[Vec<usize>]) -> Vec<(String, Vec<usize>)> {
    names.iter().cloned().zip(shapes.iter().cloned()).collect()
}

#[pymethods]
impl PySession {
    /// Runs the model. `inputs`: one array (a model with one input), a list or tuple in
    /// the model's input order, or a dict by input name. Returns one array per output.
    fn run<'py>(&self, inputs: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        self.run_arrays(inputs)
    }

    /// Like `run`, and returns the outputs by name, in order.
    fn run_dict<'py>(&self, inputs: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let outputs = self.run_arrays(inputs)?;
        let dict = PyDict::new(inputs.py());
        for (name, array) in self.io.output_names.iter().zip(outputs) {
            dict.set_item(name, array)?;
        }
        Ok(dict)
    }

    /// Runs on zeros `runs` times: pages, caches and worker threads warm before the
    /// first real run.
    #[pyo3(signature = (runs = 3))]
    fn warm_up(&self, py: Python<'_>, runs: usize) -> PyResult<()> {
        py.detach(|| {
            let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
            session.warm_up(runs)
        })
        .map_err(errors::to_py)
    }

    /// Seconds per run of this session over `iters` runs on `inputs`, looped in Rust:
    /// what `run` costs without Python, to measure the module's overhead against.
    fn time_rust_loop(&self, inputs: &Bound<'_, PyAny>, iters: usize) -> PyResult<f64> {
        let arrays = gather(inputs, &self.io.input_names, &self.io.input_shapes, false)?;
        let slices = slices(&arrays)?;
        inputs
            .py()
            .detach(|| -> Result<f64, kestrel::Error> {
                let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
                let start = Instant::now();
                for _ in 0..iters {
                    session.run(&slices)?;
                }
                Ok(start.elapsed().as_secs_f64() / iters.max(1) as f64)
            })
            .map_err(errors::to_py)
    }

    /// `(name, shape)` per input, batch first.
    #[getter]
    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.io.inputs()
    }

    /// `(name, shape)` per output, batch first.
    #[getter]
    fn outputs(&self) -> Vec<(String, Vec<usize>)> {
        self.io.outputs()
    }

    /// The batch size every run takes.
    #[getter]
    fn batch(&self) -> usize {
        self.io.input_shapes[0][0]
    }

    /// The kernels it runs: the SIMD instruction set, `reference`, or the GPU's name.
    #[getter]
    fn kernels(&self) -> &str {
        &self.kernels
    }

    /// CPU threads a run uses.
    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    fn __repr__(&self) -> String {
        format!(
            "kestrel.Session(inputs={:?}, outputs={:?}, kernels={:?}, threads={})",
            self.inputs(),
            self.outputs(),
            self.kernels,
            self.threads
        )
    }
}
