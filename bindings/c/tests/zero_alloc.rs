//! `kestrel_session_run` allocates nothing on success, as its documentation promises: a
//! counting global allocator sees every allocation in the process while the session runs.
//! One test in this file, so no other test's allocations are counted.

mod common;

use common::*;
use kestrel_c::*;
use kestrel_kernels::testing::{allocations, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn session_run_allocates_nothing_on_success() {
    let model = load("cifarnet.safetensors");
    let session = session(model, 1);
    let input = read("cifarnet.b1.ref.safetensors", "input");
    let mut output = vec![f32::NAN; 10];
    let (inputs, input_len) = ([input.as_ptr()], input.len());
    let (outputs, output_len) = ([output.as_mut_ptr()], output.len());
    let run = || {
        // SAFETY: one input and one output, each paired with its length.
        unsafe {
            kestrel_session_run(
                session,
                inputs.as_ptr(),
                &input_len,
                1,
                outputs.as_ptr(),
                &output_len,
                1,
            )
        }
    };
    assert_eq!(run(), KESTREL_OK, "{}", last_error());
    // The least of three measurements: the harness's own thread may allocate meanwhile,
    // but an allocation in the run would show in every one.
    let fewest = (0..3)
        .map(|_| {
            let before = allocations();
            for _ in 0..5 {
                assert_eq!(run(), KESTREL_OK);
            }
            allocations() - before
        })
        .min();
    assert_eq!(fewest, Some(0), "allocations in five runs");
    assert!(close(
        &output,
        &read("cifarnet.b1.ref.safetensors", "output")
    ));
    // SAFETY: each freed once.
    unsafe {
        kestrel_session_free(session);
        kestrel_model_free(model);
    }
}
