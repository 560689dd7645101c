//! Which int8 convs a CPU session runs on the integer kernel and which it keeps in float
//! form (engine/passes/int8.rs): a conv whose bias is not finite stays float, since the
//! integer kernel's epilogue shortcut holds for finite values only (and `QConvCpu::new`
//! refuses such a bias), and the session still runs.

mod common;

use common::{le, model_file};
use kestrel::{Model, SessionOptions};
use kestrel_kernels::quantize::{QuantDtype, QuantParams};
use serde_json::json;

/// `fake_quant → conv 1×1 (2 → 8 channels, int8 weight, bias) → fake_quant`.
fn conv_model(bias: &[f32; 8]) -> Model {
    let q = QuantParams::new(0.05, 3, -128, 127, QuantDtype::Int8).unwrap();
    let fq = |name: &str, input: &str| {
        json!({"name": name, "op": "fake_quant", "inputs": [input], "attrs": {
            "scale": q.scale, "zero_point": q.zero_point, "quant_min": q.qmin,
            "quant_max": q.qmax, "dtype": q.dtype.name()}})
    };
    let g = json!({
        "version": 4,
        "inputs": [{"name": "x", "shape": [-1, 2, 4, 4]}],
        "nodes": [
            fq("q0", "x"),
            {"name": "c", "op": "conv2d", "inputs": ["q0"],
             "weights": {"weight": "c.weight", "bias": "c.bias"}},
            fq("q1", "c"),
        ],
        "outputs": ["q1"]
    });
    let w: Vec<u8> = (0..16).map(|i| (i * 29 % 255) as i8 as u8).collect();
    let f32s = |v: &[f32]| le(v, |x: f32| x.to_le_bytes().to_vec());
    let tensors = [
        ("c.weight", "I8", vec![8, 2, 1, 1], w),
        ("c.weight.scale", "F32", vec![8], f32s(&[0.01; 8])),
        ("c.bias", "F32", vec![8], f32s(bias)),
    ];
    let file = kestrel_loader::testfile::TempFile::new("int8-bias", &model_file(&g, &tensors));
    Model::load(file.path()).unwrap()
}

#[test]
fn a_conv_with_a_bias_that_is_not_finite_stays_float() {
    let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.0) * 0.2).collect();
    let finite = [0.1, -0.2, 0.3, 0.0, 0.5, -0.6, 0.7, 0.8];
    for (bad, int8) in [
        (None, true),
        (Some(f32::NAN), false),
        (Some(f32::INFINITY), false),
    ] {
        let mut bias = finite;
        if let Some(v) = bad {
            bias[3] = v;
        }
        let m = conv_model(&bias);
        let mut s = m.session(&SessionOptions::default()).unwrap();
        let kernels: Vec<String> = s.steps().into_iter().map(|st| st.kernel).collect();
        let folded = kernels.iter().any(|k| k.starts_with("qconv"));
        assert_eq!(folded, int8, "bias[3] = {bad:?}: {kernels:?}");
        let out = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
        assert_eq!(out.len(), 8 * 16);
        // The other channels' values lie on the output's grid either way.
        let on_grid = |v: f32| ((v / 0.05) - (v / 0.05).round()).abs() < 1e-3;
        let mut others = out.iter().enumerate().filter(|(i, _)| i / 16 != 3);
        assert!(
            others.all(|(_, &v)| on_grid(v)),
            "bias[3] = {bad:?}: {out:?}"
        );
    }
}
