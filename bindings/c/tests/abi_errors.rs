//! Misuse of the C ABI: NULL pointers, bad files, buffers that do not fit, unknown
//! options; each reported with its status and a message naming what is at fault.

mod common;

use common::*;
use kestrel_c::*;
use std::ffi::CString;
use std::ptr;

#[test]
fn null_pointers_are_argument_errors_naming_the_argument() {
    let model = load("cifarnet.safetensors");
    let session = session(model, 1);
    let path = fixture("cifarnet.safetensors");
    let (mut m, mut s, mut name) = (ptr::null_mut(), ptr::null_mut(), ptr::null());
    let (mut dims, mut rank, mut n) = (ptr::null(), 0usize, 0usize);
    let (mut ok, mut worst) = (0, 0.0);
    let input = [0.0f32; 3072];
    let (len, null_in) = (3072usize, [ptr::null::<f32>()]);
    let mut out = [0.0f32; 10];
    let (out_ptr, out_len) = ([out.as_mut_ptr()], 10usize);
    // SAFETY: every pointer is NULL or valid: the point is that the NULLs are reported.
    unsafe {
        // Each call's message is checked right after it: a message is the last failure's.
        let options = kestrel_options_new();
        let argument = |status, words| assert_fails(status, KESTREL_ERROR_ARGUMENT, &[words]);
        argument(kestrel_model_load(ptr::null(), &mut m), "path is NULL");
        argument(
            kestrel_model_load(path.as_ptr(), ptr::null_mut()),
            "out is NULL",
        );
        argument(
            kestrel_model_input_name(ptr::null(), 0, &mut name),
            "model is NULL",
        );
        argument(
            kestrel_model_output_name(model, 0, ptr::null_mut()),
            "name is NULL",
        );
        argument(
            kestrel_options_set_batch(ptr::null_mut(), 1),
            "options is NULL",
        );
        argument(
            kestrel_options_set_device(options, ptr::null()),
            "device is NULL",
        );
        argument(
            kestrel_options_set_precision(ptr::null_mut(), c"fp32".as_ptr()),
            "options is NULL",
        );
        argument(
            kestrel_session_new(ptr::null(), ptr::null(), &mut s),
            "model is NULL",
        );
        argument(
            kestrel_session_new(model, ptr::null(), ptr::null_mut()),
            "out is NULL",
        );
        argument(
            kestrel_session_input_shape(ptr::null(), 0, &mut dims, &mut rank),
            "session is NULL",
        );
        argument(
            kestrel_session_output_shape(session, 0, ptr::null_mut(), &mut rank),
            "dims is NULL",
        );
        argument(
            kestrel_session_input_shape(session, 0, &mut dims, ptr::null_mut()),
            "rank is NULL",
        );
        argument(
            kestrel_session_run(
                ptr::null_mut(),
                &input.as_ptr(),
                &len,
                1,
                out_ptr.as_ptr(),
                &out_len,
                1,
            ),
            "session is NULL",
        );
        argument(
            kestrel_session_run(session, ptr::null(), &len, 1, out_ptr.as_ptr(), &out_len, 1),
            "inputs is NULL",
        );
        argument(
            kestrel_session_run(
                session,
                null_in.as_ptr(),
                &len,
                1,
                out_ptr.as_ptr(),
                &out_len,
                1,
            ),
            "inputs[0] is NULL",
        );
        argument(
            kestrel_session_run(
                session,
                &input.as_ptr(),
                &len,
                1,
                out_ptr.as_ptr(),
                ptr::null(),
                1,
            ),
            "output_lens is NULL",
        );
        argument(
            kestrel_read_tensor(ptr::null(), c"input".as_ptr(), ptr::null_mut(), 0, &mut n),
            "path is NULL",
        );
        argument(
            kestrel_read_tensor(path.as_ptr(), ptr::null(), ptr::null_mut(), 0, &mut n),
            "tensor is NULL",
        );
        argument(
            kestrel_read_tensor(
                path.as_ptr(),
                c"fc.bias".as_ptr(),
                ptr::null_mut(),
                0,
                ptr::null_mut(),
            ),
            "buffer and needed are both NULL",
        );
        argument(
            kestrel_compare(ptr::null(), path.as_ptr(), ptr::null(), &mut ok, &mut worst),
            "model is NULL",
        );
        argument(
            kestrel_compare(model, ptr::null(), ptr::null(), &mut ok, &mut worst),
            "reference_path is NULL",
        );
        argument(
            kestrel_compare(
                model,
                path.as_ptr(),
                ptr::null(),
                ptr::null_mut(),
                &mut worst,
            ),
            "all_ok is NULL",
        );
        assert_eq!(kestrel_model_input_count(ptr::null()), 0);
        assert!(last_error().contains("model is NULL"), "{}", last_error());
        kestrel_options_free(options);
        assert!(
            m.is_null() && s.is_null(),
            "a failed call leaves *out alone"
        );
        // Freeing NULL does nothing.
        kestrel_model_free(ptr::null_mut());
        kestrel_session_free(ptr::null_mut());
        kestrel_options_free(ptr::null_mut());
        kestrel_session_free(session);
        kestrel_model_free(model);
    }
    assert!(out.iter().all(|&v| v == 0.0), "no run happened: {out:?}");
}

#[test]
fn bad_model_files_are_load_errors_naming_the_path() {
    let dir = tempdir("load");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff not a safetensors file").unwrap();
    let missing = dir.join("missing.safetensors");
    let weights_only = fixture("cifarnet.b1.ref.safetensors");
    for (path, words) in [
        (
            CString::new(missing.to_str().unwrap()).unwrap(),
            vec!["missing.safetensors"],
        ),
        (
            CString::new(garbage.to_str().unwrap()).unwrap(),
            vec!["garbage.safetensors"],
        ),
        (
            weights_only,
            vec!["cifarnet.b1.ref.safetensors", "no graph"],
        ),
    ] {
        let mut model = ptr::null_mut();
        // SAFETY: a valid string and out-pointer.
        let status = unsafe { kestrel_model_load(path.as_ptr(), &mut model) };
        assert_fails(status, KESTREL_ERROR_LOAD, &words);
        assert!(model.is_null());
    }
    let bad_utf8 = CString::new(vec![b'/', 0xff, b'x']).unwrap();
    let mut model = ptr::null_mut();
    // SAFETY: a valid C string (not UTF-8) and out-pointer.
    let status = unsafe { kestrel_model_load(bad_utf8.as_ptr(), &mut model) };
    assert_fails(status, KESTREL_ERROR_ARGUMENT, &["path is not UTF-8"]);
}

#[test]
fn wrong_inputs_and_outputs_are_input_errors_and_touch_no_buffer() {
    let model = load("cifarnet.safetensors");
    let session = session(model, 1);
    let input = read("cifarnet.b1.ref.safetensors", "input");
    let sentinel = -12345.0f32;
    // Inputs, the output buffers' lengths, and what the message must name.
    type Case<'a> = (Vec<&'a [f32]>, Vec<usize>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![&input[..100]],
            vec![10],
            vec!["input \"input\"", "3072", "100"],
        ),
        (
            vec![&input, &input],
            vec![10],
            vec!["input", "1 input(s), got 2"],
        ),
        (vec![], vec![10], vec!["input", "1 input(s), got 0"]),
        (vec![&input], vec![9], vec!["output \"fc\"", "10", "got 9"]),
        (
            vec![&input],
            vec![11],
            vec!["output \"fc\"", "10", "got 11"],
        ),
        (
            vec![&input],
            vec![10, 10],
            vec!["output \"fc\"", "1 output(s), got 2"],
        ),
        (vec![&input], vec![], vec!["1 output(s), got 0"]),
    ];
    for (inputs, lens, words) in cases {
        let mut outputs: Vec<Vec<f32>> = lens.iter().map(|&n| vec![sentinel; n]).collect();
        assert_fails(
            run(session, &inputs, &mut outputs),
            KESTREL_ERROR_INPUT,
            &words,
        );
        assert!(
            outputs.iter().flatten().all(|&v| v == sentinel),
            "{words:?}: a buffer was written"
        );
    }
    // The session still runs after the failures.
    assert!(close(
        &cifarnet_output(session),
        &read("cifarnet.b1.ref.safetensors", "output")
    ));
    // SAFETY: freed once.
    unsafe {
        kestrel_session_free(session);
        kestrel_model_free(model);
    }
}

#[test]
fn bad_options_are_reported_where_they_are_set() {
    let model = load("cifarnet.safetensors");
    // SAFETY: live options and model, valid strings and out-pointers.
    unsafe {
        let options = kestrel_options_new();
        let status = kestrel_options_set_device(options, c"tpu".as_ptr());
        assert_fails(status, KESTREL_ERROR_ARGUMENT, &["unknown device \"tpu\""]);
        let status = kestrel_options_set_device(options, c"cuda:x".as_ptr());
        assert_fails(status, KESTREL_ERROR_ARGUMENT, &["cuda:x"]);
        let status = kestrel_options_set_precision(options, c"fp8".as_ptr());
        assert_fails(
            status,
            KESTREL_ERROR_ARGUMENT,
            &["fp8", "fp32, tf32 or fp16"],
        );
        let status = kestrel_options_set_batch(options, 0);
        assert_fails(status, KESTREL_ERROR_OPTION, &["batch", "at least 1"]);
        let status = kestrel_options_set_threads(options, 0);
        assert_fails(status, KESTREL_ERROR_OPTION, &["threads", "at least 1"]);
        // Valid values that this device cannot take fail when the session is built.
        assert_eq!(
            kestrel_options_set_precision(options, c"fp16".as_ptr()),
            KESTREL_OK
        );
        let mut session = ptr::null_mut();
        let status = kestrel_session_new(model, options, &mut session);
        assert_fails(status, KESTREL_ERROR_OPTION, &["precision", "fp16"]);
        assert!(session.is_null());
        // The rejected values were not kept: fp32 again, and the session builds at batch 1.
        assert_eq!(
            kestrel_options_set_precision(options, c"fp32".as_ptr()),
            KESTREL_OK
        );
        assert_eq!(
            kestrel_session_new(model, options, &mut session),
            KESTREL_OK
        );
        assert_eq!(shape(session, false, 0), [1, 3, 32, 32]);
        kestrel_session_free(session);
        kestrel_options_free(options);
        kestrel_model_free(model);
    }
}

#[test]
fn a_gpu_that_is_not_there_is_a_cuda_error() {
    let model = load("cifarnet.safetensors");
    // SAFETY: live options and model, valid strings and out-pointers; each freed once.
    unsafe {
        let options = kestrel_options_new();
        // Ordinal 63: no machine these tests run on has that many GPUs, and one with
        // none (or no driver) fails the same way.
        assert_eq!(
            kestrel_options_set_device(options, c"cuda:63".as_ptr()),
            KESTREL_OK
        );
        let mut session = ptr::null_mut();
        let status = kestrel_session_new(model, options, &mut session);
        let message = assert_fails(status, KESTREL_ERROR_CUDA, &[]);
        assert!(message.to_lowercase().contains("cuda"), "{message}");
        assert!(session.is_null());
        kestrel_options_free(options);
        kestrel_model_free(model);
    }
}
