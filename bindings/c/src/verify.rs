//! Reference files: reading one tensor of a safetensors file, and checking a model against
//! a PyTorch reference file as `kestrel compare` does.

use crate::error::{arg, arg_str, guard, put, Failure, KestrelStatus};
use crate::model::KestrelModel;
use crate::options::KestrelOptions;
use kestrel::reference::{compare, Tolerance};
use std::ffi::{c_char, c_int};
use std::path::PathBuf;

/// Reads the float tensor `tensor` of the safetensors file `path` (any float dtype,
/// converted to f32), e.g. a reference file's "input" or "output". `*needed` is set to
/// its element count. With `buffer` NULL, only the count is reported (`needed` must then
/// not be NULL); otherwise the tensor is copied into `buffer`'s first `*needed` floats,
/// and a `len` below that is `KESTREL_ERROR_INPUT` with the buffer untouched. A file that
/// cannot be read, or lacks the tensor, or holds it as integers, is `KESTREL_ERROR_LOAD`.
/// Thread-safe.
///
/// # Safety
/// `path` and `tensor` must be NULL or NUL-terminated; `buffer` NULL or writable for
/// `len` floats; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_read_tensor(
    path: *const c_char,
    tensor: *const c_char,
    buffer: *mut f32,
    len: usize,
    needed: *mut usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or NUL-terminated, by contract.
        let (path, name) = unsafe { (arg_str(path, "path")?, arg_str(tensor, "tensor")?) };
        if buffer.is_null() && needed.is_null() {
            return Err(Failure::argument("buffer and needed are both NULL"));
        }
        let file = kestrel_loader::read_tensors(path.as_ref())?;
        let bad = |detail: String| kestrel::Error::Reference {
            path: PathBuf::from(path),
            detail,
        };
        let Some(found) = file.tensors.get(name) else {
            let have: Vec<&str> = file.tensors.keys().map(String::as_str).collect();
            let detail = format!("no tensor \"{name}\" (the file has: {})", have.join(", "));
            return Err(bad(detail).into());
        };
        let Some(data) = found.data.as_deref() else {
            let detail = format!("tensor \"{name}\" is {:?}, not a float type", found.dtype);
            return Err(bad(detail).into());
        };
        if !needed.is_null() {
            // SAFETY: not NULL; writable by contract.
            unsafe { put(needed, "needed", data.len()) }?;
        }
        if buffer.is_null() {
            return Ok(());
        }
        if len < data.len() {
            return Err(Failure::new(
                KestrelStatus::KESTREL_ERROR_INPUT,
                format!(
                    "{path}: tensor \"{name}\" of shape {:?} needs a buffer of {} floats, got {len}",
                    found.shape,
                    data.len()
                ),
            ));
        }
        // SAFETY: buffer is not NULL and writable for len >= data.len() floats, by
        // contract; it cannot overlap the file's data, which this call mapped itself.
        let dest = unsafe { std::slice::from_raw_parts_mut(buffer, data.len()) };
        dest.copy_from_slice(data);
        Ok(())
    })
}

/// Runs `model` on the inputs of the PyTorch reference file `reference_path` (the batch
/// taken from the file) with `options` (NULL: the defaults) and judges every output as
/// `kestrel compare` does: `max|out - ref| <= rtol * max|ref| + atol`, the tolerance of the
/// options' precision (fp32: rtol 1e-4, atol 1e-6). `*all_ok` is 1 when every output is
/// within it, else 0; `*worst_rel` the largest `max|out - ref| / max|ref|` over outputs.
/// A file without the model's inputs or outputs is `KESTREL_ERROR_LOAD`. Builds a session
/// of its own; the model may be shared with other threads meanwhile.
///
/// # Safety
/// `model` must be NULL or a live model; `reference_path` NULL or NUL-terminated;
/// `options` NULL or live options not being changed; `all_ok` and `worst_rel` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_compare(
    model: *const KestrelModel,
    reference_path: *const c_char,
    options: *const KestrelOptions,
    all_ok: *mut c_int,
    worst_rel: *mut f64,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live, by contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: NULL (reported) or NUL-terminated, by contract.
        let path = unsafe { arg_str(reference_path, "reference_path") }?;
        // SAFETY: NULL (the defaults) or live and not being changed, by contract.
        let options = unsafe { options.as_ref() }
            .map(|o| o.options.clone())
            .unwrap_or_default();
        if all_ok.is_null() || worst_rel.is_null() {
            let which = if all_ok.is_null() {
                "all_ok"
            } else {
                "worst_rel"
            };
            return Err(Failure::argument(format!("{which} is NULL")));
        }
        let checks = compare(&model.model, path, &options, &Tolerance::of(&options))?;
        let ok = checks.iter().all(|c| c.ok());
        let worst = checks.iter().map(|c| c.diff.rel()).fold(0.0, f64::max);
        // SAFETY: both checked not NULL above; writable by contract.
        unsafe {
            put(all_ok, "all_ok", c_int::from(ok))?;
            put(worst_rel, "worst_rel", worst)
        }
    })
}
