//! Models: loaded once, shared by any number of threads and sessions.

use crate::error::{arg, arg_str, guard, guard_value, put, Failure, KestrelStatus};
use std::ffi::{c_char, CString};

/// A loaded model (opaque). Immutable once loaded: it may be used from several threads at
/// once, each building its own sessions.
pub struct KestrelModel {
    pub(crate) model: kestrel::Model,
    // The names as C strings, made once, so the pointers handed out stay valid as long
    // as the model does.
    input_names: Vec<CString>,
    output_names: Vec<CString>,
}

/// Names as C strings; a NUL inside a name (the graph JSON allows one) is shown escaped.
pub(crate) fn c_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<CString> {
    names
        .map(|n| CString::new(n.replace('\0', "\\0")).unwrap_or_default())
        .collect()
}

/// Entry `index` of `names`, or an ARGUMENT failure giving the count.
pub(crate) fn name_at(
    names: &[CString],
    index: usize,
    what: &str,
) -> Result<*const c_char, Failure> {
    names.get(index).map(|n| n.as_ptr()).ok_or_else(|| {
        Failure::argument(format!(
            "{what} index {index} is out of range (there are {})",
            names.len()
        ))
    })
}

/// Loads a model file (safetensors with a `kestrel.graph`), checking its graph and
/// weights. On success `*out` is a new model, to be freed with `kestrel_model_free`; on
/// failure `*out` is left as it was and the message names the file and what is wrong.
/// Thread-safe: any number of threads may load models at once.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_load(
    path: *const c_char,
    out: *mut *mut KestrelModel,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: path is NULL or NUL-terminated, by this function's contract.
        let path = unsafe { arg_str(path, "path") }?;
        if out.is_null() {
            return Err(Failure::argument("out is NULL"));
        }
        let model = kestrel::Model::load(path)?;
        let wrapped = Box::new(KestrelModel {
            input_names: c_names(model.inputs().iter().map(|i| i.name.as_str())),
            output_names: c_names(model.output_names().iter().map(String::as_str)),
            model,
        });
        // SAFETY: out is not NULL (checked above) and writable by contract.
        unsafe { put(out, "out", Box::into_raw(wrapped)) }
    })
}

/// Frees a model from `kestrel_model_load`. NULL is allowed and does nothing. Sessions
/// built from the model do not borrow it and stay usable; the names it handed out do not.
///
/// # Safety
/// `model` must be NULL or a model from `kestrel_model_load` not yet freed, and no other
/// thread may be using it.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_free(model: *mut KestrelModel) {
    // SAFETY: NULL or from this crate's Box::into_raw, freed once, by contract.
    unsafe { crate::error::free(model) }
}

/// The number of the model's inputs; 0 (and a message) for a NULL model. This and the
/// other `kestrel_model_*` queries may be called from several threads at once.
///
/// # Safety
/// `model` must be NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_input_count(model: *const KestrelModel) -> usize {
    // SAFETY: NULL or live, by contract.
    guard_value(0, || Ok(unsafe { arg(model, "model") }?.input_names.len()))
}

/// The number of the model's outputs; 0 (and a message) for a NULL model.
///
/// # Safety
/// `model` must be NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_output_count(model: *const KestrelModel) -> usize {
    // SAFETY: NULL or live, by contract.
    guard_value(0, || Ok(unsafe { arg(model, "model") }?.output_names.len()))
}

/// The name of input `index` (in the order `kestrel_session_run` takes the inputs). The
/// string is owned by the model and valid until `kestrel_model_free`.
///
/// # Safety
/// `model` must be NULL or a live model; `name` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_input_name(
    model: *const KestrelModel,
    index: usize,
    name: *mut *const c_char,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL or live, by contract.
        let model = unsafe { arg(model, "model") }?;
        let found = name_at(&model.input_names, index, "input")?;
        // SAFETY: NULL (reported) or writable, by contract.
        unsafe { put(name, "name", found) }
    })
}

/// The name of output `index` (in the order `kestrel_session_run` fills the outputs). The
/// string is owned by the model and valid until `kestrel_model_free`.
///
/// # Safety
/// `model` must be NULL or a live model; `name` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_model_output_name(
    model: *const KestrelModel,
    index: usize,
    name: *mut *const c_char,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL or live, by contract.
        let model = unsafe { arg(model, "model") }?;
        let found = name_at(&model.output_names, index, "output")?;
        // SAFETY: NULL (reported) or writable, by contract.
        unsafe { put(name, "name", found) }
    })
}
