//! The blocks of modern CNNs end to end: ConvNeXt's channels-last block made NCHW by the
//! passes (same values, no permute left, the layer scale folded into the conv), a
//! squeeze-excite block in two kernels (the gate, then the mul, or the projection conv
//! multiplying the gate into x as it reads it), a ShuffleNet channel shuffle and chunk (reshape →
//! permute → reshape → slices), on the reference kernels, every ISA at 1 and 2 threads and
//! the emulated CUDA executor; and bad attributes and shapes named by node.

mod common;

use kestrel::{Device, Error, GraphError, Kernels, Model, SessionOptions, Weights};
use serde_json::{json, Value};

use common::{every_target, session_or_skip as session};

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 37 % 29) as f32 - 14.5) / 9.0)
        .collect()
}

/// x (n, 8, 5, 7) → dwconv 7×7 → permute NHWC → layer_norm(8) → linear 8→32 → gelu →
/// linear 32→8 → permute NCHW → · layer scale (8, 1, 1) → + x: torchvision's CNBlock.
fn convnext_block() -> Model {
    let g = json!({
        "version": 3,
        "inputs": [{"name": "x", "shape": [-1, 8, 5, 7]}],
        "nodes": [
            {"name": "dw", "op": "conv2d", "inputs": ["x"],
             "weights": {"weight": "dw.w", "bias": "dw.b"},
             "attrs": {"padding": [3, 3], "groups": 8}},
            {"name": "nhwc", "op": "permute", "inputs": ["dw"], "attrs": {"dims": [0, 2, 3, 1]}},
            {"name": "ln", "op": "layer_norm", "inputs": ["nhwc"],
             "weights": {"weight": "ln.w", "bias": "ln.b"},
             "attrs": {"normalized_shape": [8], "eps": 1e-6}},
            {"name": "fc1", "op": "linear", "inputs": ["ln"], "weights": {"weight": "fc1.w", "bias": "fc1.b"}},
            {"name": "gelu", "op": "gelu", "inputs": ["fc1"]},
            {"name": "fc2", "op": "linear", "inputs": ["gelu"], "weights": {"weight": "fc2.w", "bias": "fc2.b"}},
            {"name": "nchw", "op": "permute", "inputs": ["fc2"], "attrs": {"dims": [0, 3, 1, 2]}},
            {"name": "scale", "op": "mul", "inputs": ["nchw"], "weights": {"other": "gamma"}},
            {"name": "out", "op": "add", "inputs": ["scale", "x"]}
        ],
        "outputs": ["out"]
    });
    let mut w = Weights::default();
    let shapes: [(&str, &[usize]); 9] = [
        ("dw.w", &[8, 1, 7, 7]),
        ("dw.b", &[8]),
        ("ln.w", &[8]),
        ("ln.b", &[8]),
        ("fc1.w", &[32, 8]),
        ("fc1.b", &[32]),
        ("fc2.w", &[8, 32]),
        ("fc2.b", &[8]),
        ("gamma", &[8, 1, 1]),
    ];
    for (k, (name, shape)) in shapes.iter().enumerate() {
        let len = shape.iter().product();
        let v = values(len, k).iter().map(|v| v / 4.0).collect();
        w.insert(name, shape, v).unwrap();
    }
    Model::from_parts(&common::graph_def(&g), &w).unwrap()
}

/// Every target, with the passes, gives what the reference kernels give without them.
fn passes_keep_values(model: &Model, chw: usize) {
    for n in [1, 3] {
        let x = values(n * chw, n);
        let plain = SessionOptions::default()
            .with_kernels(Kernels::Reference)
            .with_optimize(false)
            .with_batch(n);
        let mut s = session(model, &plain, "reference").unwrap();
        let want = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
        for opts in every_target() {
            let opts = opts.with_batch(n);
            let label = format!("{} {:?} t{} b{n}", opts.device, opts.kernels, opts.threads);
            let Some(mut s) = session(model, &opts, &label) else {
                continue;
            };
            let got = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            // Sums reordered (conv vs linear, folded scale): a few ulps of values ~1.
            assert!(worst <= 2e-5, "{label}: off by {worst}");
        }
    }
}

fn kernels_of(model: &Model) -> Vec<String> {
    let s = model.session(&SessionOptions::default()).unwrap();
    s.steps().iter().map(|s| s.kernel.clone()).collect()
}

#[test]
fn convnext_block_runs_nchw_with_the_same_values() {
    let model = convnext_block();
    passes_keep_values(&model, 8 * 35);
    // dwconv, layer norm, conv+gelu, conv (scale folded)+residual: no permute, no mul.
    let kernels = kernels_of(&model);
    assert_eq!(kernels.len(), 4, "{kernels:?}");
    assert!(
        kernels.iter().all(|k| k != "copy" && !k.starts_with("mul")),
        "{kernels:?}"
    );
}

/// x (n, 16, 5, 7) · hardsigmoid(conv 4→16(relu(conv 16→4(avgpool(x))))): MobileNetV3's SE.
fn se_block(pool: Value) -> Model {
    let out = json!({"name": "out", "op": "mul", "inputs": ["gate", "x"]});
    se_graph(pool, vec![out], json!(["out"]), &[])
}

/// The SE block's nodes (gate in "gate"), then `tail` (which computes x · gate), returning
/// `outputs`; `extra` are the tail's weights.
fn se_graph(pool: Value, tail: Vec<Value>, outputs: Value, extra: &[(&str, &[usize])]) -> Model {
    let mut nodes = vec![
        pool,
        json!({"name": "fc1", "op": "conv2d", "inputs": ["pool"], "weights": {"weight": "fc1.w", "bias": "fc1.b"}}),
        json!({"name": "relu", "op": "relu", "inputs": ["fc1"]}),
        json!({"name": "fc2", "op": "conv2d", "inputs": ["relu"], "weights": {"weight": "fc2.w", "bias": "fc2.b"}}),
        json!({"name": "gate", "op": "hardsigmoid", "inputs": ["fc2"]}),
    ];
    nodes.extend(tail);
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 16, 5, 7]}],
        "nodes": nodes,
        "outputs": outputs
    });
    let mut w = Weights::default();
    let shapes: [(&str, &[usize]); 4] = [
        ("fc1.w", &[4, 16, 1, 1]),
        ("fc1.b", &[4]),
        ("fc2.w", &[16, 4, 1, 1]),
        ("fc2.b", &[16]),
    ];
    for (k, (name, shape)) in shapes.iter().chain(extra).enumerate() {
        let len = shape.iter().product();
        w.insert(name, shape, values(len, k + 3)).unwrap();
    }
    Model::from_parts(&common::graph_def(&g), &w).unwrap()
}

#[test]
fn squeeze_excite_is_a_gate_and_a_mul() {
    let pools = [
        json!({"name": "pool", "op": "adaptive_avg_pool2d", "inputs": ["x"], "attrs": {"output_size": [1, 1]}}),
        json!({"name": "pool", "op": "mean", "inputs": ["x"], "attrs": {"dims": [2, 3], "keepdim": true}}),
    ];
    for pool in pools {
        let model = se_block(pool);
        passes_keep_values(&model, 16 * 35);
        assert_eq!(kernels_of(&model), ["se_gate+relu+hardsigmoid", "mul"]);
    }
}

/// The SE block, x · gate (operands in `order`) read by `proj`, whose weight is "p.w":
/// (c_out, 16, k, k).
fn se_projection(
    order: [&str; 2],
    proj: Value,
    tail: Vec<Value>,
    outputs: Value,
    p_w: &[usize],
) -> Model {
    let pool = json!({"name": "pool", "op": "adaptive_avg_pool2d", "inputs": ["x"], "attrs": {"output_size": [1, 1]}});
    let mut nodes = vec![
        json!({"name": "scaled", "op": "mul", "inputs": order}),
        proj,
    ];
    nodes.extend(tail);
    let c_out = [p_w[0]];
    se_graph(pool, nodes, outputs, &[("p.w", p_w), ("p.b", &c_out)])
}

#[test]
fn squeeze_excite_scales_the_projection_convs_input() {
    let proj = |attrs: Value| {
        json!({"name": "proj", "op": "conv2d", "inputs": ["scaled"],
               "weights": {"weight": "p.w", "bias": "p.b"}, "attrs": attrs})
    };
    let sum = json!({"name": "sum", "op": "add", "inputs": ["proj", "x"]});
    let act = json!({"name": "act", "op": "relu", "inputs": ["sum"]});
    let plain = |attrs: Value, outputs: Value, p_w: &[usize]| {
        se_projection(["gate", "x"], proj(attrs), vec![], outputs, p_w)
    };
    let (w8, w16, w3) = (&[8, 16, 1, 1][..], &[16, 16, 1, 1][..], &[8, 16, 3, 3][..]);
    const GATE: &str = "se_gate+relu+hardsigmoid";
    // (model, the kernels its session runs): the mul goes where the conv can take its
    // scale, and stays where it cannot, on every target with the same values.
    let with_residual = se_projection(
        ["x", "gate"],
        proj(json!({})),
        vec![sum, act],
        json!(["act"]),
        w16,
    );
    let models = [
        (
            plain(json!({}), json!(["proj"]), w8),
            &[GATE, "conv1x1s1+in_scale"][..],
        ),
        (with_residual, &[GATE, "conv1x1s1+in_scale+add+relu"]),
        // A 3×3 conv, a strided one: no input scale in the kernels.
        (
            plain(json!({"padding": [1, 1]}), json!(["proj"]), w3),
            &[GATE, "mul", "conv3x3s1"],
        ),
        (
            plain(json!({"stride": [2, 2]}), json!(["proj"]), w8),
            &[GATE, "mul", "conv1x1s2"],
        ),
        // x · gate is also returned: it must exist.
        (
            plain(json!({}), json!(["proj", "scaled"]), w8),
            &[GATE, "mul", "conv1x1s1"],
        ),
    ];
    for (model, kernels) in models {
        passes_keep_values(&model, 16 * 35);
        assert_eq!(kernels_of(&model), kernels);
        // The emulated CUDA executor runs the same plan: one launch per step.
        let opts = SessionOptions::default().with_device(Device::CudaEmulated);
        if let Some(s) = session(&model, &opts, "emulated CUDA") {
            assert_eq!(s.kernel_count(), kernels.len());
        }
    }
}

#[test]
fn the_se_fixtures_scale_every_projection_and_run_no_mul() {
    // Every SE block of torchvision's EfficientNet-B0 and MobileNetV3 feeds a 1×1
    // projection conv: each gate is read by one conv as its input scale, and no mul is left.
    for name in ["efficientnet_b0", "mobilenetv3"] {
        let model = Model::load(common::fixture(name)).unwrap();
        let kernels = kernels_of(&model);
        let count = |f: &dyn Fn(&str) -> bool| kernels.iter().filter(|k| f(k)).count();
        let gates = count(&|k| k.starts_with("se_gate"));
        assert!(gates > 0, "{name}: {kernels:?}");
        assert_eq!(
            count(&|k| k.contains("+in_scale")),
            gates,
            "{name}: {kernels:?}"
        );
        assert_eq!(count(&|k| k.starts_with("mul")), 0, "{name}: {kernels:?}");
    }
}

/// x (n, 8, 3, 5) viewed as (n, 2, 4, 3, 5), groups swapped, viewed back and split in two
/// halves: ShuffleNetV2's channel_shuffle then chunk(2, dim=1).
fn shuffle() -> Model {
    let g = json!({
        "version": 3,
        "inputs": [{"name": "x", "shape": [-1, 8, 3, 5]}],
        "nodes": [
            {"name": "v", "op": "reshape", "inputs": ["x"], "attrs": {"shape": [2, 4, 3, 5]}},
            {"name": "t", "op": "permute", "inputs": ["v"], "attrs": {"dims": [0, 2, 1, 3, 4]}},
            {"name": "s", "op": "reshape", "inputs": ["t"], "attrs": {"shape": [-1, 3, 5]}},
            {"name": "lo", "op": "slice", "inputs": ["s"], "attrs": {"dim": 1, "start": 0, "end": 4}},
            {"name": "hi", "op": "slice", "inputs": ["s"], "attrs": {"dim": -3, "start": 4, "end": 99}},
            {"name": "odd", "op": "slice", "inputs": ["s"], "attrs": {"dim": 3, "start": 1, "end": 5, "step": 2}}
        ],
        "outputs": ["lo", "hi", "odd"]
    });
    Model::from_parts(&common::graph_def(&g), &Weights::default()).unwrap()
}

#[test]
fn channel_shuffle_and_slices_move_the_right_elements() {
    let model = shuffle();
    for n in [1, 3] {
        let x: Vec<f32> = (0..n * 120).map(|i| i as f32).collect();
        // Shuffled channel j is input channel (j % 2) * 4 + j / 2.
        let at = |b: usize, c: usize, h: usize, w: usize| {
            x[((b * 8 + (c % 2) * 4 + c / 2) * 3 + h) * 5 + w]
        };
        let mut want = [Vec::new(), Vec::new(), Vec::new()];
        for b in 0..n {
            for c in 0..8 {
                for h in 0..3 {
                    for w in 0..5 {
                        want[c / 4].push(at(b, c, h, w));
                    }
                    want[2].extend([at(b, c, h, 1), at(b, c, h, 3)]);
                }
            }
        }
        for opts in every_target() {
            let opts = opts.with_batch(n);
            let label = format!("{} {:?} t{} b{n}", opts.device, opts.kernels, opts.threads);
            let Some(mut s) = session(&model, &opts, &label) else {
                continue;
            };
            let out = s.run(&[&x]).unwrap();
            for (k, want) in want.iter().enumerate() {
                assert_eq!(out.get(k).unwrap().data, &want[..], "{label}: output {k}");
            }
            let shapes: Vec<Vec<usize>> = out.iter().map(|o| o.shape.to_vec()).collect();
            assert_eq!(
                shapes,
                [vec![n, 4, 3, 5], vec![n, 4, 3, 5], vec![n, 8, 3, 2]]
            );
        }
    }
}

/// `node: detail` of the graph error a one-node version-3 graph over x (n, 4, 6, 6) gives.
fn error_of(node: Value, weights: Weights) -> String {
    let g = json!({
        "version": 3,
        "inputs": [{"name": "x", "shape": [-1, 4, 6, 6]}],
        "nodes": [node],
        "outputs": ["bad"]
    });
    match Model::from_parts(&common::graph_def(&g), &weights) {
        Err(Error::Graph { error, .. }) => match *error {
            GraphError::Invalid { node, detail, .. } => format!("{node}: {detail}"),
            GraphError::Attr { node, attr, detail } => format!("{node}: {attr}: {detail}"),
            other => format!("other: {other}"),
        },
        Err(e) => panic!("not a graph error: {e}"),
        Ok(_) => panic!("loaded"),
    }
}

#[test]
fn bad_layout_attributes_and_shapes_name_the_node() {
    let node =
        |op: &str, attrs: Value| json!({"name": "bad", "op": op, "inputs": ["x"], "attrs": attrs});
    let w = Weights::default;
    let cases = [
        (node("reshape", json!({"shape": [5, -1]})), "cannot view"),
        (
            node("reshape", json!({"shape": [-1, -1]})),
            "at most one -1",
        ),
        (
            node("permute", json!({"dims": [1, 0, 2, 3]})),
            "keeps the batch",
        ),
        (node("permute", json!({"dims": [0, 1, 2]})), "rank-4"),
        (node("slice", json!({"dim": 0, "end": 1})), "batch"),
        (
            node("slice", json!({"dim": 2, "start": 6, "end": 9})),
            "empty",
        ),
        (
            node("slice", json!({"dim": 1, "end": 2, "step": 0})),
            "at least 1",
        ),
        (node("slice", json!({"dim": 1})), "end: required"),
        (
            node("layer_norm", json!({"normalized_shape": [4]})),
            "trailing dims",
        ),
        (node("upsample_nearest2d", json!({"size": [0, 3]})), "bad: "),
        (
            node(
                "upsample_bilinear2d",
                json!({"size": [3, 3], "antialias": true}),
            ),
            "antialias: unknown",
        ),
        (
            node(
                "upsample_nearest2d",
                json!({"size": [3, 3], "scales": [2.0, -1.0]}),
            ),
            "positive",
        ),
    ];
    for (node, want) in cases {
        let e = error_of(node.clone(), w());
        assert!(e.starts_with("bad: ") && e.contains(want), "{node}: {e}");
    }
    let mut w = Weights::default();
    w.insert("t", &[4, 3, 2, 2], vec![0.5; 48]).unwrap();
    let convt = json!({"name": "bad", "op": "conv_transpose2d", "inputs": ["x"],
        "weights": {"weight": "t"}, "attrs": {"stride": [2, 2], "output_padding": [2, 0]}});
    let e = error_of(convt, w);
    assert!(
        e.starts_with("bad: ") && e.contains("output_padding"),
        "{e}"
    );
}

/// A version-3 op in a version-2 file is refused by version, naming the node.
#[test]
fn a_version_3_op_needs_a_version_3_graph() {
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 4, 6, 6]}],
        "nodes": [{"name": "p", "op": "permute", "inputs": ["x"], "attrs": {"dims": [0, 2, 3, 1]}}],
        "outputs": ["p"]
    });
    let e = Model::from_parts(&common::graph_def(&g), &Weights::default())
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("\"p\"") && text.contains("needs graph version 3"),
        "{text}"
    );
}

/// With the passes on, the shuffle's permute and reshapes move nothing: each output is one
/// strided copy from x.
#[test]
fn channel_shuffle_is_one_copy_per_half() {
    let kernels = kernels_of(&shuffle());
    let copies = kernels.iter().filter(|k| *k == "copy").count();
    assert_eq!(copies, 3, "{kernels:?}");
    assert_eq!(
        kernels.iter().filter(|k| *k == "alias").count(),
        3,
        "{kernels:?}"
    );
}

/// A channel chunk at batch 1 is a contiguous run of its input: no copy when it starts on
/// a cache line (64 floats in here), a copy otherwise (at batch 3, or 8 floats in).
#[test]
fn a_channel_chunk_at_batch_1_is_a_view() {
    let g = json!({
        "version": 3,
        "inputs": [{"name": "x", "shape": [-1, 8, 4, 4]}],
        "nodes": [
            {"name": "c", "op": "relu", "inputs": ["x"]},
            {"name": "hi", "op": "slice", "inputs": ["c"], "attrs": {"dim": 1, "start": 4, "end": 8}},
            {"name": "flat", "op": "reshape", "inputs": ["c"], "attrs": {"shape": [128]}},
            {"name": "odd", "op": "slice", "inputs": ["flat"], "attrs": {"dim": 1, "start": 8, "end": 72}},
            {"name": "r", "op": "relu", "inputs": ["hi"]}
        ],
        "outputs": ["r", "odd"]
    });
    let model = Model::from_parts(&common::graph_def(&g), &Weights::default()).unwrap();
    for (n, want) in [
        (1, ["relu", "view", "alias", "copy", "relu"]),
        (3, ["relu", "copy", "alias", "copy", "relu"]),
    ] {
        let mut s = model
            .session(&SessionOptions::default().with_batch(n))
            .unwrap();
        let kernels: Vec<String> = s.steps().iter().map(|s| s.kernel.clone()).collect();
        assert_eq!(kernels, want, "batch {n}");
        let x = values(n * 128, 5);
        let out = s.run(&[&x]).unwrap();
        let at = |b: usize, c: usize, p: usize| x[(b * 8 + c) * 16 + p].max(0.0);
        let r: Vec<f32> = (0..n)
            .flat_map(|b| (4..8).flat_map(move |c| (0..16).map(move |p| (b, c, p))))
            .map(|(b, c, p)| at(b, c, p))
            .collect();
        let odd: Vec<f32> = (0..n)
            .flat_map(|b| (8..72).map(move |i| b * 128 + i))
            .map(|i| x[i].max(0.0))
            .collect();
        assert_eq!(out.get(0).unwrap().data, &r[..], "batch {n}");
        assert_eq!(out.get(1).unwrap().data, &odd[..], "batch {n}");
    }
}
