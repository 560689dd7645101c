//! Model loading end to end: safetensors parsing, graph JSON, graph validation and
//! lowering (`Model::from_bytes`), then, for models small enough, a session build and one
//! run. Any panic, hang or runaway allocation is a bug: bad bytes must be a typed error.

#![no_main]

use kestrel::{Isa, Kernels, Model, SessionOptions};
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

mod mutate;

/// Sessions are built only for models whose activations sum to at most this many floats
/// (16 MiB): a valid but big model is not a finding, and would trip `-rss_limit_mb`.
const MAX_ACTIVATION_FLOATS: usize = 1 << 22;
/// ...and run only when one run costs at most this many FLOPs, so that `-timeout` flags
/// real hangs only (no input of the 10-minute runs took a second, reference kernels and
/// ASan included).
const MAX_RUN_FLOPS: u64 = 20_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes("fuzz.safetensors", data) else {
        return;
    };
    // The model's fixed batch, or 1: `from_bytes` lowered the graph at it already, so
    // lowering again cannot fail.
    let batch = model.inputs().iter().find_map(|i| i.batch).unwrap_or(1);
    let layers = model
        .layers(batch)
        .expect("a loaded model lowers at its own batch");
    // Every value the arena may hold: the inputs and each node's output.
    let input_shapes = model.inputs().iter().map(|i| {
        let mut shape = vec![batch];
        shape.extend_from_slice(&i.dims);
        shape
    });
    let mut shapes = input_shapes.chain(layers.iter().map(|l| l.shape.clone()));
    let activations = shapes.try_fold(0usize, |sum, shape| {
        sum.checked_add(shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?)
    });
    if activations.is_none_or(|a| a > MAX_ACTIVATION_FLOATS) {
        return;
    }
    let flops: u64 = layers.iter().map(|l| l.flops).fold(0, u64::saturating_add);
    // The SIMD path with the graph passes, then the reference path on the graph as written.
    // The ISA is picked by the input's length, so each input always runs the same one (a
    // crash replays) while the corpus as a whole covers every ISA this CPU has.
    let isas = Isa::available();
    let fast = SessionOptions::default().with_batch(batch).with_kernels(Kernels::Isa(isas[data.len() % isas.len()]));
    let plain = fast.clone().with_optimize(false).with_kernels(Kernels::Reference);
    for opts in [fast, plain] {
        // Load checked the graph at this batch, so a session must build.
        let mut session = model
            .session(&opts)
            .expect("a loaded model builds a session at its own batch");
        if flops > MAX_RUN_FLOPS {
            continue;
        }
        let inputs: Vec<Vec<f32>> = (0..session.input_names().len())
            .map(|i| {
                let n: usize = session.input_shape(i).unwrap().iter().product();
                (0..n).map(|j| (j % 17) as f32 * 0.25 - 2.0).collect()
            })
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let outputs = session
            .run(&refs)
            .expect("inputs of the session's own shapes run");
        assert_eq!(outputs.len(), model.output_names().len());
        for out in outputs.iter() {
            assert_eq!(out.data.len(), out.shape.iter().product::<usize>());
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    mutate::mutate(data, size, max_size, seed)
});
