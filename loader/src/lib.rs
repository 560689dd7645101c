//! Reads and validates Kestrel model files: one safetensors file holding the weights and,
//! in its `__metadata__` under `kestrel.graph`, the graph JSON described in
//! `GRAPH_FORMAT.md`.
//!
//! Loading maps the file (on unix; elsewhere it reads it into memory), validates
//! everything against the file's length before reading any tensor data (header size, JSON,
//! dtypes, shape × dtype size against the byte span, offsets inside the data section, no
//! overlap, no gap, no trailing bytes, metadata types) and hands out each float tensor as
//! [`F32Data`]: F32 tensors in place from the map, other float dtypes converted to owned
//! f32. No input bytes make it panic; every failure is a [`LoadError`] naming the file and,
//! where one is at fault, the tensor. What a map adds, a SIGBUS if the file is truncated on
//! disk while mapped, is discussed at [`read_tensors`].

#![warn(missing_docs)]

mod data;
mod error;
mod graph;
mod header;
mod json;
#[cfg(unix)]
mod map;
mod read;
/// Model-file writers for tests (the `testing` feature).
#[cfg(feature = "testing")]
pub mod testfile;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use data::F32Data;
pub use error::{GraphJsonError, LoadError};
pub use graph::{
    parse_graph, GraphDef, InputDef, NodeDef, GRAPH_KEY, GRAPH_VERSION, MAX_INPUT_ELEMENTS,
    MAX_INPUT_RANK, MIN_GRAPH_VERSION,
};
pub use read::{read_model, read_model_from_bytes, read_tensors, read_tensors_from_bytes};
pub use safetensors::Dtype;
pub use write::write_tensors;

/// One tensor read from a file. `data` is `Some` for F32, F16, BF16 and F64 (as f32,
/// in place from the mapped file where it can be); `None` for integer, bool and other
/// dtypes, which load (a state_dict's `num_batches_tracked` is I64) but cannot be used as
/// float weights. `ints` holds I8, U8 and I32 tensors' values (quantized weights).
#[derive(Debug, Clone, PartialEq)]
pub struct FileTensor {
    /// The dtype as stored in the file.
    pub dtype: Dtype,
    /// The shape as stored in the file.
    pub shape: Vec<usize>,
    /// The values as f32 for float dtypes; `None` for integer, bool and other dtypes.
    pub data: Option<F32Data>,
    /// The values of an I8, U8 or I32 tensor (a quantized weight, its zero points, as
    /// GRAPH_FORMAT.md's version 4 stores them); `None` for every other dtype.
    pub ints: Option<Vec<i32>>,
}

/// Every tensor of one safetensors file plus its string metadata.
#[derive(Debug, Clone)]
pub struct TensorFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// Every tensor, by name.
    pub tensors: BTreeMap<String, FileTensor>,
    /// The `__metadata__` strings, by key.
    pub metadata: BTreeMap<String, String>,
}

/// A model file: its tensors and, when the metadata has `kestrel.graph`, the parsed graph.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The file's tensors (the weights).
    pub tensors: TensorFile,
    /// The graph, when the metadata holds `kestrel.graph`; `None` for a plain `state_dict`
    /// file.
    pub graph: Option<GraphDef>,
}
