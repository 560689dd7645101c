//! The C ABI of Kestrel: `libkestrel_c` and `include/kestrel.h`.
//!
//! Every function that can fail returns a [`KestrelStatus`] and, on failure, sets this
//! thread's message ([`kestrel_last_error`]); the library's error messages pass through
//! unchanged, naming the file, input or shape at fault. No panic crosses into C: each entry
//! point runs its body under `catch_unwind` (see `error::guard`). NULL pointers are
//! reported as `KESTREL_ERROR_ARGUMENT`, never dereferenced.
//!
//! Objects are opaque boxes: [`KestrelModel`] (shared by threads), [`KestrelOptions`] and
//! [`KestrelSession`] (one thread at a time). Strings and shapes handed out are owned by
//! the object that hands them out and live as long as it does.
//!
//! The header is generated from these sources by cbindgen (`cbindgen.toml`); the
//! `header_is_current` test fails when it is stale, and
//! `KESTREL_BLESS=1 cargo test --release -p kestrel-c --test header` rewrites it.

#![warn(missing_docs)]

mod error;

mod model;
mod options;
mod session;
mod verify;

pub use error::KestrelStatus;
pub use model::{
    kestrel_model_free, kestrel_model_input_count, kestrel_model_input_name, kestrel_model_load,
    kestrel_model_output_count, kestrel_model_output_name, KestrelModel,
};
pub use options::{
    kestrel_options_free, kestrel_options_new, kestrel_options_set_batch,
    kestrel_options_set_device, kestrel_options_set_precision, kestrel_options_set_threads,
    KestrelOptions,
};
pub use session::{
    kestrel_session_free, kestrel_session_input_shape, kestrel_session_new,
    kestrel_session_output_shape, kestrel_session_run, KestrelSession,
};
pub use verify::{kestrel_compare, kestrel_read_tensor};

use std::ffi::c_char;

/// The message of this thread's last failed call, or "" if none has failed. Owned by the
/// library; valid until this thread's next kestrel call. Success does not clear it: read
/// it only after a call returned a status other than `KESTREL_OK`. Each thread has its own.
#[no_mangle]
pub extern "C" fn kestrel_last_error() -> *const c_char {
    error::last_error_ptr()
}

/// The library's version, e.g. "0.1.0": a static string, never freed.
#[no_mangle]
pub extern "C" fn kestrel_version() -> *const c_char {
    // A literal with its NUL: static, so the pointer is valid for the whole process.
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
