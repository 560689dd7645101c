//! The `kestrel` binary: `compare`'s exit codes (0 match, 1 over tolerance, 2 error),
//! and `info` / `run` on a shipped fixture.

mod common;

use common::{fixture, reference, temp_path};
use std::collections::BTreeMap;
use std::process::{Command, Output};

fn kestrel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(args)
        .output()
        .expect("kestrel runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn compare_exits_0_when_within_tolerance() {
    let o = kestrel(&[
        "compare",
        s(&fixture("cifarnet")),
        s(&reference("cifarnet", 1)),
        "--per-layer",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("MATCH"), "{out}");
    assert!(
        out.contains("layers:") && out.contains("0 over tolerance"),
        "{out}"
    );
}

#[test]
fn compare_exits_1_when_over_tolerance() {
    // Shift one output value by 1% of the largest: far over 1e-4 relative.
    let refs = kestrel_loader::read_tensors(&reference("cifarnet", 1)).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = refs
        .tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.shape.clone(),
                t.data.as_deref().unwrap().to_vec(),
            )
        })
        .collect();
    let out = &mut tensors.iter_mut().find(|t| t.0 == "output").unwrap().2;
    let max = out.iter().fold(0f32, |m, v| m.max(v.abs()));
    out[3] += 0.01 * max;
    let path = temp_path("tampered.ref.safetensors");
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, sh, d)| (n.as_str(), &sh[..], &d[..]))
        .collect();
    kestrel_loader::write_tensors(&path, &views, &BTreeMap::new()).unwrap();
    let o = kestrel(&["compare", s(&fixture("cifarnet")), s(&path)]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("OVER") && out.contains("MISMATCH"), "{out}");
    // A tolerance loose enough for the shift passes again.
    let o = kestrel(&[
        "compare",
        s(&fixture("cifarnet")),
        s(&path),
        "--rtol",
        "0.02",
    ]);
    assert_eq!(o.status.code(), Some(0));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn compare_exits_2_on_any_error() {
    let missing = temp_path("missing.safetensors");
    let garbage = temp_path("garbage.safetensors");
    std::fs::write(
        &garbage,
        b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!",
    )
    .unwrap();
    let (missing, garbage_s) = (s(&missing).to_string(), s(&garbage).to_string());
    let (model, good_ref) = (
        s(&fixture("cifarnet")).to_string(),
        s(&reference("cifarnet", 1)).to_string(),
    );
    let other_ref = s(&reference("resnet18", 1)).to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["compare", &missing, &good_ref],
        vec!["compare", &garbage_s, &good_ref],
        vec!["compare", &model, &garbage_s],
        // The reference of another model: its input has the wrong shape.
        vec!["compare", &model, &other_ref],
        vec!["compare", &model],
        vec!["compare", &model, &good_ref, "--rtol", "x"],
        vec!["compare", &model, &good_ref, "--device", "tpu"],
        vec!["compare", &model, &good_ref, "--precision", "bf16"],
        // tf32 and fp16 are CUDA's: the CPU refuses them rather than run fp32 silently.
        vec!["compare", &model, &good_ref, "--precision", "fp16"],
    ];
    for args in cases {
        let o = kestrel(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (_, err) = text(&kestrel(&["compare", &garbage_s, &good_ref]));
    assert!(
        err.contains("garbage.safetensors") && err.lines().count() == 1,
        "{err}"
    );
    let (_, err) = text(&kestrel(&[
        "compare",
        &model,
        &good_ref,
        "--precision",
        "tf32",
    ]));
    assert!(
        err.contains("session option precision: tf32 runs on CUDA only"),
        "{err}"
    );
    let (_, err) = text(&kestrel(&["compare", &model, &other_ref]));
    assert!(
        err.contains("channels") || err.contains("height") || err.contains("width"),
        "{err}"
    );
    std::fs::remove_file(&garbage).unwrap();
}

#[test]
fn info_lists_nodes_shapes_parameters_and_flops() {
    let o = kestrel(&["info", s(&fixture("cifarnet"))]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // conv 3→32 3×3 on 32×32: 2·27·32·1024 = 1.769 MFLOP; 60362 parameters in all.
    assert!(
        out.contains("conv2d") && out.contains("[1, 32, 32, 32]"),
        "{out}"
    );
    assert!(out.contains("1.769"), "{out}");
    assert!(out.contains("60362 parameters"), "{out}");
    assert!(out.contains("arena"), "{out}");
    // Each node's precision: all fp32 here; in a PT2E model the quantizations and the
    // layers whose weights the file stores as int8 say so.
    let rows = |out: &str| -> Vec<String> {
        let start = out.lines().position(|l| l.starts_with("node ")).unwrap();
        out.lines()
            .skip(start + 1)
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert!(rows(&out).iter().all(|r| r.ends_with("  fp32")), "{out}");
    let o = kestrel(&["info", s(&fixture("cifarnet_int8"))]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let rows = rows(&out);
    let conv1 = rows.iter().find(|r| r.starts_with("conv1 ")).unwrap();
    assert!(conv1.ends_with("  fp32, int8 weights"), "{conv1}");
    let quantizations = rows.iter().filter(|r| r.contains(" fake_quant ")).count();
    assert!(quantizations >= 5, "{out}");
    assert!(
        rows.iter()
            .filter(|r| r.contains(" fake_quant "))
            .all(|r| r.ends_with("  int8")),
        "{out}"
    );
}

#[test]
fn run_writes_outputs_that_match_the_reference() {
    let path = temp_path("run-out.safetensors");
    let o = kestrel(&[
        "run",
        s(&fixture("cifarnet")),
        "--input",
        s(&reference("cifarnet", 3)),
        "--output",
        s(&path),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("output: shape [3, 10]"), "{out}");
    let got = kestrel_loader::read_tensors(&path).unwrap();
    let want = kestrel_loader::read_tensors(&reference("cifarnet", 3)).unwrap();
    let d = kestrel::compare::diff(
        got.tensors["output"].data.as_ref().unwrap(),
        want.tensors["output"].data.as_ref().unwrap(),
        kestrel::compare::DEFAULT_RTOL,
        kestrel::compare::ATOL,
    );
    assert!(d.ok(), "{d:?}");
    std::fs::remove_file(&path).unwrap();
    // Without --input: a seeded random input, the same on every run.
    let a = text(&kestrel(&[
        "run",
        s(&fixture("cifarnet")),
        "--batch",
        "2",
        "--seed",
        "7",
    ]))
    .0;
    let b = text(&kestrel(&[
        "run",
        s(&fixture("cifarnet")),
        "--batch",
        "2",
        "--seed",
        "7",
    ]))
    .0;
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("ran in"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(
        a.contains("output: shape [2, 10]") && a.contains("row 1: argmax"),
        "{a}"
    );
}

/// A model with a fixed batch runs, benches and shows at that batch with no --batch.
#[test]
fn a_fixed_batch_is_the_default_batch() {
    let mut g = common::tiny_graph();
    g["inputs"][0]["shape"] = serde_json::json!([2, 2, 5, 5]);
    let path = common::temp_path("fixed-batch.safetensors");
    std::fs::write(&path, common::tiny_file(&g.to_string())).unwrap();
    for args in [
        vec!["run", s(&path)],
        vec!["bench", s(&path), "--iters", "3"],
        vec!["info", s(&path)],
    ] {
        let out = kestrel(&args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stdout.contains("batch 2"), "{args:?}: {stdout}");
    }
    let _ = std::fs::remove_file(&path);
}

/// `bench --per-layer` prints each step's time, FLOP/s and bytes/s, and with `--json`
/// writes one row per step.
#[test]
fn bench_per_layer_prints_rates_and_writes_json_rows() {
    let path = temp_path("bench-per-layer.json");
    let o = kestrel(&[
        "bench",
        s(&fixture("cifarnet")),
        "--iters",
        "16",
        "--warmup",
        "2",
        "--per-layer",
        "--json",
        s(&path),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let header = out
        .lines()
        .find(|l| l.starts_with("step "))
        .unwrap_or_else(|| panic!("no per-step table: {out}"));
    for column in [
        "kernel",
        "algorithm",
        "µs",
        "MFLOP",
        "GFLOP/s",
        "GB/s",
        "%time",
    ] {
        assert!(header.contains(column), "{column}: {header}");
    }
    // The H100 percentages are for CUDA only.
    assert!(!header.contains("%hbm"), "{header}");
    // conv1 is 3→32 3x3 on 32x32: 1.769 MFLOP, and it has a row with a time. It carries
    // relu1, hoisted over pool1 by the graph passes.
    let conv1 = out.lines().find(|l| l.starts_with("conv1+relu1 ")).unwrap();
    // A first layer (3 input channels): the direct kernel (`ConvAlgorithm::choose`).
    assert!(
        conv1.contains("conv3x3s1+relu") && conv1.contains(" direct ") && conv1.contains("1.769"),
        "{conv1}"
    );
    assert!(out.contains("by kind:"), "{out}");
    // The CPU and the blocking chosen for it, as printed and in the JSON.
    let isa = kestrel_kernels::Isa::from_env().unwrap();
    let t = kestrel_kernels::gemm::tiles(isa);
    let kernels = format!(
        "kernels: {isa}, GEMM microkernel {}×{}, blocks of kc {} × nc {}, ",
        t.mr, t.nr, t.kc, t.nc
    );
    assert!(
        out.lines().any(|l| l.starts_with(&kernels)),
        "{kernels}: {out}"
    );
    let cpu = kestrel_kernels::cpu_info::cpu();
    assert!(out.contains(&format!("cpu: {cpu}")), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["precision"], "fp32", "{json}");
    assert_eq!(json["cpu"]["model"], cpu.model, "{json}");
    assert_eq!(json["cpu"]["gemm"]["nc"], t.nc, "{json}");
    assert_eq!(
        json["cpu"]["gemm"]["mc_rows"],
        serde_json::json!(t.mc.map(|p| p * t.mr))
    );
    let rows = json["per_layer"].as_array().unwrap();
    // cifarnet after the passes: conv1+relu1, relu1 (the pool), conv2+relu2, relu2,
    // flatten, fc.
    assert_eq!(rows.len(), 6, "{rows:?}");
    let conv1 = rows.iter().find(|r| r["name"] == "conv1+relu1").unwrap();
    assert_eq!(conv1["kernel"], "conv3x3s1+relu");
    assert_eq!(conv1["algorithm"], "direct");
    assert_eq!(conv1["flops"], 1_769_472);
    // x 3·32·32 + y 32·32·32 + weight 32·3·3·3 + bias 32 floats.
    assert_eq!(conv1["bytes"], 4 * (3072 + 32768 + 864 + 32));
    assert!(conv1["us"].as_f64().unwrap() > 0.0, "{conv1}");
    let flatten = rows.iter().find(|r| r["name"] == "flatten").unwrap();
    assert_eq!(
        (&flatten["us"], &flatten["bytes"]),
        (&0.0.into(), &0.into())
    );
    std::fs::remove_file(&path).unwrap();
    // Without --per-layer there are no rows.
    let o = kestrel(&[
        "bench",
        s(&fixture("cifarnet")),
        "--iters",
        "3",
        "--json",
        s(&path),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(json.get("per_layer").is_none(), "{json}");
    std::fs::remove_file(&path).unwrap();
}

/// `bench --micro-batch K` runs the batch in passes, says so, and writes it to the JSON;
/// a K that does not divide the batch is a usage error naming the option.
#[test]
fn bench_runs_a_batch_in_passes_when_told() {
    let path = temp_path("bench-passes.json");
    let model = fixture("cifarnet");
    let args = ["bench", s(&model), "--batch", "4", "--iters", "3"];
    let o = kestrel(&[&args[..], &["--micro-batch", "2", "--json", s(&path)]].concat());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("the batch runs as 2 passes of 2 image(s)"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["images_per_pass"], 2, "{json}");
    std::fs::remove_file(&path).unwrap();
    // The CIFAR net's batch of 4 stays in the caches: whole, and nothing said.
    let o = kestrel(&args);
    let (out, _) = text(&o);
    assert!(!out.contains("passes of"), "{out}");
    let o = kestrel(&[&args[..], &["--micro-batch", "3"]].concat());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("micro_batch"), "{err}");
}

/// `compare` of a PT2E-quantized model judges its quantized output in quantization steps
/// (`--steps`, default 1) and says how many elements are equal, one step off or further.
#[test]
fn compare_counts_a_quantized_output_in_steps() {
    let model = fixture("cifarnet_int8");
    let reference = common::reference("cifarnet_int8", 3);
    let o = kestrel(&["compare", s(&model), s(&reference), "--per-layer"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("output: quantized, in steps of "))
        .unwrap_or_else(|| panic!("no steps line: {out}"));
    assert!(
        line.contains("(tolerance 1 step(s))") && line.contains("% equal"),
        "{line}"
    );
    // A negative number of steps is a usage error.
    let o = kestrel(&["compare", s(&model), s(&reference), "--steps=-1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("--steps must be"), "{err}");
    // A float model's output says nothing of steps.
    let o = kestrel(&[
        "compare",
        s(&fixture("qdq")),
        s(&common::reference("qdq", 1)),
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("in steps of"), "{out}");
}
