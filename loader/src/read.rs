//! Reading: read the file, validate the header ourselves, let the official crate parse it
//! too, copy every tensor out as owned data.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::{header, parse_graph, FileTensor, LoadError, ModelFile, TensorFile, GRAPH_KEY};

/// Reads every tensor of the safetensors file at `path`.
///
/// The file is read into memory (not mapped), validated in full, and every tensor is
/// copied out (float dtypes converted to f32): nothing returned points into the file, so
/// rewriting or truncating it on disk, even while this call runs, can at worst make the
/// bytes read inconsistent, which the checks then reject or the weights carry. A map
/// would save one copy at load, but a file truncated under it kills the process with
/// SIGBUS.
pub fn read_tensors(path: &Path) -> Result<TensorFile, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    // The size is a hint: a file that shrinks or grows meanwhile is read as it is then.
    // Fallible, so a huge file is an error rather than an abort.
    bytes
        .try_reserve_exact(usize::try_from(meta.len()).unwrap_or(usize::MAX))
        .map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("cannot hold its {} bytes in memory", meta.len()),
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
pub fn read_tensors_from_bytes(path: &Path, bytes: &[u8]) -> Result<TensorFile, LoadError> {
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
        let data = to_f32(entry.dtype, bytes);
        tensors.insert(
            entry.name,
            FileTensor {
                dtype: entry.dtype,
                shape: entry.shape,
                data,
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

/// Little-endian bytes to owned f32 for the float dtypes; `None` for the rest. `bytes` may
/// sit at any alignment inside the map, so it is read in byte chunks, never cast.
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
