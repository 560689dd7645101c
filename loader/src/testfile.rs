//! Helpers that assemble safetensors bytes by hand, so tests (here and in the engine) can
//! write valid files and broken ones alike.
//!
//! ```
//! use kestrel_loader::testfile::{f32_bytes, raw_file, TempFile};
//! // A tensor whose shape promises 3 floats but whose offsets hold 2.
//! let bytes = raw_file(r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &f32_bytes(&[1.0, 2.0]));
//! let file = TempFile::new("short-w", &bytes);
//! assert!(kestrel_loader::read_tensors(file.path()).is_err());
//! ```
//! These helpers panic on I/O errors and on inconsistent arguments: they are for tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `[u64 LE header length][header_json][data]`, with no padding and no checks.
pub fn raw_file(header_json: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header_json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header_json.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A valid file of F32 tensors `(name, shape, data)` and string metadata, laid out as
/// [`crate::write_tensors`] lays it out.
///
/// # Panics
/// When a shape does not hold its data or a name repeats.
pub fn f32_file(tensors: &[(&str, &[usize], &[f32])], metadata: &[(&str, &str)]) -> Vec<u8> {
    let metadata: BTreeMap<String, String> = metadata
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match crate::write::encode_f32(tensors, &metadata) {
        Ok(bytes) => bytes,
        Err((tensor, detail)) => panic!("f32_file: tensor {tensor:?}: {detail}"),
    }
}

/// [`f32_file`] with `graph_json` under the `kestrel.graph` metadata key.
pub fn model_file(graph_json: &str, tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    f32_file(tensors, &[(crate::GRAPH_KEY, graph_json)])
}

/// One header entry, e.g. `entry("F16", &[2, 3], 0, 12)` gives
/// `{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}`.
pub fn entry(dtype: &str, shape: &[u64], begin: u64, end: u64) -> String {
    serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}).to_string()
}

/// Little-endian F32 bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian F16 bytes (each value rounded to nearest).
pub fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect()
}

/// Little-endian BF16 bytes (each value rounded to nearest).
pub fn bf16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect()
}

/// A file in the system temp directory under a unique name containing `stem`, removed on
/// drop.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `bytes` to `<temp dir>/kestrel-<pid>-<n>-<stem>.safetensors`.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn new(stem: &str, bytes: &[u8]) -> TempFile {
        let path = temp_path(stem);
        if let Err(e) = std::fs::write(&path, bytes) {
            panic!("cannot write {}: {e}", path.display());
        }
        TempFile { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A unique path `<temp dir>/kestrel-<pid>-<n>-<stem>.safetensors`; nothing is created.
pub fn temp_path(stem: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "kestrel-{}-{n}-{stem}.safetensors",
        std::process::id()
    ))
}
