//! `parse_graph`: the example of GRAPH_FORMAT.md, and each structural defect it refuses.

use kestrel_loader::{parse_graph, GraphDef, GraphJsonError, InputDef, NodeDef};

const EXAMPLE: &str = r#"{
  "version": 1,
  "inputs":  [{"name": "input", "shape": [-1, 3, 32, 32]}],
  "nodes": [
    {"name": "conv1", "op": "conv2d", "inputs": ["input"],
     "weights": {"weight": "conv1.weight", "bias": "conv1.bias"},
     "attrs": {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}},
    {"name": "relu", "op": "relu", "inputs": ["conv1"]}
  ],
  "outputs": ["relu"]
}"#;

fn err(json: &str) -> GraphJsonError {
    let e = parse_graph(json).unwrap_err();
    assert!(!e.to_string().contains('\n'), "not one line: {e}");
    e
}

/// The example with `from` replaced by `to` (which must occur once).
fn example_with(from: &str, to: &str) -> String {
    assert_eq!(EXAMPLE.matches(from).count(), 1, "{from}");
    EXAMPLE.replace(from, to)
}

#[test]
fn the_documented_example_parses() {
    let g = parse_graph(EXAMPLE).unwrap();
    assert_eq!(g.version, 1);
    assert_eq!(
        g.inputs,
        [InputDef {
            name: "input".into(),
            shape: vec![-1, 3, 32, 32]
        }]
    );
    assert_eq!(g.nodes[0].weights["bias"], "conv1.bias");
    assert_eq!(g.nodes[0].attrs["groups"], 1);
    assert_eq!(
        g.nodes[1],
        NodeDef {
            name: "relu".into(),
            op: "relu".into(),
            inputs: vec!["conv1".into()],
            weights: Default::default(),
            attrs: Default::default()
        }
    );
    assert_eq!(g.outputs, ["relu"]);
    // Serialising and parsing again gives the same graph; serde's own reader agrees.
    let json = serde_json::to_string(&g).unwrap();
    assert_eq!(parse_graph(&json).unwrap(), g);
    assert_eq!(serde_json::from_str::<GraphDef>(&json).unwrap(), g);
}

#[test]
fn malformed_json_reports_where() {
    let e = err("{\"version\": 1,\n  \"inputs\": [}");
    assert!(
        matches!(e, GraphJsonError::Malformed { line: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("line 2, column"), "{e}");
}

#[test]
fn not_an_object() {
    assert!(matches!(err("[]"), GraphJsonError::NotAnObject { found } if found == "an array"));
    assert!(matches!(
        err("\"graph\""),
        GraphJsonError::NotAnObject { .. }
    ));
}

#[test]
fn version_must_be_1_to_4_and_is_checked_first() {
    assert!(matches!(
        err(r#"{"version": 5}"#),
        GraphJsonError::UnknownVersion { found: 5 }
    ));
    assert!(matches!(
        err(r#"{"version": 0, "extra": 1}"#),
        GraphJsonError::UnknownVersion { found: 0 }
    ));
    assert!(
        matches!(err(r#"{"version": "1"}"#), GraphJsonError::WrongType { field, .. } if field == "version")
    );
    assert!(matches!(
        err(r#"{"version": 1.0}"#),
        GraphJsonError::WrongType { .. }
    ));
    assert!(
        matches!(err(r#"{"inputs": []}"#), GraphJsonError::MissingField { field } if field == "version")
    );
}

#[test]
fn missing_and_mistyped_fields_are_named_by_path() {
    let e = err(&example_with(r#""op": "relu", "#, ""));
    assert!(
        matches!(&e, GraphJsonError::MissingField { field } if field == "nodes[1].op"),
        "{e}"
    );
    let e = err(&example_with(
        r#""inputs": ["conv1"]"#,
        r#""inputs": ["conv1", 3]"#,
    ));
    assert!(
        matches!(&e, GraphJsonError::WrongType { field, .. } if field == "nodes[1].inputs[1]"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("must be a string, found a number (3)"),
        "{e}"
    );
    let e = err(&example_with(r#""bias": "conv1.bias""#, r#""bias": null"#));
    assert!(
        matches!(&e, GraphJsonError::WrongType { field, .. } if field == "nodes[0].weights.bias"),
        "{e}"
    );
    let e = err(&example_with(
        r#""outputs": ["relu"]"#,
        r#""outputs": "relu""#,
    ));
    assert!(
        matches!(&e, GraphJsonError::WrongType { field, .. } if field == "outputs"),
        "{e}"
    );
    let e = err(&example_with(
        r#""shape": [-1, 3, 32, 32]"#,
        r#""shape": [-1, 3, 32.5, 32]"#,
    ));
    assert!(
        matches!(&e, GraphJsonError::WrongType { field, .. } if field == "inputs[0].shape[2]"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_refused() {
    let e = err(&example_with(
        r#""attrs": {"stride""#,
        r#""atrs": {"stride""#,
    ));
    assert!(
        matches!(&e, GraphJsonError::UnknownField { field, .. } if field == "nodes[0].atrs"),
        "{e}"
    );
    let e = err(&example_with(
        r#""outputs": ["relu"]"#,
        r#""outputs": ["relu"], "comment": """#,
    ));
    assert!(matches!(e, GraphJsonError::UnknownField { .. }), "{e}");
}

#[test]
fn repeated_keys_are_refused() {
    let e = err(&example_with(
        r#""op": "relu""#,
        r#""op": "relu", "op": "relu6""#,
    ));
    assert!(
        matches!(&e, GraphJsonError::DuplicateKey { key } if key == "op"),
        "{e}"
    );
}

#[test]
fn input_shapes() {
    let shape = |s: &str| example_with("[-1, 3, 32, 32]", s);
    assert!(parse_graph(&shape("[8, 3, 32, 32]")).is_ok());
    assert!(parse_graph(&shape("[-1, 10]")).is_ok());
    for (bad, why) in [
        ("[1, -1, 32, 32]", "only in dimension 0"),
        ("[-1, 0, 32, 32]", "dimension 1 is 0"),
        ("[-1, 3, -2, 32]", "dimension 2 is -2"),
        ("[]", "at least the batch"),
        ("[1, 1, 1, 1, 1, 1, 1, 1, 1]", "more than 8"),
        ("[-1, 65536, 65536]", "elements per batch item"),
        (
            "[-1, 4294967296, 4294967296, 4294967296]",
            "elements per batch item",
        ),
    ] {
        let e = err(&shape(bad));
        assert!(
            matches!(&e, GraphJsonError::BadInputShape { input, why: w, .. } if input == "input" && w.contains(why)),
            "{bad}: {e}"
        );
    }
}
