//! Every truncation of a valid file, and byte flips all over its header: loading must
//! return `Ok` or `Err`, never panic.

use kestrel_loader::testfile::{entry, f16_bytes, f32_bytes, raw_file, TempFile};
use kestrel_loader::GRAPH_KEY;

fn valid_file() -> Vec<u8> {
    let graph = r#"{"version":1,"inputs":[{"name":"x","shape":[-1,2]}],"nodes":[{"name":"fc","op":"linear","inputs":["x"],"weights":{"weight":"fc.weight","bias":"fc.bias"}}],"outputs":["fc"]}"#;
    let mut data = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    data.extend(f16_bytes(&[0.5, -0.5]));
    data.extend(3i64.to_le_bytes());
    let header = serde_json::json!({
        "__metadata__": {GRAPH_KEY: graph, "format": "pt"},
        "fc.weight": serde_json::from_str::<serde_json::Value>(&entry("F32", &[2, 2], 0, 16)).unwrap(),
        "fc.bias": serde_json::from_str::<serde_json::Value>(&entry("F16", &[2], 16, 20)).unwrap(),
        "n": serde_json::from_str::<serde_json::Value>(&entry("I64", &[], 20, 28)).unwrap(),
    });
    raw_file(&header.to_string(), &data)
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = valid_file();
    let file = TempFile::new("brute-truncate", &bytes);
    let model = kestrel_loader::read_model(file.path()).unwrap();
    assert!(model.graph.is_some());
    for len in 0..bytes.len() {
        std::fs::write(file.path(), &bytes[..len]).unwrap();
        let e = kestrel_loader::read_model(file.path());
        assert!(e.is_err(), "truncated to {len} bytes, still loads");
    }
}

#[test]
fn header_byte_flips_never_panic() {
    // In memory: `read_model` differs from `read_model_from_bytes` only by the map, which the
    // truncation sweep exercises, and 2,700 file writes would take ~10 s here.
    let bytes = valid_file();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let path = std::path::Path::new("flipped.safetensors");
    let (mut ok, mut err) = (0, 0);
    for i in 0..header_end {
        for mask in [0x01u8, 0x02, 0x10, 0x20, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            match kestrel_loader::read_model_from_bytes(path, &b) {
                Ok(_) => ok += 1,
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("flipped.safetensors: ") && !msg.contains('\n'),
                        "{msg}"
                    );
                    err += 1;
                }
            }
        }
    }
    // Most flips break something; some (inside a name) leave a valid file.
    assert!(err > ok && ok > 0, "{ok} loaded, {err} refused");
}
