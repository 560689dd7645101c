//! One test per kind of bad model or input: each is a typed error naming the culprit,
//! never a panic. File-format cases (headers, offsets, dtypes) are in loader/tests.

mod common;

use common::{graph_def, temp_path, tiny_graph, tiny_model, tiny_weights};
use kestrel::{Error, GraphError, Model, SessionOptions, Weights};
use serde_json::{json, Value};

/// Builds the tiny model after `edit` changes its graph JSON.
fn build(edit: impl FnOnce(&mut Value)) -> Result<Model, Error> {
    let mut g = tiny_graph();
    edit(&mut g);
    Model::from_parts(&graph_def(&g), &tiny_weights())
}

fn graph_err(r: Result<Model, Error>) -> GraphError {
    match r {
        Err(Error::Graph { error, .. }) => *error,
        Err(other) => panic!("expected a graph error, got {other}"),
        Ok(_) => panic!("expected a graph error, the model loaded"),
    }
}

#[test]
fn node_naming_a_missing_tensor() {
    let e = graph_err(build(|g| {
        g["nodes"][0]["weights"]["weight"] = json!("nope.weight")
    }));
    assert_eq!(
        e,
        GraphError::MissingWeight {
            node: "conv".into(),
            role: "weight".into(),
            tensor: "nope.weight".into()
        }
    );
    assert!(e.to_string().contains("\"nope.weight\""));
}

#[test]
fn node_naming_a_missing_node() {
    let e = graph_err(build(|g| g["nodes"][1]["inputs"] = json!(["ghost"])));
    assert_eq!(
        e,
        GraphError::MissingValue {
            node: "relu".into(),
            name: "ghost".into()
        }
    );
}

#[test]
fn output_naming_a_missing_node() {
    let e = graph_err(build(|g| g["outputs"] = json!(["ghost"])));
    assert_eq!(
        e,
        GraphError::MissingOutput {
            name: "ghost".into()
        }
    );
}

#[test]
fn duplicate_node_names() {
    let e = graph_err(build(|g| g["nodes"][1]["name"] = json!("conv")));
    assert_eq!(
        e,
        GraphError::DuplicateName {
            name: "conv".into()
        }
    );
    let e = graph_err(build(|g| g["nodes"][1]["name"] = json!("input")));
    assert_eq!(
        e,
        GraphError::DuplicateName {
            name: "input".into()
        }
    );
}

#[test]
fn a_cycle() {
    // conv reads relu, relu reads conv.
    let e = graph_err(build(|g| g["nodes"][0]["inputs"] = json!(["relu"])));
    assert!(
        matches!(&e, GraphError::Cycle { node } if node == "conv" || node == "relu"),
        "{e}"
    );
    let e = graph_err(build(|g| g["nodes"][1]["inputs"] = json!(["relu"])));
    assert_eq!(
        e,
        GraphError::Cycle {
            node: "relu".into()
        }
    );
}

#[test]
fn nodes_out_of_order_are_sorted() {
    let model = build(|g| g["nodes"].as_array_mut().unwrap().reverse()).unwrap();
    let layers = model.layers(1).unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["conv", "relu", "flatten", "fc"]);
}

#[test]
fn an_unknown_op() {
    let e = graph_err(build(|g| g["nodes"][1]["op"] = json!("swiglu")));
    assert_eq!(
        e,
        GraphError::UnknownOp {
            node: "relu".into(),
            op: "swiglu".into()
        }
    );
    assert!(e.to_string().contains("supported: conv2d"));
}

#[test]
fn a_weight_of_the_wrong_shape() {
    let mut w = tiny_weights();
    w.insert("conv.weight", &[4, 3, 3, 3], vec![0.0; 108])
        .unwrap();
    let e = graph_err(Model::from_parts(&graph_def(&tiny_graph()), &w));
    assert_eq!(
        e,
        GraphError::WeightShape {
            node: "conv".into(),
            role: "weight".into(),
            tensor: "conv.weight".into(),
            expected: vec![4, 2, 3, 3],
            found: vec![4, 3, 3, 3]
        }
    );
    let mut w = tiny_weights();
    w.insert("fc.bias", &[4], vec![0.0; 4]).unwrap();
    let e = graph_err(Model::from_parts(&graph_def(&tiny_graph()), &w));
    assert!(
        matches!(e, GraphError::WeightShape { ref node, ref role, .. } if node == "fc" && role == "bias"),
        "{e}"
    );
}

#[test]
fn a_required_weight_not_given_and_an_unknown_role() {
    let e = graph_err(build(|g| {
        g["nodes"][0]["weights"]
            .as_object_mut()
            .unwrap()
            .remove("weight");
    }));
    assert_eq!(
        e,
        GraphError::WeightNotGiven {
            node: "conv".into(),
            op: "conv2d",
            role: "weight"
        }
    );
    let e = graph_err(build(|g| {
        g["nodes"][1]["weights"] = json!({"weight": "conv.weight"})
    }));
    assert!(matches!(e, GraphError::UnexpectedWeight { .. }), "{e}");
}

#[test]
fn stride_zero() {
    let e = graph_err(build(|g| g["nodes"][0]["attrs"]["stride"] = json!([0, 1])));
    assert!(
        matches!(&e, GraphError::Invalid { node, .. } if node == "conv"),
        "{e}"
    );
    assert!(e.to_string().contains("stride"), "{e}");
}

#[test]
fn kernel_larger_than_the_padded_input() {
    let mut w = tiny_weights();
    w.insert("conv.weight", &[4, 2, 9, 9], vec![0.0; 648])
        .unwrap();
    let e = graph_err(Model::from_parts(&graph_def(&tiny_graph()), &w));
    assert!(
        matches!(&e, GraphError::Invalid { node, .. } if node == "conv"),
        "{e}"
    );
}

#[test]
fn attributes_of_the_wrong_type_unknown_or_absurd() {
    let e = graph_err(build(|g| g["nodes"][0]["attrs"]["padding"] = json!("same")));
    assert!(
        matches!(&e, GraphError::Attr { attr, .. } if attr == "padding"),
        "{e}"
    );
    let e = graph_err(build(|g| g["nodes"][0]["attrs"]["paddin"] = json!([1, 1])));
    assert!(
        matches!(&e, GraphError::Attr { attr, .. } if attr == "paddin"),
        "{e}"
    );
    let e = graph_err(build(|g| {
        g["nodes"][0]["attrs"]["padding"] = json!([1u64 << 40, 1])
    }));
    assert!(
        matches!(&e, GraphError::Attr { attr, .. } if attr == "padding"),
        "{e}"
    );
    let e = graph_err(build(|g| g["nodes"][2]["attrs"]["start_dim"] = json!(7)));
    assert!(
        matches!(&e, GraphError::Attr { attr, .. } if attr == "start_dim"),
        "{e}"
    );
}

#[test]
fn wrong_arity() {
    let e = graph_err(build(|g| g["nodes"][1]["inputs"] = json!(["conv", "conv"])));
    assert!(matches!(e, GraphError::Arity { found: 2, .. }), "{e}");
}

#[test]
fn an_absurd_input_shape() {
    let e = build(|g| g["inputs"][0]["shape"] = json!([-1, 2, 1u64 << 40, 5])).unwrap_err();
    assert!(e.to_string().contains("input"), "{e}");
}

/// The relu node of the tiny graph made another activation: its errors name the node
/// and the attribute, and a version-2 op in a version-1 graph names both versions.
#[test]
fn bad_activations_name_the_node_and_the_value() {
    let act = |op: &str, attrs: Value, version: u32| {
        build(|g| {
            g["version"] = json!(version);
            g["nodes"][1]["op"] = json!(op);
            g["nodes"][1]["attrs"] = attrs;
        })
    };
    let attr_error = |r, want: &str| match graph_err(r) {
        GraphError::Attr { node, attr, detail } => {
            assert_eq!((node.as_str(), attr.as_str()), ("relu", want), "{detail}");
            detail
        }
        other => panic!("not an attribute error: {other}"),
    };
    let detail = attr_error(act("clamp", json!({}), 2), "min");
    assert!(detail.contains("needs a min, a max or both"), "{detail}");
    let detail = attr_error(act("clamp", json!({"min": 2.0, "max": 1.0}), 2), "min");
    assert!(detail.contains("2 is above max 1"), "{detail}");
    let detail = attr_error(act("gelu", json!({"approximate": "erf"}), 2), "approximate");
    assert!(detail.contains("\"erf\""), "{detail}");
    attr_error(act("elu", json!({"alpha": "big"}), 2), "alpha");
    attr_error(act("sigmoid", json!({"beta": 1}), 2), "beta");
    let e = graph_err(act("silu", json!({}), 1));
    assert_eq!(
        e,
        GraphError::OpTooNew {
            node: "relu".into(),
            op: "silu".into(),
            needs: 2,
            version: 1
        }
    );
    assert!(e.to_string().contains("needs graph version 2"), "{e}");
    // Every one of them builds in a version-2 graph.
    for op in [
        "sigmoid",
        "silu",
        "hardsigmoid",
        "hardswish",
        "tanh",
        "gelu",
        "leaky_relu",
        "elu",
    ] {
        act(op, json!({}), 2).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    act("clamp", json!({"max": 1.5}), 2).unwrap();
}

#[test]
fn an_unknown_graph_version() {
    let e = graph_err(build(|g| g["version"] = json!(5)));
    assert_eq!(
        e,
        GraphError::Version {
            found: 5,
            supported: 4
        }
    );
}

#[test]
fn inputs_of_the_wrong_rank_channels_or_size() {
    let model = tiny_model();
    let msg = |shape: &[usize]| model.check_input_shape(0, shape).unwrap_err().to_string();
    assert!(msg(&[1, 2, 5]).contains("rank 3 instead of 4"));
    assert!(msg(&[1, 3, 5, 5]).contains("channels 3 instead of 2"));
    assert!(msg(&[1, 2, 6, 5]).contains("height 6 instead of 5"));
    assert!(msg(&[1, 2, 5, 4]).contains("width 4 instead of 5"));
    assert_eq!(model.check_input_shape(0, &[4, 2, 5, 5]).unwrap(), 4);
    let mut s = model.session(&SessionOptions::default()).unwrap();
    let e = s.run(&[&[0.0; 49]]).err().unwrap();
    assert!(
        matches!(&e, Error::Input { name, .. } if name == "input"),
        "{e}"
    );
    assert!(s.run(&[]).is_err());
    assert!(model
        .session(&SessionOptions::default().with_batch(0))
        .is_err());
}

#[test]
fn a_file_without_a_graph_loads_as_weights_only() {
    let path = temp_path("state_dict.safetensors");
    let bytes =
        kestrel_loader::testfile::f32_file(&[("conv.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0])], &[]);
    std::fs::write(&path, bytes).unwrap();
    let e = Model::load(&path).unwrap_err();
    assert!(matches!(e, Error::NoGraph { .. }), "{e}");
    assert!(e.to_string().contains("state_dict.safetensors"));
    let w = Weights::load(&path).unwrap();
    assert_eq!(w.get("conv.weight").unwrap().shape, [2, 2]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_graph_built_in_code_binds_weights_by_name_and_runs() {
    use kestrel_kernels::{activation, conv2d, linear};
    let model = tiny_model();
    let opts = SessionOptions::default()
        .with_batch(2)
        .with_kernels(kestrel::Kernels::Reference);
    let mut s = model.session(&opts).unwrap();
    let input: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 25.0).collect();
    let out = s.run(&[&input]).unwrap();
    let y = out.get(0).unwrap();
    assert_eq!(y.shape, [2, 3]);
    let mut fast = model
        .session(&SessionOptions::default().with_batch(2))
        .unwrap();
    let fast_out = fast.run(&[&input]).unwrap().get(0).unwrap().to_tensor();
    // The SIMD kernels sum in another order than the f64 reference: rel 1e-5.
    assert!(kestrel::compare::diff(fast_out.data(), y.data, 1e-5, 0.0).ok());
    // The same computation by hand with the reference kernels and the named weights:
    // bit for bit what the reference executor computes.
    let w = tiny_weights();
    let data = |n: &str| w.get(n).unwrap().data.clone();
    let p = conv2d::Conv2dParams {
        n: 2,
        c_in: 2,
        h: 5,
        w: 5,
        c_out: 4,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let mut conv = vec![0.0; 200];
    conv2d::reference::conv2d(
        &p,
        &input,
        &data("conv.weight"),
        Some(&data("conv.bias")),
        &mut conv,
    );
    let mut relu = vec![0.0; 200];
    activation::reference::relu(&conv, &mut relu);
    let lp = linear::LinearParams {
        rows: 2,
        in_features: 100,
        out_features: 3,
    };
    let mut want = vec![0.0; 6];
    linear::reference::linear(
        &lp,
        &relu,
        &data("fc.weight"),
        Some(&data("fc.bias")),
        &mut want,
    );
    assert_eq!(y.data, &want[..]);
    assert!(want.iter().any(|&v| v.abs() > 0.1), "{want:?}");
}

/// An arena past what the machine can give is `Error::OutOfMemory`, not an abort: CIFAR
/// net at batch 2^21 run whole needs 2^36 floats (256 GiB) for conv1's output alone.
/// Under Linux's default heuristic overcommit such a request is refused outright; with
/// overcommit forced on (`vm.overcommit_memory = 1`) it would be granted lazily, so there
/// the test only checks that building the session does not touch the pages. Left to
/// choose, the session runs that batch in passes of one image (`micro_batch`), with a
/// small arena; its outputs at the whole batch are allocated fallibly too: the v3ops
/// fixture's `up2` output, 4·26·22 floats an image, at the largest batch whose tensors
/// stay under the planner's cap of 2^36 elements, is 130 GB.
#[test]
fn arena_larger_than_memory_is_an_error() {
    let model = Model::load(common::fixture("cifarnet")).unwrap();
    let always =
        std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "1");
    let whole = kestrel::SessionOptions::default()
        .with_batch(1 << 21)
        .with_micro_batch(Some(1 << 21));
    // v3ops' largest tensor is 5·44·22 floats an image.
    let v3ops = Model::load(common::fixture("v3ops")).unwrap();
    let passes = kestrel::SessionOptions::default().with_batch((1 << 36) / (5 * 44 * 22));
    for (model, opts, want) in [
        (&model, whole, "session arena"),
        (&v3ops, passes, "session outputs"),
    ] {
        match model.session(&opts) {
            Err(Error::OutOfMemory { what, .. }) => assert_eq!(what, want),
            Ok(_) if always => {}
            Ok(_) => panic!("{want}: hundreds of GiB were granted"),
            Err(e) => panic!("{want}: expected out of memory, got: {e}"),
        }
    }
    let in_passes = kestrel::SessionOptions::default().with_batch(1 << 21);
    assert_eq!(model.session(&in_passes).unwrap().images_per_pass(), 1);
}

/// Found by fuzzing (`fuzz/`): inputs with two different fixed batches loaded, yet no
/// session could run them, since a session runs every input at one batch.
#[test]
fn inputs_with_different_fixed_batches() {
    let e = graph_err(build(|g| {
        g["inputs"] = json!([
            {"name": "input", "shape": [3, 2, 5, 5]},
            {"name": "b", "shape": [2, 2, 5, 5]}
        ])
    }));
    assert!(
        matches!(&e, GraphError::BadInput { name, detail }
            if name == "b" && detail.contains("fixed batch 3")),
        "{e}"
    );
}

/// Load checks the graph at the batch its sessions will run: a fixed batch on any input,
/// not only the first. Here node "big" fits in 2^36 floats at batch 1 but not at batch 2,
/// the only batch this model can run.
#[test]
fn dynamic_input_beside_a_fixed_one_is_checked_at_the_fixed_batch() {
    let e = graph_err(build(|g| {
        g["inputs"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "b", "shape": [2, 3, 1, 1]}));
        g["nodes"].as_array_mut().unwrap().push(json!(
            {"name": "big", "op": "adaptive_avg_pool2d", "inputs": ["b"],
             "attrs": {"output_size": [131072, 131072]}}
        ));
        g["outputs"] = json!(["fc", "big"]);
    }));
    assert!(
        matches!(&e, GraphError::Invalid { node, .. } if node == "big"),
        "{e}"
    );
}

/// A conv's kernel size and c_out come from its weight, so when they do not fit (here a
/// 3×3 kernel over an unpadded 2×2 input) the error names the weight and its shape too:
/// a weight bound to the wrong tensor shows up this way.
#[test]
fn a_conv_kernel_that_does_not_fit_names_its_weight() {
    let e = graph_err(build(|g| {
        g["inputs"][0]["shape"] = json!([-1, 2, 2, 2]);
        g["nodes"][0]["attrs"]["padding"] = json!([0, 0]);
    }));
    let msg = e.to_string();
    assert!(msg.contains("\"conv\""), "{msg}");
    assert!(msg.contains("larger than the padded input"), "{msg}");
    assert!(
        msg.contains("weight \"conv.weight\" of shape [4, 2, 3, 3]"),
        "{msg}"
    );
}
