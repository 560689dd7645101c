//! The planner's memory tricks must not change results: a concat assembled in place by its
//! producers (batch 1) against the same concat copied (batch 2, where each image's channels
//! are not one contiguous run), and activations run in place.

mod common;

use kestrel::{Kernels, Model, SessionOptions, Weights};
use serde_json::{json, Value};

/// input (2, 5, 5) → conv a 1×1 → 3 ch, conv b 3×3 → 4 ch (+relu) → concat → conv c 1×1 → 2 ch.
fn branchy() -> Model {
    let g = json!({
        "version": 1,
        "inputs": [{"name": "x", "shape": [-1, 2, 5, 5]}],
        "nodes": [
            {"name": "a", "op": "conv2d", "inputs": ["x"], "weights": {"weight": "a.w"}},
            {"name": "b", "op": "conv2d", "inputs": ["x"], "weights": {"weight": "b.w", "bias": "b.b"},
             "attrs": {"padding": [1, 1]}},
            {"name": "b_relu", "op": "relu", "inputs": ["b"]},
            {"name": "cat", "op": "concat", "inputs": ["a", "b_relu"], "attrs": {"dim": 1}},
            {"name": "c", "op": "conv2d", "inputs": ["cat"], "weights": {"weight": "c.w"}}
        ],
        "outputs": ["c"]
    });
    let mut w = Weights::default();
    let mut fill = |name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 10.0)
            .collect();
        w.insert(name, shape, data).unwrap();
    };
    fill("a.w", &[3, 2, 1, 1]);
    fill("b.w", &[4, 2, 3, 3]);
    fill("b.b", &[4]);
    fill("c.w", &[2, 7, 1, 1]);
    Model::from_parts(&common::graph_def(&g), &w).unwrap()
}

#[test]
fn a_concat_assembled_in_place_matches_one_copied() {
    let model = branchy();
    let image: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
    let pair: Vec<f32> = image.iter().chain(&image).copied().collect();
    for kernels in [Kernels::Reference, Kernels::Auto] {
        let one = SessionOptions::default().with_kernels(kernels);
        let mut s1 = model.session(&one).unwrap();
        // a, b (relu fused) and c compute; the concat is assembled by a and b in place.
        assert_eq!(s1.kernel_count(), 3);
        let y1 = s1.run(&[&image]).unwrap().get(0).unwrap().to_tensor();
        let mut s2 = model.session(&one.with_batch(2)).unwrap();
        assert_eq!(s2.kernel_count(), 4, "at batch 2 the concat copies");
        let y2 = s2.run(&[&pair]).unwrap().get(0).unwrap().to_tensor();
        assert_eq!(y1.data(), &y2.data()[..y1.data().len()], "{kernels:?}");
        assert_eq!(y1.data(), &y2.data()[y1.data().len()..], "{kernels:?}");
        assert!(y1.data().iter().any(|v| v.abs() > 0.1));
    }
}

/// input (1, 3, 6, 6) → conv 3×3 pad 1 → 4 ch → `pool` 2×2 → relu6 (and, with `twice`,
/// the pool's output as a second graph output).
fn conv_pool_act(pool: &str, twice: bool) -> Model {
    conv_pool(
        pool,
        twice,
        json!({"name": "act", "op": "relu6", "inputs": ["pool"]}),
    )
}

/// As [`conv_pool_act`], with the node `act` after the pool.
fn conv_pool(pool: &str, twice: bool, act: Value) -> Model {
    let mut outputs = vec!["act"];
    if twice {
        outputs.push("pool");
    }
    let g = json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [1, 3, 6, 6]}],
        "nodes": [
            {"name": "conv", "op": "conv2d", "inputs": ["x"],
             "weights": {"weight": "w", "bias": "b"}, "attrs": {"padding": [1, 1]}},
            {"name": "pool", "op": pool, "inputs": ["conv"],
             "attrs": {"kernel_size": [2, 2], "stride": [2, 2]}},
            act
        ],
        "outputs": outputs
    });
    let mut w = Weights::default();
    let weight = (0..4 * 3 * 9).map(|i| ((i * 29 % 23) as f32 - 11.0) / 4.0);
    w.insert("w", &[4, 3, 3, 3], weight.collect()).unwrap();
    w.insert("b", &[4], vec![-1.0, 0.5, 3.0, -4.0]).unwrap();
    Model::from_parts(&common::graph_def(&g), &w).unwrap()
}

/// relu6 after a max pool moves into the conv before it (one kernel call fewer) with the
/// same outputs, NaN included; never past an average pool (relu6 does not commute with a
/// mean) nor past a pool whose output is also used on its own.
#[test]
fn activations_hoist_over_max_pools_only() {
    let mut image: Vec<f32> = (0..108).map(|i| (i as f32 * 0.71).sin() * 3.0).collect();
    image[7] = f32::NAN;
    for (pool, twice, hoisted) in [
        ("max_pool2d", false, true),
        ("avg_pool2d", false, false),
        ("max_pool2d", true, false),
    ] {
        let model = conv_pool_act(pool, twice);
        let run = |optimize: bool| {
            let opts = SessionOptions::default()
                .with_optimize(optimize)
                .with_kernels(Kernels::Reference);
            let mut s = model.session(&opts).unwrap();
            let out = s.run(&[&image]).unwrap();
            let data: Vec<Vec<f32>> = out.iter().map(|t| t.data.to_vec()).collect();
            (s.kernel_count(), data)
        };
        let ((n_opt, y_opt), (n_plain, y_plain)) = (run(true), run(false));
        let label = format!("{pool} twice={twice}");
        assert_eq!(n_opt, n_plain - hoisted as usize, "{label}");
        for (a, b) in y_opt.iter().zip(&y_plain) {
            let same = a
                .iter()
                .zip(b)
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()));
            assert!(same, "{label}: {a:?} vs {b:?}");
        }
        assert!(
            y_opt[0].iter().any(|v| v.is_nan()),
            "{label}: the NaN reaches the output"
        );
        assert!(
            y_opt[0].contains(&6.0) && y_opt[0].contains(&0.0),
            "{label}: both clamps"
        );
    }
}

/// Only an activation that never decreases commutes with a max: sigmoid, tanh, elu, clamp
/// and leaky_relu with a slope ≥ 0 move into the conv; silu, gelu, hardswish and a
/// negative slope stay after the pool. Either way the outputs are the unoptimised ones.
#[test]
fn only_non_decreasing_activations_hoist() {
    let image: Vec<f32> = (0..108).map(|i| (i as f32 * 0.37).cos() * 4.0).collect();
    let cases = [
        ("sigmoid", json!({}), true),
        ("tanh", json!({}), true),
        ("elu", json!({"alpha": 1.0}), true),
        ("clamp", json!({"min": -1.0, "max": 2.0}), true),
        ("leaky_relu", json!({"negative_slope": 0.1}), true),
        ("leaky_relu", json!({"negative_slope": -0.5}), false),
        ("silu", json!({}), false),
        ("gelu", json!({"approximate": "none"}), false),
        ("hardswish", json!({}), false),
    ];
    for (op, attrs, hoisted) in cases {
        let act = json!({"name": "act", "op": op, "inputs": ["pool"], "attrs": attrs});
        let model = conv_pool("max_pool2d", false, act);
        let run = |optimize: bool| {
            let opts = SessionOptions::default()
                .with_optimize(optimize)
                .with_kernels(Kernels::Reference);
            let mut s = model.session(&opts).unwrap();
            let out = s.run(&[&image]).unwrap().get(0).unwrap().data.to_vec();
            (s.kernel_count(), out)
        };
        let ((n_opt, y_opt), (n_plain, y_plain)) = (run(true), run(false));
        assert_eq!(n_opt, n_plain - hoisted as usize, "{op} {attrs}");
        assert_eq!(y_opt, y_plain, "{op} {attrs}");
    }
}
