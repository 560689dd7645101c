//! `Session::run` allocates nothing after the first run: a counting global allocator sees
//! every allocation in the process, from every thread, while sessions run.

mod common;

use common::{fixture, FIXTURES};
use kestrel::{Isa, Kernels, Model, Session, SessionOptions};
use kestrel_kernels::testing::{allocations, CountingAlloc};
use std::sync::Mutex;

/// The counter sees every thread, so the tests of this file take turns: one test loading
/// a model would otherwise count against another's runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by five runs after a first one, then five each with shaped and named
/// inputs; where that is not 0, the least of it and two more such measurements. The
/// counter sees the test harness's own threads too (it reports the test that just released
/// `ONE_AT_A_TIME` while the next one runs), and an allocation in `run` would show in every
/// measurement.
fn allocations_in_five_runs(session: &mut Session) -> usize {
    let first = allocations_once(session);
    if first == 0 {
        return 0;
    }
    first
        .min(allocations_once(session))
        .min(allocations_once(session))
}

/// One measurement of `allocations_in_five_runs`.
fn allocations_once(session: &mut Session) -> usize {
    let shape = session.input_shape(0).unwrap().to_vec();
    let input = vec![0.25f32; shape.iter().product()];
    let view = [kestrel::TensorView {
        shape: &shape,
        data: &input,
    }];
    let name = session.input_names()[0].clone();
    let named = [(name.as_str(), view[0])];
    session.run(&[&input]).unwrap();
    let before = allocations();
    for _ in 0..5 {
        let out = session.run(&[&input]).unwrap();
        assert!(out.get(0).unwrap().data[0].is_finite());
    }
    // The shaped and named forms too: their checks and hand-off allocate nothing either.
    for _ in 0..5 {
        let out = session.run_tensors(&view).unwrap();
        assert!(out.get(0).unwrap().data[0].is_finite());
        let out = session.run_named(&named).unwrap();
        assert!(out.get(0).unwrap().data[0].is_finite());
    }
    allocations() - before
}

#[test]
fn runs_after_the_first_allocate_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut kernels = vec![Kernels::Reference];
    kernels.extend(Isa::available().into_iter().map(Kernels::Isa));
    for name in FIXTURES {
        let model = Model::load(fixture(name)).unwrap();
        for &k in &kernels {
            // The batch run whole, and in two passes of one image.
            for (threads, micro) in [(1, None), (2, None), (2, Some(1))] {
                let opts = SessionOptions::default()
                    .with_batch(2)
                    .with_threads(threads)
                    .with_kernels(k)
                    .with_micro_batch(micro);
                let allocated = allocations_in_five_runs(&mut model.session(&opts).unwrap());
                assert_eq!(
                    allocated, 0,
                    "{name} {k:?} threads={threads} micro_batch={micro:?}: {allocated} allocations in 5 runs"
                );
            }
        }
    }
}

/// The int8 models' CPU runs (int8 convs, linears and adds, bytes between them) allocate nothing
/// on the SIMD kernels; the reference kernels' integer oracle makes integer copies of its
/// operands (`QConv2d::reference`), as a test oracle may.
#[test]
fn int8_runs_after_the_first_allocate_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for name in [
        "cifarnet_int8",
        "resnet18_int8",
        "mobilenetv2_int8",
        "mobilenetv3_int8",
    ] {
        let model = Model::load(fixture(name)).unwrap();
        for isa in Isa::available() {
            for (threads, micro) in [(1, None), (2, None), (2, Some(1))] {
                let opts = SessionOptions::default()
                    .with_batch(2)
                    .with_threads(threads)
                    .with_kernels(Kernels::Isa(isa))
                    .with_micro_batch(micro);
                let mut session = model.session(&opts).unwrap();
                let int8 = session
                    .steps()
                    .iter()
                    .filter(|s| s.kernel.starts_with("q"))
                    .count();
                assert!(int8 > 0, "{name}: no int8 steps");
                let allocated = allocations_in_five_runs(&mut session);
                assert_eq!(
                    allocated, 0,
                    "{name} {isa} threads={threads} micro_batch={micro:?}"
                );
            }
        }
    }
}

/// A CUDA run (stage the input, replay the graph, wait) allocates nothing either.
#[test]
fn cuda_runs_allocate_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for name in FIXTURES {
        let model = Model::load(fixture(name)).unwrap();
        let opts = SessionOptions::default()
            .with_device(kestrel::Device::Cuda(0))
            .with_batch(2)
            .with_cuda_cache(Some(common::temp_path("zero-alloc-cuda")));
        let Some(mut session) = common::cuda_session_or_skip(&model, &opts) else {
            return;
        };
        let allocated = allocations_in_five_runs(&mut session);
        assert_eq!(
            allocated, 0,
            "{name} cuda: {allocated} allocations in 5 runs"
        );
    }
}
