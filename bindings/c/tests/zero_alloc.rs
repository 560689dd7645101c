//! `kestrel_session_run` allocates nothing on success, as its documentation promises: a
//! counting global allocator sees every allocation in the process while the session runs.
//! One test in this file, so no other test's allocations are counted.

mod common;

use common::*;
use kestrel_c::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for _ in 0..5 {
                assert_eq!(run(), KESTREL_OK);
            }
            ALLOCATIONS.load(Ordering::Relaxed) - before
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
