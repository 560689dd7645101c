//! Every committed PyTorch fixture, end to end, at every layer, batch 1 and 3, with and
//! without the graph passes, on the reference kernels and every SIMD instruction set this
//! CPU has, on 1 and 2 threads: within the fp32 tolerance of
//! `max|out − ref| ≤ 1e-4·max|ref| + 1e-6`.

mod common;

use common::{fixture, reference, FIXTURES};
use kestrel::compare::{diff, ATOL, DEFAULT_RTOL};
use kestrel::{Isa, Kernels, Model, SessionOptions};
use kestrel_loader::read_tensors;

/// Runs `name` on its batch-`batch` reference and checks each output and each layer the
/// session computes; returns how many layers were compared.
fn check(name: &str, batch: usize, optimize: bool, kernels: Kernels, threads: usize) -> usize {
    let model = Model::load(fixture(name)).unwrap();
    let refs = read_tensors(&reference(name, batch)).unwrap();
    let input = refs.tensors["input"].data.clone().unwrap();
    assert_eq!(refs.tensors["input"].shape[0], batch);
    let opts = SessionOptions::default()
        .with_batch(batch)
        .with_optimize(optimize)
        .with_kernels(kernels)
        .with_threads(threads);
    let name = &format!("{name} {kernels:?} threads={threads}");
    let mut session = model.session(&opts).unwrap();
    let mut compared = 0;
    let mut failures = Vec::new();
    let outputs = session
        .run_with(&[&input], |layer, out| {
            let Some(r) = refs.tensors.get(&format!("layer.{layer}")) else {
                return;
            };
            assert_eq!(
                out.shape,
                &r.shape[..],
                "{name} b{batch}: layer {layer} shape"
            );
            let d = diff(out.data, r.data.as_ref().unwrap(), DEFAULT_RTOL, ATOL);
            compared += 1;
            if !d.ok() {
                failures.push(format!(
                    "{layer}: max abs {:.3e} > tol {:.3e}",
                    d.max_abs, d.tolerance
                ));
            }
        })
        .unwrap();
    assert!(
        failures.is_empty(),
        "{name} b{batch} optimize={optimize}: {failures:#?}"
    );
    let out = outputs.get(0).unwrap();
    let r = &refs.tensors["output"];
    assert_eq!(out.shape, &r.shape[..]);
    let d = diff(out.data, r.data.as_ref().unwrap(), DEFAULT_RTOL, ATOL);
    assert!(
        d.ok(),
        "{name} b{batch}: output max abs {:.3e} > {:.3e}",
        d.max_abs,
        d.tolerance
    );
    // The fixtures are meant to have outputs far from zero, or the comparison means little.
    assert!(
        d.max_ref >= 1e-2,
        "{name}: output max |ref| {} is too small to test",
        d.max_ref
    );
    compared
}

#[test]
fn every_fixture_matches_pytorch_at_every_layer() {
    for name in FIXTURES {
        let nodes = Model::load(fixture(name)).unwrap().layers(1).unwrap().len();
        for batch in [1, 3] {
            for kernels in all_kernels() {
                for threads in [1, 2] {
                    // Unoptimised, every node of the file is computed and has a reference.
                    let compared = check(name, batch, false, kernels, threads);
                    assert_eq!(compared, nodes, "{name}: every layer compared");
                    // Optimised (folded, fused), every surviving layer still matches.
                    assert!(check(name, batch, true, kernels, threads) > 0);
                }
            }
        }
    }
}

fn all_kernels() -> Vec<Kernels> {
    let mut all = vec![Kernels::Reference];
    all.extend(Isa::available().into_iter().map(Kernels::Isa));
    all
}

#[test]
fn allops_exercises_every_op() {
    let model = Model::load(fixture("allops")).unwrap();
    let ops: std::collections::BTreeSet<&str> =
        model.layers(1).unwrap().iter().map(|l| l.op).collect();
    for op in kestrel::OP_NAMES {
        if !matches!(*op, "identity" | "dropout") {
            assert!(ops.contains(op), "allops has no {op} node (it has {ops:?})");
        }
    }
}

#[test]
fn batch_norm_folding_removes_nodes_and_keeps_outputs() {
    let model = Model::load(fixture("resnet18")).unwrap();
    let plain = model
        .session(&SessionOptions::default().with_optimize(false))
        .unwrap();
    let folded = model.session(&SessionOptions::default()).unwrap();
    assert!(folded.kernel_count() < plain.kernel_count());
}

/// A model read from memory runs exactly as the same file loaded from disk, and a broken
/// buffer's error names what the caller called it.
#[test]
fn from_bytes_matches_load() {
    let bytes = std::fs::read(fixture("resnet18")).unwrap();
    let from_disk = Model::load(fixture("resnet18")).unwrap();
    let from_memory = Model::from_bytes("embedded resnet18", &bytes).unwrap();
    let opts = SessionOptions::default();
    let (mut a, mut b) = (
        from_disk.session(&opts).unwrap(),
        from_memory.session(&opts).unwrap(),
    );
    let x: Vec<f32> = (0..3 * 64 * 48)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let want = a.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
    assert_eq!(b.run(&[&x]).unwrap().get(0).unwrap().data, &want[..]);
    let err = Model::from_bytes("embedded resnet18", &bytes[..bytes.len() / 2])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("embedded resnet18"), "{err}");
}
