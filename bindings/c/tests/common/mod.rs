//! Calling the C ABI from Rust as a C program would: raw pointers, statuses, and the
//! thread's last message. Shared by the ABI tests.
#![allow(dead_code)] // each test file uses its own part of the kit

use kestrel_c::*;
use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::ptr;

pub use KestrelStatus::*;

/// A fixture of the workspace's tests/fixtures, as a C string.
pub fn fixture(name: &str) -> CString {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    CString::new(path.to_str().expect("a UTF-8 path")).expect("no NUL in the path")
}

/// This thread's last message.
pub fn last_error() -> String {
    // SAFETY: kestrel_last_error returns a NUL-terminated string valid until the next call.
    unsafe { CStr::from_ptr(kestrel_last_error()) }
        .to_str()
        .expect("UTF-8 message")
        .to_string()
}

/// Asserts `status` is `want` and the message names every one of `words`.
pub fn assert_fails(status: KestrelStatus, want: KestrelStatus, words: &[&str]) -> String {
    let message = last_error();
    assert_eq!(status, want, "message: {message}");
    for word in words {
        assert!(
            message.contains(word),
            "{word:?} not in the message: {message}"
        );
    }
    message
}

/// Loads a fixture model, which must load.
pub fn load(name: &str) -> *mut KestrelModel {
    let mut model = ptr::null_mut();
    // SAFETY: a valid path and out-pointer.
    let status = unsafe { kestrel_model_load(fixture(name).as_ptr(), &mut model) };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    assert!(!model.is_null());
    model
}

/// A CPU session at `batch` with one thread.
pub fn session(model: *const KestrelModel, batch: usize) -> *mut KestrelSession {
    // SAFETY: options from kestrel_options_new, freed once; model live by the caller.
    unsafe {
        let options = kestrel_options_new();
        assert_eq!(kestrel_options_set_batch(options, batch), KESTREL_OK);
        assert_eq!(kestrel_options_set_threads(options, 1), KESTREL_OK);
        assert_eq!(
            kestrel_options_set_device(options, c"cpu".as_ptr()),
            KESTREL_OK
        );
        let mut session = ptr::null_mut();
        let status = kestrel_session_new(model, options, &mut session);
        kestrel_options_free(options);
        assert_eq!(status, KESTREL_OK, "{}", last_error());
        session
    }
}

/// A float tensor of a fixture file, read with kestrel_read_tensor (size first).
pub fn read(file: &str, tensor: &str) -> Vec<f32> {
    let (path, name) = (fixture(file), CString::new(tensor).unwrap());
    let mut needed = 0;
    // SAFETY: valid strings; a NULL buffer only reports the size.
    let status = unsafe {
        kestrel_read_tensor(
            path.as_ptr(),
            name.as_ptr(),
            ptr::null_mut(),
            0,
            &mut needed,
        )
    };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    let mut data = vec![f32::NAN; needed];
    // SAFETY: data holds `needed` floats.
    let status = unsafe {
        kestrel_read_tensor(
            path.as_ptr(),
            name.as_ptr(),
            data.as_mut_ptr(),
            data.len(),
            &mut needed,
        )
    };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    data
}

/// One run: inputs and output buffers as C arrays of pointers and lengths.
pub fn run(
    session: *mut KestrelSession,
    inputs: &[&[f32]],
    outputs: &mut [Vec<f32>],
) -> KestrelStatus {
    let in_ptrs: Vec<*const f32> = inputs.iter().map(|i| i.as_ptr()).collect();
    let in_lens: Vec<usize> = inputs.iter().map(|i| i.len()).collect();
    let out_ptrs: Vec<*mut f32> = outputs.iter_mut().map(|o| o.as_mut_ptr()).collect();
    let out_lens: Vec<usize> = outputs.iter().map(|o| o.len()).collect();
    // SAFETY: every pointer is paired with its buffer's length.
    unsafe {
        kestrel_session_run(
            session,
            in_ptrs.as_ptr(),
            in_lens.as_ptr(),
            in_ptrs.len(),
            out_ptrs.as_ptr(),
            out_lens.as_ptr(),
            out_ptrs.len(),
        )
    }
}

/// The shape the session hands out for input (`output` false) or output `index`.
pub fn shape(session: *const KestrelSession, output: bool, index: usize) -> Vec<usize> {
    let (mut dims, mut rank): (*const usize, usize) = (ptr::null(), 0);
    // SAFETY: valid out-pointers; the session is live by the caller.
    let status = unsafe {
        match output {
            false => kestrel_session_input_shape(session, index, &mut dims, &mut rank),
            true => kestrel_session_output_shape(session, index, &mut dims, &mut rank),
        }
    };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    // SAFETY: the session owns `rank` dims at `dims` while it lives.
    unsafe { std::slice::from_raw_parts(dims, rank) }.to_vec()
}

/// A C string handed out by the library, copied.
pub fn string(ptr: *const c_char) -> String {
    assert!(!ptr.is_null());
    // SAFETY: not NULL; the library hands out NUL-terminated strings.
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string()
}

/// Whether `out` is within `kestrel compare`'s fp32 tolerance of `reference`.
pub fn close(out: &[f32], reference: &[f32]) -> bool {
    let max_ref = reference.iter().fold(0.0f32, |m, r| m.max(r.abs()));
    let max_abs = out
        .iter()
        .zip(reference)
        .fold(0.0f32, |m, (o, r)| m.max((o - r).abs()));
    out.len() == reference.len() && max_abs <= 1e-4 * max_ref + 1e-6
}

/// Runs the cifarnet fixture at batch 1 on its reference input; returns the output.
pub fn cifarnet_output(session: *mut KestrelSession) -> Vec<f32> {
    let input = read("cifarnet.b1.ref.safetensors", "input");
    let mut outputs = vec![vec![f32::NAN; 10]];
    assert_eq!(
        run(session, &[&input], &mut outputs),
        KESTREL_OK,
        "{}",
        last_error()
    );
    outputs.remove(0)
}

/// A raw pointer that may cross threads: the ABI's contract (a model shared, a session
/// moved) is what these tests check.
pub struct Cross<T>(pub *mut T);
// By hand: derive would ask T: Copy, and the ABI's types are not.
impl<T> Clone for Cross<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Cross<T> {}
// SAFETY: the tests only move sessions and share models, as the ABI allows.
unsafe impl<T> Send for Cross<T> {}
// SAFETY: shared only for models, which are Sync.
unsafe impl<T> Sync for Cross<T> {}

/// Writes a safetensors file of F32 tensors (name, shape, data).
pub fn write_safetensors(path: &std::path::Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let mut header = Vec::new();
    let mut offset = 0;
    for (name, shape, data) in tensors {
        let end = offset + data.len() * 4;
        header.push(format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{offset},{end}]}}"
        ));
        offset = end;
    }
    let mut json = format!("{{{}}}", header.join(",")).into_bytes();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    for (_, _, data) in tensors {
        bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).expect("writing a safetensors file");
}

/// A fresh directory under the target dir's tmp, for files a test writes.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kestrel-c-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
