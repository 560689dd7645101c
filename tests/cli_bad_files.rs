//! Every kind of malformed model file makes the CLI exit 2 with one line naming the file
//! and the culprit, and never panic.

mod common;

use common::tiny_graph;
use kestrel_loader::testfile::{entry, f32_bytes, raw_file, TempFile};
use serde_json::json;
use std::process::Command;

fn edited_graph(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut g = tiny_graph();
    edit(&mut g);
    common::tiny_file(&g.to_string())
}

#[test]
fn every_malformed_file_exits_2_with_a_one_line_error() {
    let header = format!("{{\"w\":{}}}", entry("F32", &[2], 0, 8));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("truncated", vec![1, 2, 3], "shorter"),
        (
            "header-past-end",
            1000u64.to_le_bytes().to_vec(),
            "header length",
        ),
        ("not-json", raw_file("{not json", &[]), "JSON"),
        ("not-object", raw_file("[1, 2]", &[]), "object"),
        (
            "unknown-dtype",
            raw_file(&format!("{{\"w\":{}}}", entry("F128", &[2], 0, 8)), &[0; 8]),
            "F128",
        ),
        (
            "size-mismatch",
            raw_file(&format!("{{\"w\":{}}}", entry("F32", &[3], 0, 8)), &[0; 8]),
            "\"w\"",
        ),
        ("out-of-range", raw_file(&header, &[0; 4]), "\"w\""),
        (
            "absurd-shape",
            raw_file(
                &format!("{{\"w\":{}}}", entry("F32", &[1 << 40], 0, 8)),
                &[0; 8],
            ),
            "\"w\"",
        ),
        (
            "no-graph",
            raw_file(&header, &f32_bytes(&[1.0, 2.0])),
            "no graph",
        ),
        (
            "graph-malformed",
            common::tiny_file("{\"version\": 1,"),
            "malformed",
        ),
        (
            "graph-version",
            edited_graph(|g| g["version"] = json!(7)),
            "version 7",
        ),
        (
            "missing-tensor",
            edited_graph(|g| g["nodes"][0]["weights"]["weight"] = json!("gone")),
            "\"gone\"",
        ),
        (
            "missing-node",
            edited_graph(|g| g["nodes"][1]["inputs"] = json!(["ghost"])),
            "\"ghost\"",
        ),
        (
            "duplicate-node",
            edited_graph(|g| g["nodes"][1]["name"] = json!("conv")),
            "\"conv\"",
        ),
        (
            "cycle",
            edited_graph(|g| g["nodes"][1]["inputs"] = json!(["relu"])),
            "cycle",
        ),
        (
            "unknown-op",
            edited_graph(|g| g["nodes"][1]["op"] = json!("swish")),
            "\"swish\"",
        ),
        (
            "stride-0",
            edited_graph(|g| g["nodes"][0]["attrs"]["stride"] = json!([0, 1])),
            "stride",
        ),
        (
            "huge-kernel",
            edited_graph(|g| g["nodes"][0]["attrs"]["dilation"] = json!([9, 9])),
            "\"conv\"",
        ),
        (
            "fc-wrong-input",
            edited_graph(|g| g["inputs"][0]["shape"] = json!([-1, 2, 6, 5])),
            "\"fc\"",
        ),
    ];
    for (name, bytes, culprit) in cases {
        let file = TempFile::new(name, &bytes);
        for cmd in ["info", "run"] {
            let o = Command::new(env!("CARGO_BIN_EXE_kestrel"))
                .args([cmd, file.path().to_str().unwrap()])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{name} ({cmd}): {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{name} ({cmd}): {err}");
            assert!(
                err.contains(name),
                "{name} ({cmd}): the error names the file: {err}"
            );
            assert!(
                err.contains(culprit),
                "{name} ({cmd}): expected {culprit:?} in {err}"
            );
        }
    }
}
