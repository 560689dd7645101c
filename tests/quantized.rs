//! Graph version 4's quantization, end to end: a `fake_quant` node (a PT2E
//! quantize–dequantize pair) computes PyTorch's rule (`kestrel_kernels::quantize`) bit
//! for bit on the reference kernels, every ISA at 1 and 2 threads and the emulated CUDA
//! executor; a PT2E-quantized CIFAR net matches PyTorch's converted model within one
//! quantization step everywhere; bad attributes name the node and the attribute, and an
//! older file may not use the op.

mod common;

use kestrel::compare::steps;
use kestrel::{Error, GraphError, Isa, Kernels, Model, SessionOptions, Weights};
use kestrel_kernels::quantize::{reference, QuantDtype, QuantParams};
use kestrel_loader::read_tensors;
use serde_json::{json, Value};

use common::{every_target, le, model_file, session_or_skip};

fn fake_quant(attrs: Value) -> Value {
    json!({"name": "q", "op": "fake_quant", "inputs": ["x"], "attrs": attrs})
}

fn model(version: u32, node: Value) -> Result<Model, Error> {
    let g = json!({
        "version": version,
        "inputs": [{"name": "x", "shape": [-1, 3, 17, 19]}],
        "nodes": [node],
        "outputs": ["q"]
    });
    Model::from_parts(&common::graph_def(&g), &Weights::default())
}

/// Values across the int8 range at scale 0.05 and past it, with ties, ±0, ±Inf and NaN.
fn input(len: usize) -> Vec<f32> {
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.025,
        0.075,
        -0.125,
    ];
    (0..len)
        .map(|i| match i % 41 {
            k if k < special.len() => special[k],
            _ => ((i * 7919) % 1201) as f32 / 100.0 - 6.0,
        })
        .collect()
}

#[test]
fn fake_quant_computes_pytorchs_rule_on_every_target() {
    for (dtype, zp, lo, hi) in [("int8", 3, -128, 127), ("uint8", 128, 0, 255)] {
        let attrs = json!({"scale": 0.05, "zero_point": zp, "quant_min": lo, "quant_max": hi,
                           "dtype": dtype});
        let m = model(4, fake_quant(attrs)).unwrap();
        let q = match dtype {
            "int8" => QuantDtype::Int8,
            _ => QuantDtype::Uint8,
        };
        let p = QuantParams::new(0.05, zp, lo, hi, q).unwrap();
        for batch in [1, 3] {
            let x = input(batch * 3 * 17 * 19);
            let mut want = vec![0.0; x.len()];
            reference::fake_quant_slice(&p, &x, &mut want);
            for opts in every_target() {
                let label = format!("{dtype} batch {batch} {opts:?}");
                let Some(mut s) = session_or_skip(&m, &opts.with_batch(batch), &label) else {
                    continue;
                };
                let out = s.run(&[&x]).unwrap();
                let got = out.get(0).unwrap();
                assert_eq!(got.shape, &[batch, 3, 17, 19], "{label}");
                for (i, (g, w)) in got.data.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{label} [{i}]: x {}: {g} vs {w}",
                        x[i]
                    );
                }
            }
        }
    }
}

#[test]
fn bad_quantization_attributes_name_the_node_and_attribute() {
    let good = json!({"scale": 0.1, "zero_point": 0, "quant_min": -128, "quant_max": 127,
                      "dtype": "int8"});
    let with = |key: &str, v: Value| {
        let mut a = good.clone();
        a[key] = v;
        a
    };
    let without = |key: &str| {
        let mut a = good.clone();
        a.as_object_mut().unwrap().remove(key);
        a
    };
    let cases = [
        (
            with("scale", json!(0.0)),
            "scale must be finite and positive",
        ),
        (with("scale", json!(-1.0)), "got -1e0"),
        (with("scale", json!("big")), "expected a number"),
        (with("zero_point", json!(128)), "zero point 128 is outside"),
        (with("zero_point", json!(1.5)), "expected an integer"),
        (with("quant_min", json!(-129)), "-129..=127"),
        (with("quant_max", json!(-200)), "is not a range"),
        (
            with("dtype", json!("int4")),
            "\"int4\": expected \"int8\" or \"uint8\"",
        ),
        (with("axis", json!(0)), "unknown attribute"),
        (without("scale"), "required attribute is missing"),
        (without("dtype"), "required attribute is missing"),
    ];
    for (attrs, want) in cases {
        let e = match model(4, fake_quant(attrs.clone())) {
            Err(Error::Graph { error, .. }) => match *error {
                GraphError::Attr { node, attr, detail } => format!("{node}: {attr}: {detail}"),
                other => format!("other: {other}"),
            },
            Err(e) => panic!("{attrs}: not a graph error: {e}"),
            Ok(_) => panic!("{attrs}: loaded"),
        };
        assert!(e.starts_with("q: ") && e.contains(want), "{attrs}: {e}");
    }
    // A version-3 file may not use a version-4 op.
    match model(3, fake_quant(good)) {
        Err(e) => assert!(e.to_string().contains("fake_quant"), "{e}"),
        Ok(_) => panic!("a version-3 file ran fake_quant"),
    }
}

/// The PT2E-converted CIFAR net (tests/fixtures/README.md) against PyTorch's converted
/// model, batch 1 and 3, on every target: its output is quantized (a `fake_quant` last),
/// and every element is within one quantization step of PyTorch's. A value within float
/// rounding of a tie may round the other way where the sums run in another order, as
/// PyTorch's own int8 backends differ from its reference; the shares are printed.
#[test]
fn pt2e_nets_match_pytorch_within_one_step() {
    for name in [
        "cifarnet_int8",
        "resnet18_int8",
        "mobilenetv2_int8",
        "mobilenetv3_int8",
    ] {
        pt2e_net_matches_pytorch_within_one_step(name);
    }
}

/// Whether a target's float kernels sum in vector lanes, as PyTorch's do. MobileNetV3's
/// squeeze-excite pools and multiplies in f32 between two quantizations: where the
/// scalar loops' or the reference's f64 sums round a value to the other side of a
/// quantization tie, the gate moves one step and so does its whole channel, and the
/// logits end several steps off (the fixture's layers are checked one by one, each on
/// PyTorch's inputs, when it is made: LOCAL_CHECK in tests/fixtures/make_fixtures.py).
fn simd_sums(opts: &SessionOptions) -> bool {
    opts.device != kestrel::Device::Cpu
        || matches!(opts.kernels, Kernels::Isa(isa) if isa != Isa::Scalar)
}

fn pt2e_net_matches_pytorch_within_one_step(name: &str) {
    let m = Model::load(common::fixture(name)).unwrap();
    let step = m.output_step(0).expect("the output is quantized");
    assert!(step > 0.0 && m.output_step(1).is_none());
    for batch in [1, 3] {
        let refs = read_tensors(&common::reference(name, batch)).unwrap();
        let x = refs.tensors["input"].data.clone().unwrap();
        let want = refs.tensors["output"].data.clone().unwrap();
        for opts in every_target() {
            let (device, kernels, threads) = (opts.device, opts.kernels, opts.threads);
            let label = format!("batch {batch} {device} {kernels:?} threads {threads}");
            let checked = name != "mobilenetv3_int8" || simd_sums(&opts);
            let Some(mut s) = session_or_skip(&m, &opts.with_batch(batch), &label) else {
                continue;
            };
            let out = s.run(&[&x]).unwrap();
            let got = steps(out.get(0).unwrap().data, &want, step);
            eprintln!(
                "{name} {label}: {} equal, {} one step off, {} further",
                got.equal, got.one, got.beyond
            );
            if !checked {
                continue;
            }
            assert!(got.within(1.0), "{label}: {got:?}");
            assert!(got.equal * 10 >= 9 * want.len(), "{label}: {got:?}");
        }
    }
}

/// On the CPU the nets' convs run as int8 convs (engine/passes/int8.rs): the integer
/// kernels on every ISA, every CPU target's output equal bit for bit to the reference
/// kernels' (the integer oracle); CUDA keeps the float form. The CIFAR net's two convs
/// and max pools fold, and so does its classifier linear, which reads the flatten of the
/// last int8 max pool (no `fake_quant` left); ResNet-18's 20 convs all fold, each block's
/// second conv reading the first's int8 output as bytes, the residual adds fold to int8
/// adds and those into the conv before them (`+add`), the max pool to an int8 one. MobileNets' depthwise convs run on the int8
/// depthwise kernel, reading and writing bytes between int8 convs; their activations
/// between quantizations are a conv's clamp (relu6) or int8 tables (hardswish).
#[test]
fn cpu_sessions_run_the_int8_convs_on_the_integer_kernel_and_agree_bit_for_bit() {
    // (fixture, [int8 convs, of them depthwise, of them reading and writing bytes, int8
    // linears, int8 adds left, adds fused into a conv, int8 tables, fake_quant steps
    // left], first conv's kernel)
    let nets = [
        (
            "cifarnet_int8",
            [2, 0, 1, 1, 0, 0, 0, 0],
            "qconv3x3s1+relu_int8 (bytes out)",
        ),
        (
            "resnet18_int8",
            [20, 0, 18, 1, 0, 8, 0, 1],
            "qconv7x7s2+relu_int8 (bytes out)",
        ),
        (
            "mobilenetv2_int8",
            [52, 17, 50, 1, 0, 10, 0, 2],
            "qconv3x3s2+clamp_int8 (bytes out)",
        ),
        (
            "mobilenetv3_int8",
            [52, 11, 32, 2, 0, 7, 28, 1],
            "qconv3x3s2_int8 (bytes out)",
        ),
    ];
    for (name, [convs, depthwise, both, linears, adds, fused, luts, quantizes], first) in nets {
        let m = Model::load(common::fixture(name)).unwrap();
        let refs = read_tensors(&common::reference(name, 3)).unwrap();
        let x = refs.tensors["input"].data.clone().unwrap();
        let mut oracle = None;
        for opts in every_target() {
            let label = format!(
                "{name} {} {:?} threads {}",
                opts.device, opts.kernels, opts.threads
            );
            let on_cpu = opts.device == kestrel::Device::Cpu;
            let checked = name != "mobilenetv3_int8" || simd_sums(&opts);
            let reference = matches!(opts.kernels, Kernels::Reference);
            let Some(mut s) = session_or_skip(&m, &opts.with_batch(3), &label) else {
                continue;
            };
            let steps = s.steps();
            // Dense int8 convs (`qconv…`) and depthwise ones (`qdwconv…`).
            let qconvs: Vec<_> = steps
                .iter()
                .filter(|st| st.kernel.starts_with("qconv") || st.kernel.starts_with("qdwconv"))
                .collect();
            let qdws: Vec<_> = qconvs
                .iter()
                .filter(|st| st.kernel.starts_with("qdwconv"))
                .collect();
            let left = steps
                .iter()
                .filter(|st| st.kernel.starts_with("fake_quant"))
                .count();
            let count = |prefix: &str| {
                let n = steps.iter().filter(|st| st.kernel.starts_with(prefix));
                n.count()
            };
            let (qadds, qluts, qlinears) = (count("qadd"), count("qlut"), count("qlinear"));
            if !on_cpu {
                assert!(
                    qconvs.is_empty() && qadds == 0 && qlinears == 0,
                    "{label}: {steps:?}"
                );
                continue;
            }
            assert_eq!(qlinears, linears, "{label}: {steps:?}");
            assert_eq!(qconvs.len(), convs, "{label}: {steps:?}");
            assert_eq!(qdws.len(), depthwise, "{label}: {steps:?}");
            assert_eq!(qadds, adds, "{label}: {steps:?}");
            let with_add = qconvs
                .iter()
                .filter(|st| st.kernel.contains("+add"))
                .count();
            assert_eq!(with_add, fused, "{label}: {steps:?}");
            assert_eq!(qluts, luts, "{label}: {steps:?}");
            assert_eq!(left, quantizes, "{label}: {steps:?}");
            assert_eq!(qconvs[0].kernel, first, "{label}");
            // Every ResNet conv but the stem (which reads the f32 input) reads and writes
            // bytes, the int8 max pool between; the CIFAR net's second conv too.
            let bytes = qconvs
                .iter()
                .filter(|st| st.kernel.ends_with("(bytes in, out)"))
                .count();
            assert_eq!(bytes, both, "{label}: {steps:?}");
            // The SIMD executor runs the depthwise ones on the int8 depthwise kernel.
            if !reference {
                for st in &qdws {
                    let alg = st.algorithm.unwrap_or_default();
                    assert!(alg.starts_with("int8-depthwise-"), "{label}: {st:?}");
                }
            }
            // MobileNetV3's float squeeze-excite differs by ISA (`simd_sums`).
            if !checked {
                continue;
            }
            let out = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
            match &oracle {
                None => oracle = Some(out),
                Some(want) => assert_eq!(&out, want, "{label}"),
            }
        }
        assert!(oracle.is_some(), "{name}");
    }
}

/// `run_with` shows every layer of the int8 ResNet as f32, those stored as bytes decoded:
/// each within one quantization step of PyTorch's layer (all are quantized values: the
/// step is the layer's `fake_quant` scale), the bytes-out layers among them.
#[test]
fn run_with_shows_int8_layers_stored_as_bytes_as_pytorchs_values() {
    let m = Model::load(common::fixture("resnet18_int8")).unwrap();
    let refs = read_tensors(&common::reference("resnet18_int8", 3)).unwrap();
    let x = refs.tensors["input"].data.clone().unwrap();
    let mut s = m.session(&SessionOptions::default().with_batch(3)).unwrap();
    let byte_layers: Vec<String> = s
        .steps()
        .into_iter()
        .filter(|st| st.kernel.ends_with("out)"))
        .map(|st| st.name)
        .collect();
    // The 20 convs, 8 of them with their block's add fused (each named as the add), but
    // the last, read by the average pool; and the max pool.
    assert_eq!(byte_layers.len(), 20);
    let mut seen = Vec::new();
    s.run_with(&[&x], |name, out| {
        let (Some(r), Some(step)) = (
            refs.tensors.get(&format!("layer.{name}")),
            m.layer_step(name),
        ) else {
            return;
        };
        let got = steps(out.data, r.data.as_ref().unwrap(), step);
        assert!(got.within(1.0), "{name}: {got:?}");
        seen.push(name.to_string());
    })
    .unwrap();
    for name in &byte_layers {
        assert!(seen.contains(name), "{name} not compared: {seen:?}");
    }
}

/// A version-4 file whose linear layer's weight is int8: `fc.weight` (I8, 4×3) with
/// `fc.weight.scale` and, unless `zero_point` is None, `fc.weight.zero_point`, each
/// tensor given as (dtype, shape, little-endian bytes).
fn int8_linear_file(
    scale: (&str, Vec<u64>, Vec<u8>),
    zero_point: Option<(&str, Vec<u64>, Vec<u8>)>,
) -> Vec<u8> {
    let g = json!({
        "version": 4,
        "inputs": [{"name": "x", "shape": [-1, 3]}],
        "nodes": [{"name": "fc", "op": "linear", "inputs": ["x"],
                   "weights": {"weight": "fc.weight", "bias": "fc.bias"}}],
        "outputs": ["fc"]
    });
    let bias: Vec<u8> = [0.5f32, -0.25, 0.0, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let q: Vec<u8> = [1i8, -2, 3, 127, -127, 0, 5, 6, -7, 10, 20, -30]
        .iter()
        .map(|&v| v as u8)
        .collect();
    let mut tensors = vec![
        ("fc.bias", "F32", vec![4], bias),
        ("fc.weight.scale", scale.0, scale.1, scale.2),
    ];
    if let Some((dtype, shape, bytes)) = zero_point {
        tensors.push(("fc.weight.zero_point", dtype, shape, bytes));
    }
    tensors.push(("fc.weight", "I8", vec![4, 3], q));
    model_file(&g, &tensors)
}

/// Two int8 linears in a row over the rows of a rank-3 input, the first with a relu, then
/// a relu6 on its quantized output quantized again alike: on the CPU both fold to int8
/// linears (engine/passes/int8.rs), the relu6 the first one's output clamp and that
/// output stored as bytes for the second; every target equals the reference kernels bit
/// for bit, and each element is within one step of PyTorch's reference form (dequantized
/// weights, f64 sums), computed here.
#[test]
fn int8_linears_fold_chain_as_bytes_and_match_the_float_form_within_one_step() {
    let (k, hidden, out) = (12usize, 20usize, 5usize);
    let fq = |name: &str, input: &str, q: QuantParams| {
        json!({"name": name, "op": "fake_quant", "inputs": [input], "attrs": {
            "scale": q.scale, "zero_point": q.zero_point, "quant_min": q.qmin,
            "quant_max": q.qmax, "dtype": q.dtype.name()}})
    };
    let int8 = |scale, zp| QuantParams::new(scale, zp, -128, 127, QuantDtype::Int8).unwrap();
    let (q0, q1) = (int8(0.0625, 3), int8(0.03125, -128));
    let q3 = QuantParams::new(0.125, 128, 0, 255, QuantDtype::Uint8).unwrap();
    let linear = |name: &str, input: &str, bias: bool| {
        let mut weights = json!({"weight": format!("{name}.weight")});
        if bias {
            weights["bias"] = json!(format!("{name}.bias"));
        }
        json!({"name": name, "op": "linear", "inputs": [input], "weights": weights})
    };
    let g = json!({
        "version": 4,
        "inputs": [{"name": "x", "shape": [-1, 2, k]}],
        "nodes": [
            fq("q0", "x", q0),
            linear("fc1", "q0", true),
            {"name": "r1", "op": "relu", "inputs": ["fc1"]},
            fq("q1", "r1", q1),
            {"name": "r6", "op": "relu6", "inputs": ["q1"]},
            fq("q2", "r6", q1),
            linear("fc2", "q2", false),
            fq("q3", "fc2", q3),
        ],
        "outputs": ["q3"]
    });
    let weights = |len: usize, seed: usize| -> Vec<i8> {
        (0..len).map(|i| ((i * 37 + seed) % 255) as i8).collect()
    };
    let (w1, w2) = (weights(hidden * k, 5), weights(out * hidden, 11));
    let s1: Vec<f32> = (0..hidden)
        .map(|o| 0.002 + 0.0005 * (o % 3) as f32)
        .collect();
    let s2: Vec<f32> = (0..out).map(|o| 0.004 + 0.001 * (o % 2) as f32).collect();
    let b1: Vec<f32> = (0..hidden).map(|o| 0.1 * (o as f32 - 10.0)).collect();
    let f32s = |v: &[f32]| le(v, |x: f32| x.to_le_bytes().to_vec());
    let i8s = |v: &[i8]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
    let (hn, on, kn) = (hidden as u64, out as u64, k as u64);
    let tensors = [
        ("fc1.weight", "I8", vec![hn, kn], i8s(&w1)),
        ("fc1.weight.scale", "F32", vec![hn], f32s(&s1)),
        ("fc1.bias", "F32", vec![hn], f32s(&b1)),
        ("fc2.weight", "I8", vec![on, hn], i8s(&w2)),
        ("fc2.weight.scale", "F32", vec![on], f32s(&s2)),
    ];
    let file = kestrel_loader::testfile::TempFile::new("int8-mlp", &model_file(&g, &tensors));
    let m = Model::load(file.path()).unwrap();

    // PyTorch's reference form, row by row.
    let dense = |x: &[f32], w: &[i8], s: &[f32], b: Option<&[f32]>, n_out: usize| {
        let n_in = x.len();
        (0..n_out)
            .map(|o| {
                let dot: f64 = (0..n_in)
                    .map(|i| f64::from(w[o * n_in + i]) * f64::from(s[o]) * f64::from(x[i]))
                    .sum();
                (dot + b.map_or(0.0, |b| f64::from(b[o]))) as f32
            })
            .collect::<Vec<f32>>()
    };
    let batch = 3;
    let x = input(batch * 2 * k);
    let mut want = Vec::new();
    for row in x.chunks(k) {
        let x0: Vec<f32> = row.iter().map(|&v| reference::fake_quant(&q0, v)).collect();
        let h: Vec<f32> = dense(&x0, &w1, &s1, Some(&b1), hidden)
            .iter()
            .map(|&v| reference::fake_quant(&q1, v.max(0.0)))
            .map(|v| reference::fake_quant(&q1, v.clamp(0.0, 6.0)))
            .collect();
        let y = dense(&h, &w2, &s2, None, out);
        want.extend(y.iter().map(|&v| reference::fake_quant(&q3, v)));
    }

    let mut oracle = None;
    for opts in every_target() {
        let label = format!(
            "{} {:?} threads {}",
            opts.device, opts.kernels, opts.threads
        );
        let on_cpu = opts.device == kestrel::Device::Cpu;
        let Some(mut s) = session_or_skip(&m, &opts.with_batch(batch), &label) else {
            continue;
        };
        let kernels: Vec<String> = s.steps().into_iter().map(|st| st.kernel).collect();
        let got = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
        let off = steps(&got, &want, f64::from(q3.scale));
        assert!(off.within(1.0), "{label}: {off:?}");
        if !on_cpu {
            continue;
        }
        let folded = ["qlinear+clamp_int8 (bytes out)", "qlinear_uint8 (bytes in)"];
        assert_eq!(kernels, folded, "{label}");
        match &oracle {
            None => oracle = Some(got),
            Some(want) => assert_eq!(&got, want, "{label}"),
        }
    }
    assert!(oracle.is_some());
}

#[test]
fn int8_weights_load_as_pytorch_dequantizes_them_and_bad_ones_name_the_tensor() {
    let f32s = |v: &[f32]| le(v, |x: f32| x.to_le_bytes().to_vec());
    let i32s = |v: &[i32]| le(v, |x: i32| x.to_le_bytes().to_vec());
    let scales = [0.5f32, 0.25, 2.0, 0.125];
    let zps = [0i32, 1, -2, 3];
    let good = int8_linear_file(
        ("F32", vec![4], f32s(&scales)),
        Some(("I32", vec![4], i32s(&zps))),
    );
    let file = kestrel_loader::testfile::TempFile::new("int8-linear", &good);
    let m = Model::load(file.path()).unwrap();
    let mut s = m.session(&SessionOptions::default()).unwrap();
    let x = [1.0f32, -2.0, 0.5];
    let out = s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
    let q = [1i32, -2, 3, 127, -127, 0, 5, 6, -7, 10, 20, -30];
    let bias = [0.5f32, -0.25, 0.0, 1.0];
    for o in 0..4 {
        let w = |i: usize| (q[o * 3 + i] - zps[o]) as f32 * scales[o];
        let want = (0..3)
            .map(|i| f64::from(w(i)) * f64::from(x[i]))
            .sum::<f64>()
            + f64::from(bias[o]);
        assert!(
            (f64::from(out[o]) - want).abs() < 1e-5,
            "[{o}]: {} vs {want}",
            out[o]
        );
    }
    let bad = [
        (
            ("F32", vec![3], f32s(&scales[..3])),
            None,
            "has shape [3], expected [4]",
        ),
        (
            ("F32", vec![4], f32s(&[0.5, 0.0, 1.0, 1.0])),
            None,
            "scale 0 of channel 1",
        ),
        (
            ("I32", vec![4], i32s(&[1, 1, 1, 1])),
            None,
            "no float tensor \"fc.weight.scale\"",
        ),
        (
            ("F32", vec![4], f32s(&scales)),
            Some(("I32", vec![4], i32s(&[0, 200, 0, 0]))),
            "zero point 200 of channel 1",
        ),
        (
            ("F32", vec![4], f32s(&scales)),
            Some(("F32", vec![4], f32s(&[0.0; 4]))),
            "must be an I32 or I8 tensor",
        ),
    ];
    for (scale, zp, want) in bad {
        let file =
            kestrel_loader::testfile::TempFile::new("int8-bad", &int8_linear_file(scale, zp));
        match Model::load(file.path()) {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("\"fc\"") && e.contains("\"fc.weight\"") && e.contains(want),
                    "{want}: {e}"
                );
            }
            Ok(_) => panic!("{want}: loaded"),
        }
    }
}
