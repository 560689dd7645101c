//! Shared by the integration tests: fixtures, and a small valid model to break.
#![allow(dead_code)]

use kestrel::{
    CudaError, Device, Error, GraphDef, Isa, Kernels, Model, Session, SessionOptions, Weights,
};
use kestrel_kernels::testing::{require_or_skip, Need};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture models the generator script writes; each has `.b1` and `.b3` references.
pub const FIXTURES: &[&str] = &[
    "cifarnet",
    "cifarnet_f16",
    "resnet18",
    "mobilenetv2",
    "allops",
    "activations",
    "binary",
    "mobilenetv3",
    "efficientnet_b0",
    // Graph version 3 (layer_norm, layout ops, upsampling, conv_transpose2d): these fail
    // until the engine implements those ops.
    "shufflenet",
    "convnext",
    "yolo",
    "unet",
    "v3ops",
    // Graph version 4: PT2E's quantize–dequantize pairs.
    "qdq",
];

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.safetensors"))
}

pub fn reference(name: &str, batch: usize) -> PathBuf {
    fixtures_dir().join(format!("{name}.b{batch}.ref.safetensors"))
}

/// A temporary path unique to this process and `tag`.
pub fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kestrel-test-{}-{tag}", std::process::id()))
}

/// A small valid graph: conv 2→4 3×3 pad 1 → relu → flatten → linear 4·5·5 → 3.
pub fn tiny_graph() -> Value {
    json!({
        "version": 1,
        "inputs": [{"name": "input", "shape": [-1, 2, 5, 5]}],
        "nodes": [
            {"name": "conv", "op": "conv2d", "inputs": ["input"],
             "weights": {"weight": "conv.weight", "bias": "conv.bias"},
             "attrs": {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}},
            {"name": "relu", "op": "relu", "inputs": ["conv"]},
            {"name": "flatten", "op": "flatten", "inputs": ["relu"], "attrs": {"start_dim": 1, "end_dim": -1}},
            {"name": "fc", "op": "linear", "inputs": ["flatten"],
             "weights": {"weight": "fc.weight", "bias": "fc.bias"}}
        ],
        "outputs": ["fc"]
    })
}

/// Weights for `tiny_graph`, deterministic and of order 0.1.
pub fn tiny_weights() -> Weights {
    let mut w = Weights::default();
    let mut fill = |name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 50.0)
            .collect();
        w.insert(name, shape, data).unwrap();
    };
    fill("conv.weight", &[4, 2, 3, 3]);
    fill("conv.bias", &[4]);
    fill("fc.weight", &[3, 100]);
    fill("fc.bias", &[3]);
    w
}

pub fn graph_def(v: &Value) -> GraphDef {
    serde_json::from_value(v.clone()).expect("test graph is well-formed JSON")
}

pub fn tiny_model() -> Model {
    Model::from_parts(&graph_def(&tiny_graph()), &tiny_weights()).expect("tiny model is valid")
}

/// A model file of `tiny_weights` with `graph` (JSON text) as its graph.
pub fn tiny_file(graph: &str) -> Vec<u8> {
    let w = tiny_weights();
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = w
        .names()
        .map(|n| {
            let t = w.get(n).unwrap();
            (n.to_string(), t.shape.clone(), t.data.to_vec())
        })
        .collect();
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, d)| (n.as_str(), &s[..], &d[..]))
        .collect();
    kestrel_loader::testfile::model_file(graph, &views)
}

/// A CUDA session, or None after printing `skipping CUDA session: no CUDA device (…)` when
/// this machine has none; with REQUIRE_CUDA=1 a missing device fails instead.
pub fn cuda_session_or_skip(model: &Model, opts: &SessionOptions) -> Option<Session> {
    match model.session(opts) {
        Ok(s) => Some(s),
        Err(Error::Cuda(CudaError::Unavailable(why))) => {
            require_or_skip(Need::Gpu, "CUDA session", &why);
            None
        }
        Err(e) => panic!("CUDA session: {e}"),
    }
}

/// `count` distinct deterministic inputs for `session` and the outputs `session` gives
/// them run one by one: what concurrent runs must reproduce bit for bit.
pub fn inputs_and_lone_outputs(
    session: &mut Session,
    count: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let len: usize = session.input_shape(0).unwrap().iter().product();
    let inputs: Vec<Vec<f32>> = (0..count)
        .map(|s| {
            (0..len)
                .map(|i| ((i * 31 + s * 7919) % 251) as f32 / 125.0 - 1.0)
                .collect()
        })
        .collect();
    let outputs = inputs
        .iter()
        .map(|x| session.run(&[x]).unwrap().get(0).unwrap().data.to_vec())
        .collect();
    (inputs, outputs)
}

/// The reference kernels, every ISA this CPU has at 1 and 2 threads, and the emulated
/// CUDA executor: where a whole-model test runs.
pub fn every_target() -> Vec<SessionOptions> {
    let mut targets = vec![SessionOptions::default().with_kernels(Kernels::Reference)];
    for isa in Isa::available() {
        for threads in [1, 2] {
            let opts = SessionOptions::default().with_kernels(Kernels::Isa(isa));
            targets.push(opts.with_threads(threads));
        }
    }
    targets.push(SessionOptions::default().with_device(Device::CudaEmulated));
    targets
}

/// The session, or None (the skip printed) when it needs an emulator this machine lacks.
pub fn session_or_skip(model: &Model, opts: &SessionOptions, label: &str) -> Option<Session> {
    match model.session(opts) {
        Ok(s) => Some(s),
        Err(Error::Cuda(CudaError::Unavailable(why))) => {
            require_or_skip(Need::Emulator, label, &why);
            None
        }
        Err(e) => panic!("{label}: {e}"),
    }
}

/// A model file of graph `g` and `tensors`, each (name, dtype, shape, little-endian bytes):
/// how tests write int8 weights, which `Weights` (f32) cannot hold.
pub fn model_file(g: &Value, tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        json!({"kestrel.graph": g.to_string()}),
    );
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let (begin, end) = (data.len(), data.len() + bytes.len());
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}),
        );
        data.extend_from_slice(bytes);
    }
    kestrel_loader::testfile::raw_file(&Value::Object(header).to_string(), &data)
}

/// `values` as little-endian bytes, each by `bytes`.
pub fn le<T: Copy>(values: &[T], bytes: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    values.iter().flat_map(|&v| bytes(v)).collect()
}
