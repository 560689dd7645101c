//! add, sub, mul and div with broadcasting, end to end: every operand form (two values, a
//! weight, a number, reversed), a broadcast add that must not become a conv's residual,
//! and an activation fused into the op, on the reference kernels, every ISA at 1 and 2
//! threads and the emulated CUDA executor, against the same arithmetic written out here.

mod common;

use kestrel::{CudaError, Device, Error, GraphError, Isa, Kernels, Model, SessionOptions, Weights};
use kestrel_kernels::testing::{require_or_skip, Need};
use serde_json::json;

/// x (n, 4, 3, 5), s (n, 4, 1, 1):
/// m = x·s; w = m·g (g a (4, 1, 1) weight); k = 0.5 − w; d = k / x;
/// c = conv1x1(x); r = relu(c + s) (a broadcast add, after a conv: not a residual).
fn model() -> Model {
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 4, 3, 5]}, {"name": "s", "shape": [-1, 4, 1, 1]}],
        "nodes": [
            {"name": "m", "op": "mul", "inputs": ["x", "s"]},
            {"name": "w", "op": "mul", "inputs": ["m"], "weights": {"other": "g"}},
            {"name": "k", "op": "sub", "inputs": ["w"], "attrs": {"scalar": 0.5, "reverse": true}},
            {"name": "d", "op": "div", "inputs": ["k", "x"]},
            {"name": "c", "op": "conv2d", "inputs": ["x"], "weights": {"weight": "cw"}},
            {"name": "a", "op": "add", "inputs": ["c", "s"]},
            {"name": "r", "op": "relu", "inputs": ["a"]}
        ],
        "outputs": ["d", "r"]
    });
    let mut w = Weights::default();
    w.insert("g", &[4, 1, 1], vec![0.5, -1.0, 2.0, 0.25])
        .unwrap();
    let cw = (0..16).map(|i| ((i * 7 % 5) as f32 - 2.0) / 4.0).collect();
    w.insert("cw", &[4, 4, 1, 1], cw).unwrap();
    Model::from_parts(&common::graph_def(&g), &w).unwrap()
}

/// The two outputs, computed here in the op order above.
fn expected(n: usize, x: &[f32], s: &[f32]) -> [Vec<f32>; 2] {
    let g = [0.5, -1.0, 2.0, 0.25];
    let cw: Vec<f32> = (0..16).map(|i| ((i * 7 % 5) as f32 - 2.0) / 4.0).collect();
    let (mut d, mut r) = (vec![0.0; n * 60], vec![0.0; n * 60]);
    for b in 0..n {
        for c in 0..4 {
            for p in 0..15 {
                let i = (b * 4 + c) * 15 + p;
                let sv = s[b * 4 + c];
                d[i] = (0.5 - x[i] * sv * g[c]) / x[i];
                let conv: f32 = (0..4)
                    .map(|k| cw[c * 4 + k] * x[(b * 4 + k) * 15 + p])
                    .sum();
                r[i] = (conv + sv).max(0.0);
            }
        }
    }
    [d, r]
}

#[test]
fn binary_ops_broadcast_on_every_device() {
    let model = model();
    let mut targets: Vec<SessionOptions> =
        vec![SessionOptions::default().with_kernels(Kernels::Reference)];
    for isa in Isa::available() {
        for threads in [1, 2] {
            targets.push(
                SessionOptions::default()
                    .with_kernels(Kernels::Isa(isa))
                    .with_threads(threads),
            );
        }
    }
    targets.push(SessionOptions::default().with_device(Device::CudaEmulated));
    for n in [1, 3] {
        let x: Vec<f32> = (0..n * 60)
            .map(|i| ((i * 37 % 29) as f32 - 14.5) / 7.0)
            .collect();
        let s: Vec<f32> = (0..n * 4).map(|i| (i as f32 - 3.0) / 2.0).collect();
        let want = expected(n, &x, &s);
        for opts in &targets {
            for optimize in [true, false] {
                let opts = opts.clone().with_batch(n).with_optimize(optimize);
                let label = format!(
                    "{} {:?} t{} b{n} optimize={optimize}",
                    opts.device, opts.kernels, opts.threads
                );
                let mut session = match model.session(&opts) {
                    Ok(s) => s,
                    Err(Error::Cuda(CudaError::Unavailable(why))) => {
                        require_or_skip(Need::Emulator, &label, &why);
                        continue;
                    }
                    Err(e) => panic!("{label}: {e}"),
                };
                let out = session.run(&[&x, &s]).unwrap();
                for (k, want) in want.iter().enumerate() {
                    let got = out.get(k).unwrap().data;
                    // The conv's sum may be ordered differently; the rest is exact.
                    let worst = got
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(worst <= 1e-5, "{label}: output {k} off by {worst}");
                }
            }
        }
    }
}

/// With the passes on, the broadcast add stays a binary op (c + s is not a residual add of
/// the conv) and the relu fuses into it: conv, mul, mul, sub, div, add+relu.
#[test]
fn a_broadcast_add_is_not_a_residual() {
    let session = model().session(&SessionOptions::default()).unwrap();
    let kernels: Vec<String> = session.steps().iter().map(|s| s.kernel.clone()).collect();
    assert!(kernels.iter().any(|k| k == "add+relu"), "{kernels:?}");
    assert!(kernels.iter().all(|k| !k.contains("+add")), "{kernels:?}");
}

/// Shapes that do not broadcast, and a weight that would set the batch, are errors naming
/// the node and both shapes.
#[test]
fn bad_broadcasts_name_the_node_and_the_shapes() {
    let shape_error =
        |g: serde_json::Value, w: Weights| match Model::from_parts(&common::graph_def(&g), &w) {
            Err(Error::Graph { error, .. }) => match *error {
                GraphError::Invalid { node, detail, .. } => format!("{node}: {detail}"),
                other => panic!("not a shape error: {other}"),
            },
            Err(e) => panic!("not a graph error: {e}"),
            Ok(_) => panic!("loaded"),
        };
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 4, 3, 5]}, {"name": "y", "shape": [-1, 3, 3, 5]}],
        "nodes": [{"name": "m", "op": "mul", "inputs": ["x", "y"]}],
        "outputs": ["m"]
    });
    let e = shape_error(g, Weights::default());
    assert!(
        e.contains("m: ") && e.contains("[1, 4, 3, 5]") && e.contains("[1, 3, 3, 5]"),
        "{e}"
    );
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 4]}],
        "nodes": [{"name": "m", "op": "mul", "inputs": ["x"], "weights": {"other": "big"}}],
        "outputs": ["m"]
    });
    let mut w = Weights::default();
    w.insert("big", &[2, 1, 4], vec![1.0; 8]).unwrap();
    let e = shape_error(g, w);
    assert!(e.contains("batch"), "{e}");
}
