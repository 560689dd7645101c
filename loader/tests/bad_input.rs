//! One test per kind of broken file: each asserts the error variant and that the message
//! names the file (checked by `load_err`) and the culprit tensor.

mod common;

use common::load_err;
use kestrel_loader::testfile::{entry, f32_bytes, model_file, raw_file};
use kestrel_loader::{read_tensors, read_tensors_from_bytes, Dtype, GraphJsonError, LoadError};

#[test]
fn empty_file() {
    let e = load_err("empty", &[], &[]);
    assert!(matches!(e, LoadError::Empty { .. }), "{e}");
}

#[test]
fn truncated_to_three_bytes() {
    let e = load_err("truncated", &[1, 0, 0], &[]);
    assert!(matches!(e, LoadError::Truncated { .. }), "{e}");
}

#[test]
fn header_length_past_end_of_file() {
    let mut bytes = raw_file("{}", &[]);
    bytes[..8].copy_from_slice(&1000u64.to_le_bytes());
    let e = load_err("past-end", &bytes, &[]);
    assert!(
        matches!(
            e,
            LoadError::HeaderPastEnd {
                header_len: 1000,
                file_len: 10,
                ..
            }
        ),
        "{e}"
    );
    // 8 + u64::MAX would overflow: must still be a clean error.
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = load_err("past-end-max", &bytes, &[]);
    assert!(
        matches!(
            e,
            LoadError::HeaderPastEnd {
                header_len: u64::MAX,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn header_over_the_safetensors_limit() {
    // 100 MB + 1 of header: calloc'd zeros, cheap. Bytes in memory, so no file is written.
    let len = 100_000_001u64;
    let mut bytes = vec![0u8; 8 + len as usize];
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    let e = read_tensors_from_bytes("huge-header.safetensors".as_ref(), &bytes).unwrap_err();
    assert!(
        matches!(e, LoadError::HeaderTooLarge { header_len, .. } if header_len == len),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("huge-header.safetensors: "),
        "{e}"
    );
}

#[test]
fn header_not_json() {
    let e = load_err("not-json", &raw_file("{\"w\": nope}", &[]), &[]);
    assert!(matches!(e, LoadError::HeaderNotJson { .. }), "{e}");
    let e = load_err(
        "not-utf8",
        &raw_file("{}", &[])
            .iter()
            .map(|&b| if b == b'}' { 0xff } else { b })
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(
        matches!(&e, LoadError::HeaderNotJson { detail, .. } if detail.contains("UTF-8")),
        "{e}"
    );
}

#[test]
fn header_json_not_an_object() {
    let e = load_err("not-object", &raw_file("[1, 2]", &[]), &[]);
    assert!(matches!(e, LoadError::HeaderNotObject { .. }), "{e}");
}

#[test]
fn header_with_a_repeated_tensor_name() {
    let header = format!(
        "{{\"w\":{},\"w\":{}}}",
        entry("F32", &[1], 0, 4),
        entry("F32", &[1], 4, 8)
    );
    let e = load_err(
        "duplicate",
        &raw_file(&header, &f32_bytes(&[1.0, 2.0])),
        &["w"],
    );
    assert!(
        matches!(&e, LoadError::DuplicateKey { key, .. } if key == "w"),
        "{e}"
    );
}

#[test]
fn tensor_entry_missing_data_offsets() {
    let header = r#"{"conv1.weight":{"dtype":"F32","shape":[1]}}"#;
    let e = load_err(
        "no-offsets",
        &raw_file(header, &f32_bytes(&[1.0])),
        &["conv1.weight"],
    );
    assert!(
        matches!(&e, LoadError::BadTensorEntry { tensor, detail, .. }
        if tensor == "conv1.weight" && detail.contains("data_offsets")),
        "{e}"
    );
}

#[test]
fn tensor_entries_of_the_wrong_types() {
    let cases = [
        (r#"{"t":[1]}"#, "object"),
        (
            r#"{"t":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}"#,
            "dtype",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            "shape[0]",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#,
            "shape[0]",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}"#,
            "shape",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#,
            "[begin, end]",
        ),
        (
            r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
            "end before they begin",
        ),
    ];
    for (header, what) in cases {
        let e = load_err("bad-entry", &raw_file(header, &f32_bytes(&[1.0])), &["t"]);
        assert!(
            matches!(&e, LoadError::BadTensorEntry { detail, .. } if detail.contains(what)),
            "{header}: {e}"
        );
    }
}

#[test]
fn unknown_dtype() {
    let header = format!("{{\"t\":{}}}", entry("F128", &[1], 0, 16));
    let e = load_err("f128", &raw_file(&header, &[0; 16]), &["t", "F128"]);
    assert!(
        matches!(&e, LoadError::UnknownDtype { tensor, dtype, .. } if tensor == "t" && dtype == "F128"),
        "{e}"
    );
}

#[test]
fn shape_times_dtype_differs_from_byte_length() {
    let header = format!(
        "{{\"conv1.weight\":{}}}",
        entry("F32", &[64, 3, 7, 7], 0, 37628)
    );
    let (file, result) = common::load("size-mismatch", &raw_file(&header, &vec![0; 37628]));
    let e = result.unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::SizeMismatch {
                dtype: Dtype::F32,
                expected_bytes: 37632,
                actual_bytes: 37628,
                ..
            }
        ),
        "{e}"
    );
    let want = format!(
        "{}: tensor \"conv1.weight\": shape [64, 3, 7, 7] × F32 is 37632 bytes but data_offsets span 37628",
        file.path().display()
    );
    assert_eq!(e.to_string(), want);
}

#[test]
fn sub_byte_dtype_with_an_odd_count() {
    // F4 is 4 bits: 3 elements are 12 bits, not a whole number of bytes.
    let header = format!("{{\"t\":{}}}", entry("F4", &[3], 0, 2));
    let e = load_err("f4", &raw_file(&header, &[0; 2]), &["t"]);
    assert!(
        matches!(&e, LoadError::BadTensorEntry { detail, .. } if detail.contains("12 bits")),
        "{e}"
    );
}

#[test]
fn absurd_shape_is_refused_before_allocating() {
    // 2^40 f32 = 4 TiB: refused by comparing with the 16-byte data section. (The no-alloc
    // part is proven by tests/no_big_alloc.rs.)
    let header = format!("{{\"t\":{}}}", entry("F32", &[1 << 40], 0, 16));
    let e = load_err("absurd", &raw_file(&header, &[0; 16]), &["t"]);
    assert!(
        matches!(&e, LoadError::ShapeTooLarge { shape, .. } if shape == &[1u64 << 40]),
        "{e}"
    );
    // Element count overflowing u64.
    let header = format!("{{\"t\":{}}}", entry("F32", &[1 << 40, 1 << 40], 0, 16));
    let e = load_err("overflow", &raw_file(&header, &[0; 16]), &["t"]);
    assert!(matches!(e, LoadError::ShapeTooLarge { .. }), "{e}");
}

#[test]
fn offsets_out_of_range() {
    let header = format!("{{\"t\":{}}}", entry("F32", &[4], 0, 16));
    let e = load_err("out-of-range", &raw_file(&header, &[0; 8]), &["t"]);
    assert!(
        matches!(
            e,
            LoadError::OffsetsOutOfRange {
                begin: 0,
                end: 16,
                data_len: 8,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn offsets_whose_sum_overflows_the_official_crate() {
    // Eight chained U8 tensors of 2^61 − 1 bytes: safetensors 0.8 adds the last end to the
    // header length unchecked and panics with overflow checks on. We must refuse first.
    let size = (1u64 << 61) - 1;
    let entries: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "\"t{i}\":{}",
                entry("U8", &[size], i * size, (i + 1) * size)
            )
        })
        .collect();
    let e = load_err(
        "offset-sum",
        &raw_file(&format!("{{{}}}", entries.join(",")), &[]),
        &["t0"],
    );
    assert!(
        matches!(e, LoadError::OffsetsOutOfRange { begin: 0, .. }),
        "{e}"
    );
}

#[test]
fn overlapping_offsets() {
    let header = format!(
        "{{\"a\":{},\"b\":{}}}",
        entry("F32", &[2], 0, 8),
        entry("F32", &[2], 4, 12)
    );
    let e = load_err("overlap", &raw_file(&header, &[0; 12]), &["a", "b"]);
    assert!(
        matches!(&e, LoadError::Overlap { tensor, other, .. } if tensor == "b" && other == "a"),
        "{e}"
    );
    // A zero-size tensor strictly inside another's span (the official crate refuses it).
    let header = format!(
        "{{\"a\":{},\"z\":{}}}",
        entry("F32", &[2], 0, 8),
        entry("F32", &[0], 4, 4)
    );
    let e = load_err("overlap-zero", &raw_file(&header, &[0; 8]), &["a", "z"]);
    assert!(matches!(e, LoadError::Overlap { .. }), "{e}");
}

#[test]
fn gap_between_tensors() {
    let header = format!(
        "{{\"a\":{},\"b\":{}}}",
        entry("F32", &[1], 0, 4),
        entry("F32", &[1], 8, 12)
    );
    let e = load_err("gap", &raw_file(&header, &[0; 12]), &["b"]);
    assert!(
        matches!(
            e,
            LoadError::Gap {
                begin: 8,
                previous_end: 4,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn bytes_after_the_last_tensor() {
    let header = format!("{{\"a\":{}}}", entry("F32", &[1], 0, 4));
    let e = load_err("trailing", &raw_file(&header, &[0; 6]), &[]);
    assert!(
        matches!(
            e,
            LoadError::TrailingBytes {
                data_end: 4,
                data_len: 6,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn metadata_not_a_string_map() {
    let e = load_err(
        "meta-number",
        &raw_file(r#"{"__metadata__":{"epochs":3}}"#, &[]),
        &["epochs"],
    );
    assert!(matches!(e, LoadError::BadMetadata { .. }), "{e}");
    let e = load_err(
        "meta-array",
        &raw_file(r#"{"__metadata__":["a"]}"#, &[]),
        &[],
    );
    assert!(matches!(e, LoadError::BadMetadata { .. }), "{e}");
}

#[test]
fn graph_json_malformed() {
    let e = load_err("graph-malformed", &model_file("{\"version\": 1,", &[]), &[]);
    assert!(
        matches!(
            e,
            LoadError::Graph {
                source: GraphJsonError::Malformed { line: 1, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("kestrel.graph"), "{e}");
}

#[test]
fn graph_json_of_unknown_version() {
    let graph = r#"{"version": 5, "inputs": [], "nodes": [], "outputs": [], "new_in_v5": true}"#;
    let e = load_err("graph-v5", &model_file(graph, &[]), &[]);
    assert!(
        matches!(
            e,
            LoadError::Graph {
                source: GraphJsonError::UnknownVersion { found: 5 },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn graph_json_with_dynamic_dimension_1() {
    let graph = r#"{"version": 1, "inputs": [{"name": "x", "shape": [1, -1, 8, 8]}], "nodes": [], "outputs": ["x"]}"#;
    let e = load_err("graph-dim1", &model_file(graph, &[]), &["x"]);
    assert!(
        matches!(&e, LoadError::Graph { source: GraphJsonError::BadInputShape { input, .. }, .. } if input == "x"),
        "{e}"
    );
}

#[test]
fn graph_json_not_an_object() {
    let e = load_err("graph-array", &model_file("[1]", &[]), &[]);
    assert!(
        matches!(
            e,
            LoadError::Graph {
                source: GraphJsonError::NotAnObject { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn missing_file_and_directory() {
    let dir = std::env::temp_dir();
    let e = read_tensors(&dir).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e}");
    let missing = dir.join("kestrel-no-such-file.safetensors");
    let e = read_tensors(&missing).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );
}
