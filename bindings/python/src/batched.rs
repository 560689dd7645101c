//! `kestrel.BatchedSession`: any batch from 1 to a maximum, on a session per batch size
//! (1, 2, 4, … and the maximum), what a server's dynamic batcher needs. A batch of n runs
//! as a sum of those sizes, largest first (13 with up to 8: 8 + 4 + 1): every image is
//! computed once, no padding, each session's shapes fixed, and the whole batch runs in one
//! release of the GIL, its outputs written straight into the arrays returned.

use crate::arrays::{outputs, slices};
use crate::inputs::{batch_of, gather};
use crate::session::Signature;
use kestrel::{Error, Model, Session, SessionOptions};
use numpy::PyArrayDyn;
use pyo3::prelude::*;
use std::sync::{Mutex, PoisonError};

/// Sessions of one model for every batch size a run may split into.
#[pyclass(frozen, name = "BatchedSession", module = "kestrel")]
pub struct PyBatchedSession {
    // Largest batch first, as `run` takes them.
    sessions: Vec<(usize, Mutex<Session>)>,
    // At the largest batch; a run's shapes are the same with its own batch first.
    io: Signature,
}

/// The batch sizes kept: powers of two below `max`, and `max`.
fn batch_sizes(max: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = std::iter::successors(Some(1usize), |b| b.checked_mul(2))
        .take_while(|&b| b < max)
        .collect();
    sizes.push(max);
    sizes
}

impl PyBatchedSession {
    pub fn new(model: &Model, opts: &SessionOptions) -> Result<PyBatchedSession, Error> {
        let max = opts.batch;
        if max == 0 {
            return Err(Error::BadOption {
                option: "max_batch",
                detail: "must be at least 1".into(),
            });
        }
        let mut sizes = batch_sizes(max);
        sizes.reverse();
        let sessions = sizes
            .into_iter()
            .map(|b| Ok((b, model.session(&opts.clone().with_batch(b))?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let io = Signature::of(&sessions[0].1);
        let sessions = sessions
            .into_iter()
            .map(|(b, session)| (b, Mutex::new(session)))
            .collect();
        Ok(PyBatchedSession { sessions, io })
    }

    /// `shape` with batch `n` in place of the largest.
    fn at(shape: &[usize], n: usize) -> Vec<usize> {
        std::iter::once(n)
            .chain(shape[1..].iter().copied())
            .collect()
    }
}

#[pymethods]
impl PyBatchedSession {
    /// Runs a batch of any size from 1 to `max_batch` (the same for every input); one array
    /// per output, with that batch.
    fn run<'py>(&self, inputs: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        let arrays = gather(inputs, &self.io.input_names, &self.io.input_shapes, true)?;
        let n = batch_of(&arrays[0]);
        let slices = slices(&arrays)?;
        // Values per image of each input and output.
        let per_image = |shape: &Vec<usize>| shape[1..].iter().product::<usize>();
        let in_len: Vec<usize> = self.io.input_shapes.iter().map(per_image).collect();
        let out_len: Vec<usize> = self.io.output_shapes.iter().map(per_image).collect();
        let shapes = self.io.output_shapes.iter().map(|s| Self::at(s, n));
        outputs(inputs.py(), shapes, |dests| {
            let mut start = 0;
            for (b, session) in &self.sessions {
                while n - start >= *b {
                    let chunk: Vec<&[f32]> = slices
                        .iter()
                        .zip(&in_len)
                        .map(|(x, &len)| &x[start * len..(start + b) * len])
                        .collect();
                    let mut session = session.lock().unwrap_or_else(PoisonError::into_inner);
                    let results = session.run(&chunk)?;
                    for ((dest, &len), out) in dests.iter_mut().zip(&out_len).zip(results.iter()) {
                        dest[start * len..(start + b) * len].copy_from_slice(out.data);
                    }
                    start += b;
                }
            }
            Ok(())
        })
    }

    /// Runs every session on zeros `runs` times.
    #[pyo3(signature = (runs = 3))]
    fn warm_up(&self, py: Python<'_>, runs: usize) -> PyResult<()> {
        py.detach(|| {
            self.sessions.iter().try_for_each(|(_, s)| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .warm_up(runs)
            })
        })
        .map_err(crate::errors::to_py)
    }

    /// The largest batch a run takes.
    #[getter]
    fn max_batch(&self) -> usize {
        self.sessions[0].0
    }

    /// The batch sizes it keeps a session for, smallest first.
    #[getter]
    fn batch_sizes(&self) -> Vec<usize> {
        self.sessions.iter().rev().map(|(b, _)| *b).collect()
    }

    /// `(name, shape)` per input, at the largest batch.
    #[getter]
    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.io.inputs()
    }

    /// `(name, shape)` per output, at the largest batch.
    #[getter]
    fn outputs(&self) -> Vec<(String, Vec<usize>)> {
        self.io.outputs()
    }

    fn __repr__(&self) -> String {
        format!(
            "kestrel.BatchedSession(inputs={:?}, outputs={:?}, batch_sizes={:?})",
            self.inputs(),
            self.outputs(),
            self.batch_sizes()
        )
    }
}
