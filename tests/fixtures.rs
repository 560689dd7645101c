//! Every committed PyTorch fixture, end to end, on every device: the reference kernels and
//! every SIMD instruction set this CPU has on 1 and 2 threads, the GPU when there is one
//! (REQUIRE_CUDA=1 makes its absence a failure), and the CUDA executor's plan on the CPU
//! emulator (KESTREL_REQUIRE_EMU=1 likewise), in every precision each device runs. One
//! body checks them all, with one rule: in fp32 every layer and the output within
//! `max|out − ref| ≤ 1e-4·max|ref| + 1e-6`; in tf32 and fp16 the output within
//! [`fixture_tolerance`].

mod common;

use common::{fixture, reference, FIXTURES};
use kestrel::compare::{diff, rounding_sensitivity, ATOL, DEFAULT_RTOL};
use kestrel::{CudaError, Device, Error, Isa, Kernels, Model, Precision, SessionOptions};
use kestrel_kernels::testing::{require_or_skip, Need};
use kestrel_loader::read_tensors;

/// One device configuration the fixtures run on, and the (batch, optimize) runs it gets.
struct Target {
    opts: SessionOptions,
    runs: &'static [(usize, bool)],
    /// What its absence is: a GPU or the emulator may be missing, the CPU may not.
    need: Option<Need>,
}

/// Both batches, with and without the graph passes.
const EVERY_RUN: &[(usize, bool)] = &[(1, true), (1, false), (3, true), (3, false)];

fn targets() -> Vec<Target> {
    let mut kernels = vec![Kernels::Reference];
    kernels.extend(Isa::available().into_iter().map(Kernels::Isa));
    let cpu = kernels.into_iter().flat_map(|k| {
        [1, 2].map(|threads| Target {
            opts: SessionOptions::default()
                .with_kernels(k)
                .with_threads(threads),
            runs: EVERY_RUN,
            need: None,
        })
    });
    // Batch 3 as three passes of one image (`SessionOptions::micro_batch`), every layer
    // gathered back at the whole batch.
    let passes = Target {
        opts: SessionOptions::default()
            .with_threads(2)
            .with_micro_batch(Some(1)),
        runs: &[(3, true), (3, false)],
        need: None,
    };
    let cache = Some(common::temp_path("cuda-cache"));
    let gpu = [
        (Precision::Fp32, EVERY_RUN),
        (Precision::Tf32, &[(1, true), (3, true)][..]),
        (Precision::Fp16, &[(1, true), (3, true)][..]),
    ]
    .map(|(precision, runs)| Target {
        opts: SessionOptions::default()
            .with_device(Device::Cuda(0))
            .with_precision(precision)
            .with_cuda_cache(cache.clone()),
        runs,
        need: Some(Need::Gpu),
    });
    // The emulator takes seconds a run: fewer runs, each of its paths at least once.
    let emulated = [
        (Precision::Fp32, &[(1, true), (1, false), (3, true)][..]),
        (Precision::Tf32, &[(1, true)][..]),
        (Precision::Fp16, &[(3, true)][..]),
    ]
    .map(|(precision, runs)| Target {
        opts: SessionOptions::default()
            .with_device(Device::CudaEmulated)
            .with_precision(precision),
        runs,
        need: Some(Need::Emulator),
    });
    cpu.chain([passes]).chain(gpu).chain(emulated).collect()
}

/// docs/architecture.md's tolerance for `precision`, widened for tf32 and fp16 to 4× the
/// fixture's own sensitivity to one rounding of its input where that is larger: these
/// random-weight nets amplify perturbations more than trained ones (see
/// `rounding_sensitivity`). A wrong index or fragment still misses by orders of magnitude.
fn fixture_tolerance(
    model: &Model,
    batch: usize,
    input: &[f32],
    precision: Precision,
) -> (f64, f64) {
    let (rtol, atol) = precision.tolerance();
    match precision {
        Precision::Fp32 => (rtol, atol),
        _ => {
            let sensitivity = rounding_sensitivity(model, batch, input).unwrap();
            (rtol.max(4.0 * sensitivity), atol)
        }
    }
}

#[test]
fn every_fixture_matches_pytorch_on_cpu_and_cuda() {
    'targets: for target in targets() {
        for name in FIXTURES {
            let model = Model::load(fixture(name)).unwrap();
            for &(batch, optimize) in target.runs {
                let opts = target
                    .opts
                    .clone()
                    .with_batch(batch)
                    .with_optimize(optimize);
                if !check(&model, name, &opts, target.need) {
                    continue 'targets;
                }
            }
        }
    }
}

/// Runs fixture `name` as `opts` says against its PyTorch reference: each layer the
/// session computes (in fp32), then the output of two plain runs (on a GPU, two graph
/// replays: the second must not see the first's state). False when the device is absent
/// and may be (the skip printed).
fn check(model: &Model, name: &str, opts: &SessionOptions, need: Option<Need>) -> bool {
    let (batch, precision) = (opts.batch, opts.precision);
    let on = match opts.device {
        Device::Cpu => format!(
            "{:?} threads={} micro_batch={:?}",
            opts.kernels, opts.threads, opts.micro_batch
        ),
        device => format!("{device} {precision}"),
    };
    let label = format!("{name} {on} b{batch} optimize={}", opts.optimize);
    let mut session = match (model.session(opts), need) {
        (Ok(session), _) => session,
        (Err(Error::Cuda(CudaError::Unavailable(why))), Some(need)) => {
            require_or_skip(need, &label, &why);
            return false;
        }
        (Err(e), _) => panic!("{label}: {e}"),
    };
    let refs = read_tensors(&reference(name, batch)).unwrap();
    let input = refs.tensors["input"].data.clone().unwrap();
    assert_eq!(refs.tensors["input"].shape[0], batch);
    if precision == Precision::Fp32 {
        let compared = check_layers(&mut session, &refs, &input, &label);
        // Unoptimised, every node of the file is computed and has a reference.
        if !opts.optimize {
            let nodes = model.layers(1).unwrap().len();
            assert_eq!(compared, nodes, "{label}: every layer compared");
        }
    }
    let (rtol, atol) = fixture_tolerance(model, batch, &input, precision);
    for run in 0..2 {
        let outputs = session.run(&[&input]).unwrap();
        assert_eq!(
            outputs.len(),
            model.output_names().len(),
            "{label}: outputs"
        );
        for (i, out) in outputs.iter().enumerate() {
            // One output is `output`, several `output.0`, `output.1`, … (fixtures/README.md).
            let key = match outputs.len() {
                1 => "output".to_string(),
                _ => format!("output.{i}"),
            };
            let r = &refs.tensors[&key];
            assert_eq!(out.shape, &r.shape[..], "{label}: {key}");
            let d = diff(out.data, r.data.as_ref().unwrap(), rtol, atol);
            assert!(
                d.ok(),
                "{label} run {run}: {key} max abs {:.3e} > {:.3e} (max rel {:.3e}, allowed {rtol:.1e})",
                d.max_abs,
                d.tolerance,
                d.rel()
            );
            // The fixtures are meant to have outputs far from zero, or the comparison means
            // little.
            assert!(
                d.max_ref >= 1e-2,
                "{label}: {key} max |ref| {} is too small to test",
                d.max_ref
            );
        }
    }
    true
}

/// Compares each layer the session computes that has a reference; returns how many did.
fn check_layers(
    session: &mut kestrel::Session,
    refs: &kestrel_loader::TensorFile,
    input: &[f32],
    label: &str,
) -> usize {
    let mut compared = 0;
    let mut failures = Vec::new();
    session
        .run_with(&[input], |layer, out| {
            let Some(r) = refs.tensors.get(&format!("layer.{layer}")) else {
                return;
            };
            assert_eq!(out.shape, &r.shape[..], "{label}: layer {layer} shape");
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
    assert!(failures.is_empty(), "{label}: {failures:#?}");
    compared
}

/// `allops`, `activations`, `binary` and `v3ops` between them use every op of the graph
/// format.
#[test]
fn the_op_fixtures_exercise_every_op() {
    let mut ops = std::collections::BTreeSet::new();
    for name in ["allops", "activations", "binary", "v3ops", "qdq"] {
        let model = Model::load(fixture(name)).unwrap();
        ops.extend(model.layers(1).unwrap().iter().map(|l| l.op));
    }
    for op in kestrel::OP_NAMES {
        if !matches!(*op, "identity" | "dropout") {
            assert!(
                ops.contains(op),
                "no fixture has a {op} node (they have {ops:?})"
            );
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
