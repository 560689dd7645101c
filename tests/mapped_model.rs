//! A model loaded from its mapped file computes what the same bytes loaded into memory
//! compute, bit for bit, and keeps doing so for every session made from it: building a
//! session releases the map's pages and drops the plan's copy of every weight it packed
//! (`Kernel::release_packed_weights`), which must leave the `Model` whole for the next one.

mod common;

use common::{fixture, reference};
use kestrel::{Isa, Kernels, Model, Session, SessionOptions};
use kestrel_loader::read_tensors;

/// Fixtures that between them fold batch norms (resnet18: Winograd and GEMM convs; yolo),
/// fold a channel scale and read layer-norm weights at run time (convnext), fuse
/// squeeze-excite gates (mobilenetv3) and convert F16 weights (cifarnet_f16).
const MODELS: &[&str] = &[
    "resnet18",
    "mobilenetv3",
    "convnext",
    "yolo",
    "cifarnet_f16",
];

/// Every kernel family this CPU has: the reference kernels keep the plan's weights, the
/// SIMD ones release them.
fn kernels() -> Vec<Kernels> {
    let mut k = vec![Kernels::Reference];
    k.extend(Isa::available().into_iter().map(Kernels::Isa));
    k
}

/// The fixture's batch-3 reference input.
fn input(name: &str) -> Vec<f32> {
    let refs = read_tensors(&reference(name, 3)).unwrap();
    refs.tensors["input"].data.as_deref().unwrap().to_vec()
}

/// The bits of every output of one run of `session`.
fn run_bits(session: &mut Session, x: &[f32]) -> Vec<Vec<u32>> {
    let out = session.run(&[x]).unwrap();
    out.iter()
        .map(|o| o.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// The bits of every output of one run of a fresh session of `model`.
fn outputs(model: &Model, opts: &SessionOptions, x: &[f32]) -> Vec<Vec<u32>> {
    run_bits(&mut model.session(opts).unwrap(), x)
}

#[test]
fn a_mapped_model_computes_what_the_in_memory_one_does() {
    for name in MODELS {
        let mapped = Model::load(fixture(name)).unwrap();
        let bytes = std::fs::read(fixture(name)).unwrap();
        let in_memory = Model::from_bytes(fixture(name), &bytes).unwrap();
        let x = input(name);
        for kernels in kernels() {
            let opts = SessionOptions::default()
                .with_batch(3)
                .with_kernels(kernels)
                .with_threads(2);
            assert_eq!(
                outputs(&mapped, &opts, &x),
                outputs(&in_memory, &opts, &x),
                "{name} {kernels:?}"
            );
        }
    }
}

#[test]
fn a_second_session_of_a_model_computes_what_the_first_did() {
    for name in MODELS {
        let model = Model::load(fixture(name)).unwrap();
        let x = input(name);
        for kernels in kernels() {
            let opts = SessionOptions::default()
                .with_batch(3)
                .with_kernels(kernels);
            // The first session is alive while the second is built (its packed weights
            // and the model's pages it released), then runs again after it.
            let mut first = model.session(&opts).unwrap();
            let one = run_bits(&mut first, &x);
            let two = outputs(&model, &opts, &x);
            assert_eq!(one, two, "{name} {kernels:?}: second session");
            let again = run_bits(&mut first, &x);
            assert_eq!(
                one, again,
                "{name} {kernels:?}: first session after the second"
            );
            drop(first);
            // Without the graph passes, the same weights are read unfolded.
            let plain = opts.clone().with_optimize(false);
            let three = outputs(&model, &plain, &x);
            let four = outputs(&model, &plain, &x);
            assert_eq!(three, four, "{name} {kernels:?}: unoptimized sessions");
        }
    }
}
