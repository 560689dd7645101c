//! The ABI's thread contract: messages per thread, a model shared by threads, a session
//! moved to another thread.

mod common;

use common::*;
use kestrel_c::*;
use std::ptr;
use std::sync::Barrier;

#[test]
fn last_error_is_per_thread() {
    // Both threads fail before either reads its message: with one global message, one of
    // them would read the other's.
    let barrier = Barrier::new(2);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            let mut model = ptr::null_mut();
            // SAFETY: a valid string and out-pointer.
            let status =
                unsafe { kestrel_model_load(c"/nonexistent/a.safetensors".as_ptr(), &mut model) };
            barrier.wait();
            barrier.wait();
            (status, last_error())
        });
        let b = scope.spawn(|| {
            barrier.wait();
            let options = kestrel_options_new();
            // SAFETY: live options and a valid string; freed once.
            let status = unsafe { kestrel_options_set_device(options, c"tpu".as_ptr()) };
            // SAFETY: freed once.
            unsafe { kestrel_options_free(options) };
            barrier.wait();
            (status, last_error())
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.0, KESTREL_ERROR_LOAD);
    assert!(a.1.contains("/nonexistent/a.safetensors"), "{}", a.1);
    assert_eq!(b.0, KESTREL_ERROR_ARGUMENT);
    assert!(
        b.1.contains("tpu") && !b.1.contains("nonexistent"),
        "{}",
        b.1
    );
    // This thread failed in neither.
    assert_eq!(last_error(), "");
}

#[test]
fn a_session_runs_on_another_thread_than_the_one_that_built_it() {
    let model = load("cifarnet.safetensors");
    let session = Cross(session(model, 1));
    let reference = read("cifarnet.b1.ref.safetensors", "output");
    let here = cifarnet_output(session.0);
    let there = std::thread::spawn(move || {
        let session = session;
        let out = cifarnet_output(session.0);
        // SAFETY: freed once, on the thread that now owns it.
        unsafe { kestrel_session_free(session.0) };
        out
    })
    .join()
    .unwrap();
    assert!(close(&there, &reference), "{there:?} vs {reference:?}");
    assert_eq!(here, there);
    // SAFETY: freed once.
    unsafe { kestrel_model_free(model) };
}

#[test]
fn one_model_shared_by_two_threads_each_with_a_session_gives_identical_outputs() {
    let model = Cross(load("cifarnet.safetensors"));
    let reference = read("cifarnet.b1.ref.safetensors", "output");
    let barrier = Barrier::new(2);
    let outputs: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let model = model;
                    // Both build their sessions at once, then run at once.
                    barrier.wait();
                    let session = session(model.0, 1);
                    barrier.wait();
                    let outs: Vec<Vec<f32>> = (0..5).map(|_| cifarnet_output(session)).collect();
                    // SAFETY: freed once, by the thread that built it.
                    unsafe { kestrel_session_free(session) };
                    outs
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for out in outputs.iter().flatten() {
        assert_eq!(
            out, &outputs[0][0],
            "every run of every thread gives the same floats"
        );
    }
    assert!(close(&outputs[0][0], &reference));
    // SAFETY: freed once, after both threads are done.
    unsafe { kestrel_model_free(model.0) };
}
