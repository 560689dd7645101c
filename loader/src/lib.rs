//! Reads and validates Kestrel model files: one safetensors file holding the weights and,
//! in its `__metadata__` under `kestrel.graph`, the graph JSON described in
//! `GRAPH_FORMAT.md`.
//!
//! Loading reads the file into memory (no map: a file truncated under a map kills the
//! reader with SIGBUS), validates everything (header size, JSON, dtypes, shape × dtype
//! size against the byte span, offsets inside the data section, no overlap, no gap, no
//! trailing bytes, metadata types) and copies every tensor out as owned f32: a file
//! rewritten or truncated on disk, during or after the load, cannot affect what was loaded. No input bytes make it panic; every failure is a [`LoadError`]
//! naming the file and, where one is at fault, the tensor.

#![warn(missing_docs)]

mod error;
mod graph;
mod header;
mod json;
mod read;
/// Model-file writers for tests (the `testing` feature).
#[cfg(feature = "testing")]
pub mod testfile;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use error::{GraphJsonError, LoadError};
pub use graph::{
    parse_graph, GraphDef, InputDef, NodeDef, GRAPH_KEY, GRAPH_VERSION, MAX_INPUT_ELEMENTS,
    MAX_INPUT_RANK, MIN_GRAPH_VERSION,
};
pub use read::{read_model, read_model_from_bytes, read_tensors, read_tensors_from_bytes};
pub use safetensors::Dtype;
pub use write::write_tensors;

/// One tensor read from a file. `data` is `Some` for F32, F16, BF16 and F64 (converted to
/// f32); `None` for integer, bool and other dtypes, which load (a state_dict's
/// `num_batches_tracked` is I64) but cannot be used as weights.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTensor {
    /// The dtype as stored in the file.
    pub dtype: Dtype,
    /// The shape as stored in the file.
    pub shape: Vec<usize>,
    /// The values as f32 for float dtypes; `None` for integer, bool and other dtypes.
    pub data: Option<Vec<f32>>,
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
