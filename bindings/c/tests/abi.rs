//! The C ABI called as C calls it: names, shapes and outputs on the fixture against its
//! PyTorch reference; reference files read and compared.

mod common;

use common::*;
use kestrel_c::*;
use std::ffi::{c_int, CString};
use std::ptr;

#[test]
fn fixture_names_shapes_and_run_match_the_reference() {
    let model = load("cifarnet.safetensors");
    let mut name = ptr::null();
    // SAFETY: a live model and valid out-pointers throughout.
    unsafe {
        assert_eq!(kestrel_model_input_count(model), 1);
        assert_eq!(kestrel_model_output_count(model), 1);
        assert_eq!(kestrel_model_input_name(model, 0, &mut name), KESTREL_OK);
        assert_eq!(string(name), "input");
        assert_eq!(kestrel_model_output_name(model, 0, &mut name), KESTREL_OK);
        assert_eq!(string(name), "fc");
        let status = kestrel_model_input_name(model, 1, &mut name);
        assert_fails(
            status,
            KESTREL_ERROR_ARGUMENT,
            &["input index 1", "there are 1"],
        );
    }
    let session = session(model, 1);
    assert_eq!(shape(session, false, 0), [1, 3, 32, 32]);
    assert_eq!(shape(session, true, 0), [1, 10]);
    let out = cifarnet_output(session);
    let reference = read("cifarnet.b1.ref.safetensors", "output");
    assert!(close(&out, &reference), "{out:?} vs {reference:?}");

    // Batch 3, from the other reference file.
    let session3 = common::session(model, 3);
    assert_eq!(shape(session3, false, 0), [3, 3, 32, 32]);
    let input = read("cifarnet.b3.ref.safetensors", "input");
    let mut outputs = vec![vec![f32::NAN; 30]];
    assert_eq!(
        run(session3, &[&input], &mut outputs),
        KESTREL_OK,
        "{}",
        last_error()
    );
    assert!(close(
        &outputs[0],
        &read("cifarnet.b3.ref.safetensors", "output")
    ));
    // SAFETY: each freed once; the sessions do not borrow the model.
    unsafe {
        kestrel_model_free(model);
        assert_eq!(
            cifarnet_output(session),
            out,
            "a session outlives its model"
        );
        kestrel_session_free(session);
        kestrel_session_free(session3);
    }
}

#[test]
fn compare_judges_the_reference_and_fails_a_wrong_one() {
    let model = load("cifarnet.safetensors");
    let (mut ok, mut worst): (c_int, f64) = (-1, -1.0);
    let reference = fixture("cifarnet.b3.ref.safetensors");
    // SAFETY: live model, valid strings and out-pointers; NULL options are the defaults.
    let status =
        unsafe { kestrel_compare(model, reference.as_ptr(), ptr::null(), &mut ok, &mut worst) };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    assert_eq!(ok, 1);
    assert!((0.0..1e-4).contains(&worst), "worst_rel {worst}");

    // The same input with one logit moved by 1% of the largest: judged out of tolerance.
    let mut output = read("cifarnet.b1.ref.safetensors", "output");
    let max = output.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    output[3] += 0.01 * max;
    let dir = tempdir("compare");
    let path = dir.join("wrong.ref.safetensors");
    let input = read("cifarnet.b1.ref.safetensors", "input");
    write_safetensors(
        &path,
        &[
            ("input", vec![1, 3, 32, 32], input),
            ("output", vec![1, 10], output),
        ],
    );
    let path = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    let status = unsafe { kestrel_compare(model, path.as_ptr(), ptr::null(), &mut ok, &mut worst) };
    assert_eq!(status, KESTREL_OK, "{}", last_error());
    assert_eq!(ok, 0);
    assert!((worst - 0.01).abs() < 1e-3, "worst_rel {worst}");

    // A reference file of another model: its input's shape does not fit.
    let other = fixture("binary.b1.ref.safetensors");
    // SAFETY: as above.
    let status =
        unsafe { kestrel_compare(model, other.as_ptr(), ptr::null(), &mut ok, &mut worst) };
    assert_fails(
        status,
        KESTREL_ERROR_LOAD,
        &["binary.b1.ref.safetensors", "input"],
    );
    // SAFETY: freed once.
    unsafe { kestrel_model_free(model) };
}

#[test]
fn read_tensor_reports_size_and_refuses_what_does_not_fit() {
    let path = fixture("cifarnet.safetensors");
    let mut needed = 0;
    let mut small = vec![7.0f32; 31];
    // SAFETY: valid strings; buffers paired with their lengths.
    unsafe {
        let status = kestrel_read_tensor(
            path.as_ptr(),
            c"conv1.bias".as_ptr(),
            ptr::null_mut(),
            0,
            &mut needed,
        );
        assert_eq!((status, needed), (KESTREL_OK, 32));
        needed = 0;
        let status = kestrel_read_tensor(
            path.as_ptr(),
            c"conv1.bias".as_ptr(),
            small.as_mut_ptr(),
            31,
            &mut needed,
        );
        assert_fails(
            status,
            KESTREL_ERROR_INPUT,
            &["conv1.bias", "[32]", "32 floats, got 31"],
        );
        assert_eq!(needed, 32, "the size is reported on failure too");
        assert!(small.iter().all(|&v| v == 7.0));
        let status = kestrel_read_tensor(
            path.as_ptr(),
            c"nope".as_ptr(),
            ptr::null_mut(),
            0,
            &mut needed,
        );
        assert_fails(
            status,
            KESTREL_ERROR_LOAD,
            &["cifarnet.safetensors", "no tensor \"nope\"", "fc.bias"],
        );
        let int8 = fixture("cifarnet_int8.safetensors");
        let status = kestrel_read_tensor(
            int8.as_ptr(),
            c"fc.weight_1".as_ptr(),
            ptr::null_mut(),
            0,
            &mut needed,
        );
        assert_fails(
            status,
            KESTREL_ERROR_LOAD,
            &["fc.weight_1", "not a float type"],
        );
        let missing = c"/nonexistent/ref.safetensors";
        let status = kestrel_read_tensor(
            missing.as_ptr(),
            c"input".as_ptr(),
            ptr::null_mut(),
            0,
            &mut needed,
        );
        assert_fails(
            status,
            KESTREL_ERROR_LOAD,
            &["/nonexistent/ref.safetensors"],
        );
    }
    // A larger buffer takes the tensor in its first floats and keeps the rest.
    let bias = read("cifarnet.safetensors", "fc.bias");
    assert_eq!(bias.len(), 10);
    let mut large = vec![7.0f32; 40];
    // SAFETY: valid strings; the buffer holds 40 floats.
    let status = unsafe {
        kestrel_read_tensor(
            path.as_ptr(),
            c"fc.bias".as_ptr(),
            large.as_mut_ptr(),
            40,
            &mut needed,
        )
    };
    assert_eq!((status, needed), (KESTREL_OK, 10), "{}", last_error());
    assert_eq!(large[..10], bias[..]);
    assert!(large[10..].iter().all(|&v| v == 7.0));
    assert!(bias.iter().any(|&v| v != 0.0 && v != 7.0));
}

#[test]
fn version_is_the_crate_version() {
    assert_eq!(string(kestrel_version()), env!("CARGO_PKG_VERSION"));
}
