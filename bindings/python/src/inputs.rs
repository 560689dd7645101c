//! A run's inputs from Python: one array, a sequence in the model's order, or a dict by
//! name; each a NumPy array or anything NumPy can view (`__array__`, e.g. a CPU torch
//! tensor, or `__dlpack__`). A contiguous float32 array is read where it lies; any other
//! dtype, shape or rank is an `InputError` naming the input and both shapes.

use crate::errors::InputError;
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// The session's inputs, in its order, each checked against `shapes`: exactly, or with
/// `free_batch`, with any batch from 1 to `shape[0]` (the same for every input).
pub fn gather<'py>(
    given: &Bound<'py, PyAny>,
    names: &[String],
    shapes: &[Vec<usize>],
    free_batch: bool,
) -> PyResult<Vec<PyReadonlyArrayDyn<'py, f32>>> {
    let objects = by_position(given, names)?;
    let mut arrays = Vec::with_capacity(objects.len());
    for (obj, (name, want)) in objects.iter().zip(names.iter().zip(shapes)) {
        let array = array(obj, name, want, free_batch)?;
        if let Some(first) = arrays.first() {
            let (n, m) = (array.shape()[0], batch_of(first));
            if n != m {
                let detail = format!("batch {n}, but input \"{}\" has batch {m}", names[0]);
                return Err(input_error(name, &detail));
            }
        }
        arrays.push(array);
    }
    Ok(arrays)
}

/// The batch (first dimension) of a gathered input.
pub fn batch_of(array: &PyReadonlyArrayDyn<'_, f32>) -> usize {
    array.shape()[0]
}

/// Whether `shape` is `want`, or with `free_batch` `want` but for a batch from 1 to
/// `want[0]`.
fn fits(shape: &[usize], want: &[usize], free_batch: bool) -> bool {
    match (shape.split_first(), want.split_first()) {
        (Some((&n, rest)), Some((&max, want_rest))) if free_batch => {
            (1..=max).contains(&n) && rest == want_rest
        }
        _ => shape == want,
    }
}

/// `want` as the error messages print it: `[2, 3, 32, 32]`, or with a free batch
/// `[n, 3, 32, 32] (n from 1 to 8)`.
fn describe(want: &[usize], free_batch: bool) -> String {
    match want.split_first() {
        Some((max, rest)) if free_batch => {
            let dims: Vec<String> = std::iter::once("n".to_string())
                .chain(rest.iter().map(usize::to_string))
                .collect();
            format!("[{}] (n from 1 to {max})", dims.join(", "))
        }
        _ => format!("{want:?}"),
    }
}

/// The objects given for each input, in the session's order.
fn by_position<'py>(
    given: &Bound<'py, PyAny>,
    names: &[String],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(dict) = given.cast::<PyDict>() {
        for key in dict.keys() {
            let key: String = key.extract()?;
            if !names.contains(&key) {
                let detail = format!(
                    "the model has no such input (its inputs: {})",
                    names.join(", ")
                );
                return Err(input_error(&key, &detail));
            }
        }
        return names
            .iter()
            .map(|n| dict.get_item(n)?.ok_or_else(|| input_error(n, "not given")))
            .collect();
    }
    let sequence: Option<Vec<Bound<'py, PyAny>>> = if let Ok(list) = given.cast::<PyList>() {
        Some(list.iter().collect())
    } else {
        given.cast::<PyTuple>().ok().map(|t| t.iter().collect())
    };
    let objects = sequence.unwrap_or_else(|| vec![given.clone()]);
    if objects.len() != names.len() {
        return Err(InputError::new_err(format!(
            "expected {} input(s) ({}), got {}",
            names.len(),
            names.join(", "),
            objects.len()
        )));
    }
    Ok(objects)
}

/// `obj` as a contiguous float32 array of shape `want` (see `fits`): no copy when it
/// already is one.
fn array<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    want: &[usize],
    free_batch: bool,
) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    let py = obj.py();
    let untyped = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => to_numpy(obj, name)?,
    };
    let (dtype, shape) = (untyped.dtype(), untyped.shape().to_vec());
    let expected = describe(want, free_batch);
    if !dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        let detail =
            format!("expected float32 of shape {expected}, got {dtype} of shape {shape:?}");
        return Err(input_error(name, &detail));
    }
    if !fits(&shape, want, free_batch) {
        return Err(input_error(
            name,
            &format!("expected shape {expected}, got {shape:?}"),
        ));
    }
    let mut typed = untyped.cast_into::<PyArrayDyn<f32>>()?;
    if !typed.is_c_contiguous() {
        let numpy = py.import("numpy")?;
        typed = numpy
            .call_method1("ascontiguousarray", (typed,))?
            .cast_into()?;
    }
    Ok(typed.try_readonly()?)
}

/// A NumPy view of an array-like: `numpy.asarray` for `__array__`, `numpy.from_dlpack` for
/// `__dlpack__` (a torch tensor has both; `asarray` shares its memory).
fn to_numpy<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let numpy = obj.py().import("numpy")?;
    let array = if obj.hasattr("__array__")? {
        numpy.call_method1("asarray", (obj,))?
    } else if obj.hasattr("__dlpack__")? {
        numpy.call_method1("from_dlpack", (obj,))?
    } else {
        let detail = format!(
            "expected a NumPy array (or an object with __array__ or __dlpack__), got {}",
            obj.get_type().name()?
        );
        return Err(input_error(name, &detail));
    };
    Ok(array.cast_into()?)
}

/// The library's wording for an input that does not fit.
pub fn input_error(name: &str, detail: &str) -> PyErr {
    InputError::new_err(format!("input \"{name}\": {detail}"))
}
