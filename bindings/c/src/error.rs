//! Statuses, the per-thread error message, and the guard every entry point runs its body
//! in: no panic and no Rust error crosses into C, each becomes a status and a message.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call returns: `KESTREL_OK`, or the kind of failure; `kestrel_last_error()` then
/// says what failed, naming the argument, file, input or output at fault.
// The variants carry their C names: cbindgen copies them as they are, and a C caller
// greps for KESTREL_ERROR_INPUT, not ErrorInput.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KestrelStatus {
    /// The call succeeded.
    KESTREL_OK = 0,
    /// A NULL pointer, a string that is not UTF-8, an index out of range or an unknown
    /// option value.
    KESTREL_ERROR_ARGUMENT = 1,
    /// A file that cannot be read, is not a valid model, or lacks a tensor asked for.
    KESTREL_ERROR_LOAD = 2,
    /// An input, output or buffer whose count or size does not fit.
    KESTREL_ERROR_INPUT = 3,
    /// A session option this model, machine or device cannot take.
    KESTREL_ERROR_OPTION = 4,
    /// No usable GPU, driver or NVRTC, or a CUDA kernel that failed.
    KESTREL_ERROR_CUDA = 5,
    /// A panic caught at the boundary (a bug in Kestrel), or any other failure.
    KESTREL_ERROR_INTERNAL = 6,
}

/// A failed call: the status it returns and the message `kestrel_last_error` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: KestrelStatus,
    pub message: String,
}

impl Failure {
    pub fn new(status: KestrelStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A bad argument: NULL, not UTF-8, out of range, an unknown value.
    pub fn argument(message: impl Into<String>) -> Failure {
        Failure::new(KestrelStatus::KESTREL_ERROR_ARGUMENT, message)
    }
}

/// The library's errors keep their messages unchanged: they already name the file, input
/// or shape at fault. Only the status is chosen here.
impl From<kestrel::Error> for Failure {
    fn from(error: kestrel::Error) -> Failure {
        use kestrel::ErrorKind as K;
        use KestrelStatus as S;
        let status = match error.kind() {
            K::Load => S::KESTREL_ERROR_LOAD,
            K::Input => S::KESTREL_ERROR_INPUT,
            K::Option => S::KESTREL_ERROR_OPTION,
            K::Cuda => S::KESTREL_ERROR_CUDA,
            // Other, and kinds added later: at least reported.
            _ => S::KESTREL_ERROR_INTERNAL,
        };
        Failure::new(status, error.to_string())
    }
}

impl From<kestrel_loader::LoadError> for Failure {
    fn from(error: kestrel_loader::LoadError) -> Failure {
        Failure::from(kestrel::Error::Load(error))
    }
}

thread_local! {
    /// This thread's last message. Per thread, so that threads sharing a model never read
    /// each other's errors; a CString, so `kestrel_last_error` hands out a pointer into it.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    // A NUL inside the message would end the C string early: show it as an escape.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// A pointer to this thread's last message; see `kestrel_last_error`.
pub(crate) fn last_error_ptr() -> *const c_char {
    // The CString's buffer lives on the heap and is replaced only by the next failure on
    // this thread, so the pointer outlives the borrow.
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// Runs an entry point's body: `Ok` is `KESTREL_OK`; an error or a panic sets this
/// thread's message and returns its status. Every `extern "C"` function that returns a
/// status goes through here, so nothing unwinds into C (which is undefined behaviour).
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> KestrelStatus {
    // AssertUnwindSafe: after a panic the objects the body touched are not used by this
    // call again; a session a panic left half-run is still only arena floats.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => KestrelStatus::KESTREL_OK,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".to_string());
            set_last_error(format!("internal error (a bug in Kestrel): {what}"));
            KestrelStatus::KESTREL_ERROR_INTERNAL
        }
    }
}

/// Frees a box handed to C by `Box::into_raw`, for the `_free` entry points: NULL does
/// nothing, and a panic in a destructor (a GPU session's, say) is caught and left as this
/// thread's message, since a free has no status to return.
///
/// # Safety
/// `ptr` must be NULL or from `Box::into_raw` of a `Box<T>`, not yet freed, and in use by
/// no other thread.
pub(crate) unsafe fn free<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: from Box::into_raw, freed once and unshared, by contract.
        drop(unsafe { Box::from_raw(ptr) });
        Ok(())
    });
}

/// `guard` for the few entry points that return a value in place of a status (counts):
/// a failure sets the message and returns `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Result<T, Failure>) -> T {
    let mut value = None;
    match guard(|| body().map(|v| value = Some(v))) {
        KestrelStatus::KESTREL_OK => value.unwrap_or(fallback),
        _ => fallback,
    }
}

/// `ptr` as a reference, or an ARGUMENT failure naming `what` when it is NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a live, properly aligned `T` that nothing mutates for
/// `'a` (the C caller's side of every `const T *` argument).
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: NULL is ruled out by as_ref; the rest is the caller's contract above.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::argument(format!("{what} is NULL")))
}

/// `ptr` as a mutable reference, or an ARGUMENT failure naming `what` when it is NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a live, aligned `T` that nothing else touches for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: NULL is ruled out by as_mut; the rest is the caller's contract above.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::argument(format!("{what} is NULL")))
}

/// A C string argument as UTF-8, or an ARGUMENT failure naming `what` (NULL, not UTF-8).
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated and live by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| Failure::argument(format!("{what} is not UTF-8: {e}")))
}

/// Writes `value` through an out-pointer, or fails naming `what` when it is NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid and aligned for writing a `T`.
pub(crate) unsafe fn put<T>(ptr: *mut T, what: &str, value: T) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL; valid and aligned by the caller's contract. `write` drops nothing,
    // as the C side's memory holds no Rust value.
    unsafe { ptr.write(value) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn message() -> String {
        // SAFETY: last_error_ptr points into this thread's live CString.
        unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_is_an_internal_error_with_its_message() {
        let status = guard(|| panic!("boom at {}", 42));
        assert_eq!(status, KestrelStatus::KESTREL_ERROR_INTERNAL);
        assert_eq!(message(), "internal error (a bug in Kestrel): boom at 42");
        assert_eq!(guard_value(7usize, || panic!("static str")), 7);
        assert!(message().ends_with("static str"), "{}", message());
    }

    #[test]
    fn failures_keep_their_status_and_message_and_success_clears_nothing() {
        let status = guard(|| Err(Failure::argument("x is NULL")));
        assert_eq!(status, KestrelStatus::KESTREL_ERROR_ARGUMENT);
        assert_eq!(guard(|| Ok(())), KestrelStatus::KESTREL_OK);
        assert_eq!(message(), "x is NULL");
        // A NUL in a message is escaped, not a truncation.
        guard(|| Err(Failure::argument("a\0b")));
        assert_eq!(message(), "a\\0b");
    }

    #[test]
    fn library_errors_map_to_their_status_with_the_message_unchanged() {
        let cases = [
            (
                kestrel::Error::Input {
                    name: "x".into(),
                    detail: "expected 3 values".into(),
                },
                KestrelStatus::KESTREL_ERROR_INPUT,
            ),
            (
                kestrel::Error::BadOption {
                    option: "batch",
                    detail: "must be at least 1".into(),
                },
                KestrelStatus::KESTREL_ERROR_OPTION,
            ),
            (
                kestrel::Error::NoGraph {
                    path: "m.safetensors".into(),
                },
                KestrelStatus::KESTREL_ERROR_LOAD,
            ),
            (
                kestrel::Error::TooLargeForCuda {
                    node: "conv".into(),
                    shape: vec![1],
                },
                KestrelStatus::KESTREL_ERROR_CUDA,
            ),
            (
                kestrel::Error::OutOfMemory {
                    what: "arena".into(),
                    floats: 1,
                },
                KestrelStatus::KESTREL_ERROR_INTERNAL,
            ),
        ];
        for (error, status) in cases {
            let text = error.to_string();
            let failure = Failure::from(error);
            assert_eq!((failure.status, failure.message), (status, text));
        }
    }
}
