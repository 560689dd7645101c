//! Shapes the CUDA kernels cannot launch are errors naming the node, found when the plan
//! is made (no GPU or NVRTC needed), never panics.

mod common;

use common::graph_def;
use kestrel::{CudaError, Error, Model, SessionOptions, Weights};
use serde_json::json;

/// A grouped 1×1 conv with more groups than a grid's z dimension holds (65535): the conv
/// GEMM puts one group per z block.
#[test]
fn more_groups_than_a_grid_holds_is_an_error_naming_the_node() {
    let groups = 70_000;
    let graph = json!({
        "version": 1,
        "inputs": [{"name": "input", "shape": [-1, 2 * groups, 1, 1]}],
        "nodes": [
            {"name": "grouped", "op": "conv2d", "inputs": ["input"],
             "weights": {"weight": "w"},
             "attrs": {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1],
                       "groups": groups}}
        ],
        "outputs": ["grouped"]
    });
    let mut weights = Weights::default();
    weights
        .insert("w", &[groups, 2, 1, 1], vec![0.5; 2 * groups])
        .unwrap();
    let model = Model::from_parts(&graph_def(&graph), &weights).unwrap();
    let err = model
        .compile_cuda(&SessionOptions::default(), "sm_90")
        .unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::CudaUnsupported { node, error } => {
            assert_eq!(node, "grouped");
            assert!(
                matches!(**error, CudaError::Unsupported { .. }),
                "{error:?}"
            );
        }
        other => panic!("not CudaUnsupported: {other:?}"),
    }
    assert!(
        msg.contains("70000 groups") && msg.contains("gridDim.z"),
        "{msg}"
    );
    // The CPU runs it.
    let mut session = model.session(&SessionOptions::default()).unwrap();
    let out = session.run(&[&vec![1.0; 2 * groups]]).unwrap();
    assert_eq!(out.get(0).unwrap().data, &vec![1.0; groups][..]);
}
