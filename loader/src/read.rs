//! Reading: map the file (or read it), validate the header ourselves, let the official
//! crate parse it too, and hand out every tensor: F32 ones in place from the map, the
//! other float dtypes converted to owned f32.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
#[cfg(unix)]
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

#[cfg(unix)]
use crate::map::FileMap;
use crate::{
    header, parse_graph, F32Data, FileTensor, LoadError, ModelFile, TensorFile, GRAPH_KEY,
};

/// Reads every tensor of the safetensors file at `path`.
///
/// On unix the file is memory-mapped: F32 tensors at 4-byte-aligned offsets (every file
/// `write_tensors` or the exporter writes: their data section starts 8-aligned) are read
/// in place ([`F32Data::is_mapped`]); F16, BF16, F64 and unaligned F32 tensors are converted
/// to owned f32. Everything is validated against the file's length before a data byte is
/// read, and the pages validation touched are released again, so the tensors cost resident
/// memory only once something reads them. A file truncated on disk while mapped kills the
/// process with SIGBUS when a page past its new end is read: replace model files by
/// renaming a new one over them (as `write_tensors` does), or read the bytes yourself and
/// call [`read_tensors_from_bytes`]. Elsewhere the file is read into memory and every
/// tensor copied out.
pub fn read_tensors(path: &Path) -> Result<TensorFile, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    #[cfg(unix)]
    if let Ok(len @ 1..) = usize::try_from(meta.len()) {
        let map = Arc::new(FileMap::new(&file, len).map_err(io)?);
        let result = parse(path, map.bytes(), |offset, dtype, bytes| match dtype {
            Dtype::F32 => F32Data::mapped(&map, offset, bytes.len() / 4),
            _ => None,
        });
        // Validation read the header's pages, conversions the non-F32 tensors' data: none
        // of it is read again.
        map.release(0..len);
        return result;
    }
    // A length of 0 may be a file whose size the OS does not know (procfs): read it.
    read_into_memory(path, file, meta.len())
}

/// [`read_tensors`] by reading the whole file into memory; `len_hint` is its expected size.
fn read_into_memory(path: &Path, mut file: File, len_hint: u64) -> Result<TensorFile, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    // The size is a hint: a file that shrinks or grows meanwhile is read as it is then.
    // Fallible, so a huge file is an error rather than an abort.
    bytes
        .try_reserve_exact(usize::try_from(len_hint).unwrap_or(usize::MAX))
        .map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot hold its {len_hint} bytes in memory"),
            ))
        })?;
    file.read_to_end(&mut bytes).map_err(io)?;
    if bytes.is_empty() {
        return Err(LoadError::Empty {
            path: path.to_path_buf(),
        });
    }
    read_tensors_from_bytes(path, &bytes)
}

/// Reads a model file: its tensors and, when `__metadata__` has `kestrel.graph`, the graph.
/// The graph is checked for structure only (see [`parse_graph`]).
pub fn read_model(path: &Path) -> Result<ModelFile, LoadError> {
    model_from_tensors(read_tensors(path)?)
}

/// [`read_tensors`] on bytes already in memory; `path` is only used in error messages.
/// Every tensor is copied out as owned f32: nothing returned borrows `bytes`.
pub fn read_tensors_from_bytes(path: &Path, bytes: &[u8]) -> Result<TensorFile, LoadError> {
    parse(path, bytes, |_, _, _| None)
}

/// Validates `bytes` (a whole file) and collects its tensors. `in_place(offset, dtype,
/// bytes)` may return a tensor's values without copying, given its bytes and their
/// offset in the file; where it returns None, float dtypes are converted to owned f32.
fn parse(
    path: &Path,
    bytes: &[u8],
    in_place: impl Fn(usize, Dtype, &[u8]) -> Option<F32Data>,
) -> Result<TensorFile, LoadError> {
    let header = header::validate(path, bytes)?;
    let crate_error = |detail: String| LoadError::Safetensors {
        path: path.to_path_buf(),
        detail,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| crate_error(e.to_string()))?;

    let mut tensors = BTreeMap::new();
    for entry in header.entries {
        let view = st
            .tensor(&entry.name)
            .map_err(|e| crate_error(format!("tensor {:?}: {e}", entry.name)))?;
        let bytes = view.data();
        if view.dtype() != entry.dtype
            || view.shape() != entry.shape
            || bytes.len() != entry.end - entry.begin
        {
            return Err(crate_error(format!(
                "tensor {:?}: the crate reads {} {:?} ({} bytes) where the header says {} {:?} ({} bytes)",
                entry.name,
                view.dtype(),
                view.shape(),
                bytes.len(),
                entry.dtype,
                entry.shape,
                entry.end - entry.begin
            )));
        }
        // begin <= data length, so this stays inside the file.
        let offset = header.data_start + entry.begin;
        let data = in_place(offset, entry.dtype, bytes)
            .or_else(|| to_f32(entry.dtype, bytes).map(F32Data::from));
        tensors.insert(
            entry.name,
            FileTensor {
                dtype: entry.dtype,
                shape: entry.shape,
                data,
                ints: to_i32(entry.dtype, bytes),
            },
        );
    }
    Ok(TensorFile {
        path: path.to_path_buf(),
        tensors,
        metadata: header.metadata,
    })
}

/// [`read_model`] on bytes already in memory; `path` is only used in error messages.
pub fn read_model_from_bytes(path: &Path, bytes: &[u8]) -> Result<ModelFile, LoadError> {
    model_from_tensors(read_tensors_from_bytes(path, bytes)?)
}

fn model_from_tensors(tensors: TensorFile) -> Result<ModelFile, LoadError> {
    let graph = match tensors.metadata.get(GRAPH_KEY) {
        Some(json) => Some(parse_graph(json).map_err(|source| LoadError::Graph {
            path: tensors.path.clone(),
            source,
        })?),
        None => None,
    };
    Ok(ModelFile { tensors, graph })
}

/// Little-endian bytes to i32 for I8, U8 and I32; `None` for the rest.
fn to_i32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<i32>> {
    match dtype {
        Dtype::I8 => Some(bytes.iter().map(|&b| i32::from(b as i8)).collect()),
        Dtype::U8 => Some(bytes.iter().map(|&b| i32::from(b)).collect()),
        Dtype::I32 => Some(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| i32::from_le_bytes(b))
                .collect(),
        ),
        _ => None,
    }
}

/// Little-endian bytes to owned f32 for the float dtypes; `None` for the rest. `bytes` may
/// sit at any alignment, so it is read in byte chunks, never cast.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| f32::from_le_bytes(b))
                .collect(),
        ),
        Dtype::F16 => Some(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::f16::from_le_bytes(b).to_f32())
                .collect(),
        ),
        Dtype::BF16 => Some(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::bf16::from_le_bytes(b).to_f32())
                .collect(),
        ),
        // Narrowing on purpose: weights are computed in f32; values beyond f32's range become ±inf.
        Dtype::F64 => Some(
            bytes
                .as_chunks::<8>()
                .0
                .iter()
                .map(|&b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        _ => None,
    }
}
