//! Files that must load, and what they must load as.

use std::collections::BTreeMap;

use kestrel_loader::testfile::{entry, f32_bytes, model_file, raw_file, temp_path, TempFile};
use kestrel_loader::{
    parse_graph, read_model, read_tensors, write_tensors, Dtype, FileTensor, LoadError,
};

#[test]
fn write_then_read_gives_back_the_same_tensors() {
    let w: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 3.0).collect();
    let tensors: [(&str, &[usize], &[f32]); 4] = [
        ("conv1.weight", &[2, 3, 2, 2], &w),
        ("conv1.bias", &[2], &[f32::MIN_POSITIVE, -0.0]),
        ("scalar", &[], &[7.5]),
        ("empty", &[0, 3], &[]),
    ];
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("note".to_string(), "é \" \n".to_string()),
    ]);
    let path = temp_path("roundtrip");
    write_tensors(&path, &tensors, &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(
        header_len % 8,
        0,
        "header padded so the data starts 8-aligned"
    );

    let file = read_tensors(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(file.path, path);
    assert_eq!(file.metadata, meta);
    assert_eq!(file.tensors.len(), 4);
    for (name, shape, data) in tensors {
        let want = FileTensor {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            data: Some(data.to_vec().into()),
            ints: None,
        };
        assert_eq!(file.tensors[name], want, "{name}");
        // The writer's data starts 8-aligned: every F32 tensor is read in place.
        let mapped = file.tensors[name]
            .data
            .as_ref()
            .is_some_and(|d| d.is_mapped());
        assert_eq!(mapped, cfg!(unix), "{name}");
    }
    // -0.0 == 0.0 for PartialEq: check the bits survived too.
    assert!(file.tensors["conv1.bias"].data.as_ref().unwrap()[1].is_sign_negative());
}

#[test]
fn f16_and_bf16_convert_exactly() {
    // Bit patterns written by hand, with the f32 each stands for exactly.
    let f16: [(u16, f32); 7] = [
        (0x3c00, 1.0),
        (0xc100, -2.5),
        (0x7bff, 65504.0),        // largest finite f16
        (0x0001, 5.960_464_5e-8), // smallest subnormal, 2^-24
        (0x7c00, f32::INFINITY),
        (0x8000, -0.0),
        (0x3555, 0.333_251_95), // 1365/4096
    ];
    let bf16: [(u16, f32); 4] = [
        (0x3f80, 1.0),
        (0xc000, -2.0),
        (0x4049, 3.140_625),
        (0x7f7f, 3.389_531_4e38), // largest finite bf16
    ];
    let le = |bits: &[(u16, f32)]| {
        bits.iter()
            .flat_map(|(b, _)| b.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let mut data = le(&f16);
    data.extend(le(&bf16));
    let header = format!(
        "{{\"h\":{},\"b\":{}}}",
        entry("F16", &[7], 0, 14),
        entry("BF16", &[2, 2], 14, 22)
    );
    let file = TempFile::new("half", &raw_file(&header, &data));
    let t = read_tensors(file.path()).unwrap().tensors;
    assert_eq!(
        (t["h"].dtype, t["b"].dtype, &t["b"].shape[..]),
        (Dtype::F16, Dtype::BF16, &[2, 2][..])
    );
    let h = t["h"].data.as_ref().unwrap();
    let b = t["b"].data.as_ref().unwrap();
    for ((bits, want), got) in f16.iter().chain(&bf16).zip(h.iter().chain(b)) {
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{bits:#06x}: {got} != {want}"
        );
    }
}

#[test]
fn integer_tensors_load_without_data_and_floats_need_no_alignment() {
    // A 3-byte U8 tensor first puts the F32 one at an odd address inside the map.
    let mut data = vec![1u8, 2, 3];
    data.extend(f32_bytes(&[1.5, -2.0]));
    data.extend(7i64.to_le_bytes());
    data.extend(0.1f64.to_le_bytes());
    let header = format!(
        "{{\"u\":{},\"w\":{},\"bn.num_batches_tracked\":{},\"d\":{},\"__metadata__\":{{\"format\":\"pt\"}}}}",
        entry("U8", &[3], 0, 3),
        entry("F32", &[2], 3, 11),
        entry("I64", &[], 11, 19),
        entry("F64", &[1], 19, 27)
    );
    let file = TempFile::new("mixed", &raw_file(&header, &data));
    let model = read_model(file.path()).unwrap();
    assert!(model.graph.is_none());
    let t = &model.tensors.tensors;
    assert_eq!(
        t["bn.num_batches_tracked"],
        FileTensor {
            dtype: Dtype::I64,
            shape: vec![],
            data: None,
            ints: None,
        }
    );
    assert_eq!(t["u"].data, None);
    assert_eq!(t["w"].data.as_deref(), Some(&[1.5, -2.0][..]));
    // At an odd offset it cannot be read in place: it was copied out.
    assert!(!t["w"].data.as_ref().unwrap().is_mapped());
    assert_eq!(t["d"].data.as_deref(), Some(&[0.1f64 as f32][..]));
    assert_eq!(model.tensors.metadata["format"], "pt");
}

/// I8, U8 and I32 tensors (int8 weights and their zero points, GRAPH_FORMAT.md version 4)
/// load their values as i32; I64 and the float dtypes do not.
#[test]
fn int8_and_int32_tensors_load_their_values() {
    let i32s: Vec<u8> = [-5i32, 70_000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut data = i32s.clone();
    data.extend_from_slice(&[0x80, 0xff, 0x7f]); // I8: -128, -1, 127
    data.extend_from_slice(&[0x80, 0xff]); // U8: 128, 255
    let header = format!(
        "{{\"z\":{},\"q\":{},\"u\":{}}}",
        entry("I32", &[2], 0, 8),
        entry("I8", &[3], 8, 11),
        entry("U8", &[2], 11, 13)
    );
    let file = TempFile::new("ints", &raw_file(&header, &data));
    let t = read_tensors(file.path()).unwrap().tensors;
    assert_eq!(t["z"].ints.as_deref(), Some(&[-5, 70_000][..]));
    assert_eq!(t["q"].ints.as_deref(), Some(&[-128, -1, 127][..]));
    assert_eq!(t["u"].ints.as_deref(), Some(&[128, 255][..]));
    assert!(t.values().all(|t| t.data.is_none()));
}

#[test]
fn a_file_from_the_official_writer_loads() {
    use safetensors::tensor::TensorView;
    let w = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let n = 5i64.to_le_bytes();
    let h = half::f16::from_f32(0.5).to_le_bytes();
    let views = [
        ("w", TensorView::new(Dtype::F32, vec![2, 2], &w).unwrap()),
        ("n", TensorView::new(Dtype::I64, vec![], &n).unwrap()),
        ("h", TensorView::new(Dtype::F16, vec![1], &h).unwrap()),
    ];
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(meta)).unwrap();
    let file = TempFile::new("official", &bytes);
    let t = read_tensors(file.path()).unwrap();
    assert_eq!(
        t.tensors["w"].data.as_deref(),
        Some(&[1.0, 2.0, 3.0, 4.0][..])
    );
    assert_eq!(t.tensors["h"].data.as_deref(), Some(&[0.5][..]));
    assert_eq!(t.tensors["n"].dtype, Dtype::I64);
}

#[test]
fn a_model_file_carries_its_graph() {
    let graph = r#"{"version": 1, "inputs": [{"name": "x", "shape": [-1, 2]}],
        "nodes": [{"name": "fc", "op": "linear", "inputs": ["x"], "weights": {"weight": "fc.weight"}}],
        "outputs": ["fc"]}"#;
    let file = TempFile::new(
        "model",
        &model_file(graph, &[("fc.weight", &[1, 2], &[0.5, -0.5])]),
    );
    let model = read_model(file.path()).unwrap();
    assert_eq!(model.graph, Some(parse_graph(graph).unwrap()));
    assert_eq!(
        model.tensors.tensors["fc.weight"].data.as_deref(),
        Some(&[0.5, -0.5][..])
    );
}

#[test]
fn rewriting_the_file_after_loading_changes_nothing() {
    let path = temp_path("rewrite");
    write_tensors(&path, &[("w", &[2], &[1.0, 2.0])], &BTreeMap::new()).unwrap();
    let before = read_tensors(&path).unwrap();
    write_tensors(&path, &[("w", &[2], &[9.0, 9.0])], &BTreeMap::new()).unwrap();
    std::fs::write(&path, b"xx").unwrap(); // truncate it too
                                           // The map holds the old file, which the rename left in place.
    assert_eq!(before.tensors["w"].data.as_deref(), Some(&[1.0, 2.0][..]));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn write_refuses_bad_input_before_touching_the_disk() {
    let path = temp_path("bad-write");
    let none = BTreeMap::new();
    let e = write_tensors(&path, &[("w", &[2, 2], &[1.0])], &none).unwrap_err();
    assert!(
        matches!(&e, LoadError::BadWriteInput { tensor, .. } if tensor == "w"),
        "{e}"
    );
    let e = write_tensors(&path, &[("w", &[1], &[1.0]), ("w", &[1], &[2.0])], &none).unwrap_err();
    assert!(matches!(e, LoadError::BadWriteInput { .. }), "{e}");
    let e = write_tensors(&path, &[("__metadata__", &[1], &[1.0])], &none).unwrap_err();
    assert!(matches!(e, LoadError::BadWriteInput { .. }), "{e}");
    assert!(!path.exists());
    let e = write_tensors(&path.join("no-such-dir/out.safetensors"), &[], &none).unwrap_err();
    assert!(matches!(e, LoadError::Write { .. }), "{e}");
}

/// A file cut short and rewritten in place by another thread while it is being loaded
/// (what a careless deploy script does): every load returns tensors or an error, and the
/// process lives. The load reads only the header from the map (here within the first
/// 100 bytes, which the truncation keeps) and checks every size against the length it
/// mapped; the F32 data is not read. (Reading the weights of a file truncated in place
/// after its load would raise SIGBUS: `read_tensors` says so. A load racing in-place
/// writes may see torn bytes; that it returns at all is the point.)
#[test]
fn a_file_truncated_while_loading_gives_an_error_not_a_crash() {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Stops the writer however the reader's loop ends, a failed assertion included:
    /// otherwise the scope would wait for the writer forever.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let path = temp_path("truncated-while-loading");
    let data: Vec<f32> = (0..1 << 22).map(|i| i as f32).collect();
    write_tensors(&path, &[("w", &[1 << 22], &data)], &BTreeMap::new()).unwrap();
    let full = std::fs::read(&path).unwrap();
    let stop = AtomicBool::new(false);
    let (mut whole, mut refused) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::io::Write;
            // In place (no rename): truncate, then write back in pieces.
            while !stop.load(Ordering::Relaxed) {
                let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(100).unwrap();
                for chunk in full.chunks(64 << 10) {
                    f.write_all(chunk).unwrap();
                }
            }
        });
        let _stop = StopOnDrop(&stop);
        for _ in 0..100 {
            match read_tensors(&path) {
                Ok(t) => {
                    assert_eq!(t.tensors["w"].data.as_ref().map(|d| d.len()), Some(1 << 22));
                    whole += 1;
                }
                Err(_) => refused += 1,
            }
        }
    });
    println!("{whole} loads whole, {refused} refused");
    std::fs::remove_file(&path).unwrap();
}
