//! The mapped reader (`read_tensors`, `read_model` on unix) against the in-memory one
//! (`read_tensors_from_bytes`, which copies every tensor out as the loader always did):
//! the same tensors from a whole file, and for a file cut short anywhere, or whose header
//! claims more data than the file holds, the same typed error with the same message.
//! Every size is checked against the file's length before a data page is read, so none of
//! these files can make the mapped reader touch a page past the end (SIGBUS).

use kestrel_loader::testfile::{entry, f32_bytes, model_file, raw_file, TempFile};
use kestrel_loader::{read_model, read_tensors, read_tensors_from_bytes, LoadError, TensorFile};

/// A model file with a graph and three tensors, 8-aligned as the writer lays it out.
fn model_bytes() -> Vec<u8> {
    let graph = r#"{"version": 1, "inputs": [{"name": "x", "shape": [-1, 3]}],
        "nodes": [{"name": "fc", "op": "linear", "inputs": ["x"],
                   "weights": {"weight": "fc.weight", "bias": "fc.bias"}}],
        "outputs": ["fc"]}"#;
    let w: Vec<f32> = (0..3000).map(|i| i as f32 * 0.5 - 7.0).collect();
    model_file(
        graph,
        &[
            ("fc.weight", &[1000, 3], &w),
            ("fc.bias", &[1000], &w[..1000]),
            ("scale", &[], &[2.5]),
        ],
    )
}

/// Both readers on `bytes`: the mapped one through a temp file, the in-memory one on the
/// bytes, with the temp file's path so that messages can match.
fn both(stem: &str, bytes: &[u8]) -> [Result<TensorFile, LoadError>; 2] {
    let file = TempFile::new(stem, bytes);
    let mapped = read_tensors(file.path());
    let in_memory = read_tensors_from_bytes(file.path(), bytes);
    [mapped, in_memory]
}

#[test]
fn a_whole_file_reads_the_same_both_ways() {
    let [mapped, in_memory] = both("whole", &model_bytes());
    let (mapped, in_memory) = (mapped.unwrap(), in_memory.unwrap());
    assert_eq!(mapped.tensors, in_memory.tensors);
    assert_eq!(mapped.metadata, in_memory.metadata);
    for (name, t) in &mapped.tensors {
        let data = t.data.as_ref().unwrap();
        assert_eq!(data.is_mapped(), cfg!(unix), "{name}: read in place");
        assert!(!in_memory.tensors[name].data.as_ref().unwrap().is_mapped());
    }
}

/// The variant's name: `Debug` prints it first.
fn variant(e: &LoadError) -> String {
    format!("{e:?}")
        .split([' ', '{', '('])
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_file_cut_anywhere_gives_the_in_memory_readers_error() {
    let bytes = model_bytes();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Inside the length, inside the header, at its end, inside each tensor, one short.
    let cuts = [
        1,
        3,
        7,
        8,
        9,
        100,
        header_end - 1,
        header_end,
        header_end + 1,
    ]
    .into_iter()
    .chain([header_end + 4000, header_end + 12_000, bytes.len() - 1]);
    for cut in cuts {
        let [mapped, in_memory] = both("cut", &bytes[..cut]);
        let (mapped, in_memory) = (mapped.unwrap_err(), in_memory.unwrap_err());
        assert_eq!(variant(&mapped), variant(&in_memory), "cut at {cut}");
        assert_eq!(mapped.to_string(), in_memory.to_string(), "cut at {cut}");
        // A cut inside the data leaves the header claiming more than the file holds.
        if cut > header_end {
            assert!(
                matches!(&mapped, LoadError::OffsetsOutOfRange { tensor, .. } if !tensor.is_empty()),
                "cut at {cut}: {mapped}"
            );
        }
    }
}

#[test]
fn a_header_claiming_more_data_than_the_file_holds_names_the_tensor() {
    // 1,000 floats announced, 2 present: refused before any data is read.
    let header = format!("{{\"w\":{}}}", entry("F32", &[1000], 0, 4000));
    let bytes = raw_file(&header, &f32_bytes(&[1.0, 2.0]));
    let [mapped, in_memory] = both("claims-more", &bytes);
    let (mapped, in_memory) = (mapped.unwrap_err(), in_memory.unwrap_err());
    assert!(
        matches!(
            &mapped,
            LoadError::OffsetsOutOfRange { tensor, end: 4000, data_len: 8, .. } if tensor == "w"
        ),
        "{mapped}"
    );
    assert_eq!(mapped.to_string(), in_memory.to_string());
}

#[test]
fn a_mapped_model_outlives_its_file_name() {
    // The map keeps the file's bytes after the name is gone: tensors stay readable.
    let file = TempFile::new("unlinked", &model_bytes());
    let model = read_model(file.path()).unwrap();
    drop(file);
    let w = model.tensors.tensors["fc.weight"].data.as_ref().unwrap();
    assert_eq!((w[0], w[2999]), (-7.0, 1492.5));
    w.release_pages();
    assert_eq!(w[1], -6.5, "released pages read back from the file");
}
