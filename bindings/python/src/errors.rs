//! Kestrel's errors as Python exceptions: one class per kind, all `KestrelError`s, each
//! carrying the library's message (which names the file, input, node or shape at fault).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    kestrel,
    KestrelError,
    PyException,
    "Any error from Kestrel."
);
create_exception!(
    kestrel,
    LoadError,
    KestrelError,
    "A model or reference file that cannot be read, or a graph that is not a valid model."
);
create_exception!(
    kestrel,
    InputError,
    KestrelError,
    "An input of the wrong dtype, shape or rank, or one missing, unknown or given twice."
);
create_exception!(
    kestrel,
    OptionError,
    KestrelError,
    "A session option this model, machine or device cannot take."
);
create_exception!(
    kestrel,
    CudaError,
    KestrelError,
    "No usable GPU, driver or NVRTC, or a CUDA kernel that failed."
);

/// The exception class for a library error, with its message.
pub fn to_py(e: kestrel::Error) -> PyErr {
    use kestrel::ErrorKind as K;
    let message = e.to_string();
    match e.kind() {
        K::Load => LoadError::new_err(message),
        K::Input => InputError::new_err(message),
        K::Option => OptionError::new_err(message),
        K::Cuda => CudaError::new_err(message),
        // Other, and kinds added later: at least a KestrelError.
        _ => KestrelError::new_err(message),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("KestrelError", py.get_type::<KestrelError>())?;
    m.add("LoadError", py.get_type::<LoadError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("CudaError", py.get_type::<CudaError>())?;
    Ok(())
}
