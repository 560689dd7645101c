//! Session options: an opaque handle over `kestrel::SessionOptions`, set field by field,
//! because a C struct of options could never gain a field without breaking callers.

use crate::error::{arg_mut, arg_str, guard, Failure, KestrelStatus};
use kestrel::{Device, Precision, SessionOptions};
use std::ffi::c_char;

/// Session options (opaque): the CPU, batch 1, one thread, fp32 until set otherwise.
pub struct KestrelOptions {
    pub(crate) options: SessionOptions,
}

/// New options at their defaults (the CPU, batch 1, one thread, fp32); free them with
/// `kestrel_options_free`. Options are copied when a session is built, so they may be
/// changed or freed afterwards. Never NULL: like any Rust allocation, a failed one aborts
/// the process.
#[no_mangle]
pub extern "C" fn kestrel_options_new() -> *mut KestrelOptions {
    Box::into_raw(Box::new(KestrelOptions {
        options: SessionOptions::default(),
    }))
}

/// Frees options from `kestrel_options_new`. NULL is allowed and does nothing.
///
/// # Safety
/// `options` must be NULL or from `kestrel_options_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kestrel_options_free(options: *mut KestrelOptions) {
    // SAFETY: NULL or from this crate's Box::into_raw, freed once, by contract.
    unsafe { crate::error::free(options) }
}

/// The same value and message the library gives when a session is built with it, but at
/// the call that set it, where a C caller looks first.
fn at_least_one(option: &'static str, value: usize) -> Result<(), Failure> {
    match value {
        0 => Err(kestrel::Error::BadOption {
            option,
            detail: "must be at least 1".into(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The batch size every run of the session takes (default 1). 0 is
/// `KESTREL_ERROR_OPTION`. A model whose batch is fixed fails at `kestrel_session_new`
/// with any other batch.
///
/// # Safety
/// `options` must be NULL or live options no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn kestrel_options_set_batch(
    options: *mut KestrelOptions,
    batch: usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live and unshared, by contract.
        let o = &mut unsafe { arg_mut(options, "options") }?.options;
        at_least_one("batch", batch)?;
        o.batch = batch;
        Ok(())
    })
}

/// The threads one run may use (default 1), drawn from one process-wide pool with a
/// thread per core. 0 is `KESTREL_ERROR_OPTION`.
///
/// # Safety
/// `options` must be NULL or live options no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn kestrel_options_set_threads(
    options: *mut KestrelOptions,
    threads: usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live and unshared, by contract.
        let o = &mut unsafe { arg_mut(options, "options") }?.options;
        at_least_one("threads", threads)?;
        o.threads = threads;
        Ok(())
    })
}

/// Where the session runs: "cpu" (default), "cuda" (GPU 0) or "cuda:N". Another string
/// is `KESTREL_ERROR_ARGUMENT`; whether the GPU exists is known at `kestrel_session_new`.
///
/// # Safety
/// `options` must be NULL or live options no other thread is using; `device` NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kestrel_options_set_device(
    options: *mut KestrelOptions,
    device: *const c_char,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live and unshared, by contract.
        let o = &mut unsafe { arg_mut(options, "options") }?.options;
        // SAFETY: NULL or NUL-terminated, by contract.
        let device = unsafe { arg_str(device, "device") }?;
        o.device = device.parse::<Device>().map_err(Failure::argument)?;
        Ok(())
    })
}

/// The convolutions' arithmetic on CUDA: "fp32" (default), "tf32" or "fp16". Another
/// string is `KESTREL_ERROR_ARGUMENT`; tf32 or fp16 on the CPU fails at
/// `kestrel_session_new` with `KESTREL_ERROR_OPTION`.
///
/// # Safety
/// `options` must be NULL or live options no other thread is using; `precision` NULL or
/// a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn kestrel_options_set_precision(
    options: *mut KestrelOptions,
    precision: *const c_char,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live and unshared, by contract.
        let o = &mut unsafe { arg_mut(options, "options") }?.options;
        // SAFETY: NULL or NUL-terminated, by contract.
        let precision = unsafe { arg_str(precision, "precision") }?;
        o.precision = precision.parse::<Precision>().map_err(Failure::argument)?;
        Ok(())
    })
}
