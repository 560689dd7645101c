//! Writing f32 tensors as a safetensors file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use crate::LoadError;

/// Writes f32 tensors `(name, shape, data)` and string metadata as a safetensors file.
///
/// Tensors are stored in the order given, packed from offset 0; the header is padded with
/// spaces to a multiple of 8 bytes, as the official writer does, so the data starts
/// 8-aligned. The file is written beside `path` under a temporary name and renamed over it,
/// so a reader never sees a half-written file and one that has the old file mapped keeps
/// its bytes. Input errors are reported before anything is written.
pub fn write_tensors(
    path: &Path,
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<(), LoadError> {
    let bytes =
        encode_f32(tensors, metadata).map_err(|(tensor, detail)| LoadError::BadWriteInput {
            path: path.to_path_buf(),
            tensor,
            detail,
        })?;
    replace_file(path, &bytes).map_err(|source| LoadError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a safetensors file holding `tensors` as F32; on bad input, the tensor's
/// name and what is wrong with it.
pub(crate) fn encode_f32(
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, (String, String)> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".to_string(), json!(metadata));
    }
    let mut names = BTreeSet::new();
    let mut offset = 0usize;
    for &(name, shape, data) in tensors {
        let fail = |detail: String| Err((name.to_string(), detail));
        if name == "__metadata__" {
            return fail("the name is reserved for the header's metadata".to_string());
        }
        if !names.insert(name) {
            return fail("the name is given twice".to_string());
        }
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(data.len()) {
            return fail(format!(
                "shape {shape:?} does not hold the {} values given",
                data.len()
            ));
        }
        let end = offset + data.len() * 4; // data is in memory, so its byte size fits
        header.insert(
            name.to_string(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = Value::Object(header).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');

    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for &(_, _, data) in tensors {
        bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    }
    Ok(bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(file_name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file",
        ));
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
