//! NumPy arrays in and out of a run: the inputs' data as slices, and new output arrays
//! filled with the GIL released.

use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn};
use pyo3::prelude::*;

/// The arrays' data, which `inputs::gather` made contiguous.
pub fn slices<'a>(arrays: &'a [PyReadonlyArrayDyn<'_, f32>]) -> PyResult<Vec<&'a [f32]>> {
    Ok(arrays
        .iter()
        .map(|a| a.as_slice())
        .collect::<Result<_, _>>()?)
}

/// New float32 arrays of `shapes`, filled by `fill` with the GIL released (so that other
/// Python threads run meanwhile): it gets each array's data, in order.
pub fn outputs<'py, F>(
    py: Python<'py>,
    shapes: impl Iterator<Item = Vec<usize>>,
    fill: F,
) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>>
where
    F: FnOnce(&mut [&mut [f32]]) -> Result<(), kestrel::Error> + Send,
{
    let arrays: Vec<Bound<'py, PyArrayDyn<f32>>> = shapes
        .map(|shape| PyArrayDyn::zeros(py, shape, false))
        .collect();
    let mut writers: Vec<PyReadwriteArrayDyn<'py, f32>> = arrays
        .iter()
        .map(|a| a.try_readwrite())
        .collect::<Result<_, _>>()?;
    let mut dests = writers
        .iter_mut()
        .map(|w| w.as_slice_mut())
        .collect::<Result<Vec<&mut [f32]>, _>>()?;
    py.detach(|| fill(&mut dests))
        .map_err(crate::errors::to_py)?;
    drop(writers);
    Ok(arrays)
}
