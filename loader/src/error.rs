//! The loader's errors. Every message is one line; a `LoadError` starts with the file's path
//! and names the tensor at fault where there is one. Names are printed with `{:?}` so a
//! name holding a newline or a quote cannot break the line.

use std::path::PathBuf;

use safetensors::Dtype;

/// Why a safetensors file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Opening, inspecting or reading the file failed.
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: the file is empty; a safetensors file starts with an 8-byte header length", path.display())]
    Empty { path: PathBuf },

    #[error("{}: the file is shorter than the 8-byte header length", path.display())]
    Truncated { path: PathBuf },

    /// The 8-byte little-endian header length points past the end of the file.
    #[error("{}: the header length is {header_len} bytes but only {} bytes follow the 8-byte length", path.display(), file_len.saturating_sub(8))]
    HeaderPastEnd {
        path: PathBuf,
        header_len: u64,
        file_len: u64,
    },

    /// The header is longer than the safetensors format allows (the official crate refuses it).
    #[error("{}: the header length is {header_len} bytes, over the safetensors limit of {limit}", path.display())]
    HeaderTooLarge {
        path: PathBuf,
        header_len: u64,
        limit: u64,
    },

    #[error("{}: the header is not valid JSON: {detail}", path.display())]
    HeaderNotJson { path: PathBuf, detail: String },

    #[error("{}: the header is JSON but not an object", path.display())]
    HeaderNotObject { path: PathBuf },

    /// A JSON object in the header has the same key twice: JSON readers disagree on which
    /// one wins, so the file is ambiguous.
    #[error("{}: the header has the key {key:?} twice", path.display())]
    DuplicateKey { path: PathBuf, key: String },

    /// A tensor's entry is not an object or lacks / mistypes `dtype`, `shape` or `data_offsets`.
    #[error("{}: tensor {tensor:?}: {detail}", path.display())]
    BadTensorEntry {
        path: PathBuf,
        tensor: String,
        detail: String,
    },

    #[error("{}: tensor {tensor:?}: unknown dtype {dtype:?}", path.display())]
    UnknownDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },

    /// The element count or byte size overflows 64 bits, or is larger than the whole file:
    /// refused before anything is allocated.
    #[error("{}: tensor {tensor:?}: shape {shape:?} is too large: its byte size overflows or exceeds the whole file", path.display())]
    ShapeTooLarge {
        path: PathBuf,
        tensor: String,
        shape: Vec<u64>,
    },

    #[error("{}: tensor {tensor:?}: shape {shape:?} × {dtype} is {expected_bytes} bytes but data_offsets span {actual_bytes}", path.display())]
    SizeMismatch {
        path: PathBuf,
        tensor: String,
        shape: Vec<usize>,
        dtype: Dtype,
        expected_bytes: u64,
        actual_bytes: u64,
    },

    #[error("{}: tensor {tensor:?}: data_offsets [{begin}, {end}] run past the end of the {data_len}-byte data section", path.display())]
    OffsetsOutOfRange {
        path: PathBuf,
        tensor: String,
        begin: u64,
        end: u64,
        data_len: u64,
    },

    /// Two tensors share bytes (a zero-size tensor strictly inside another's span counts too:
    /// the official crate refuses it).
    #[error("{}: tensor {tensor:?}: its data_offsets overlap those of tensor {other:?}", path.display())]
    Overlap {
        path: PathBuf,
        tensor: String,
        other: String,
    },

    /// Bytes between two tensors (or before the first) that no tensor covers: the safetensors
    /// format requires tensors packed back to back from offset 0, and the official crate
    /// refuses a gap.
    #[error("{}: tensor {tensor:?}: data starts at byte {begin} but the tensors before it end at byte {previous_end}; safetensors requires tensors packed without gaps", path.display())]
    Gap {
        path: PathBuf,
        tensor: String,
        begin: u64,
        previous_end: u64,
    },

    /// Bytes after the last tensor: the official crate refuses them.
    #[error("{}: the tensors end at byte {data_end} of the {data_len}-byte data section; safetensors forbids trailing bytes", path.display())]
    TrailingBytes {
        path: PathBuf,
        data_end: u64,
        data_len: u64,
    },

    /// `__metadata__` is not an object mapping strings to strings.
    #[error("{}: __metadata__ must map strings to strings: {detail}", path.display())]
    BadMetadata { path: PathBuf, detail: String },

    /// The graph JSON in `__metadata__["kestrel.graph"]` is malformed or of an unknown version.
    #[error("{}: metadata \"kestrel.graph\": {source}", path.display())]
    Graph {
        path: PathBuf,
        #[source]
        source: GraphJsonError,
    },

    /// The official safetensors crate refused a file our own checks accepted.
    #[error("{}: the safetensors crate refused the file: {detail}", path.display())]
    Safetensors { path: PathBuf, detail: String },

    /// Creating, writing or renaming the output file failed.
    #[error("{}: cannot write the file: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `write_tensors` was given a tensor it cannot write (data length ≠ shape's element
    /// count, a repeated name, the reserved name `__metadata__`); nothing was written.
    #[error("{}: cannot write tensor {tensor:?}: {detail}", path.display())]
    BadWriteInput {
        path: PathBuf,
        tensor: String,
        detail: String,
    },
}

/// Why a graph JSON string was refused. The loader checks structure only; ops, attributes
/// and references between nodes are checked by the engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphJsonError {
    #[error("graph JSON is malformed at line {line}, column {column}: {detail}")]
    Malformed {
        line: usize,
        column: usize,
        detail: String,
    },

    #[error("graph JSON has the key {key:?} twice")]
    DuplicateKey { key: String },

    /// `found` describes what is there instead, e.g. "an array".
    #[error("graph JSON must be an object, found {found}")]
    NotAnObject { found: String },

    /// `field` is a path such as `nodes[3].op`.
    #[error("graph JSON: missing field {field}")]
    MissingField { field: String },

    #[error("graph JSON: {field} must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },

    /// A field version 1 does not define (a typo such as `atrs` would otherwise drop
    /// every attribute silently).
    #[error("graph JSON: unknown field {field} (expected one of: {allowed})")]
    UnknownField {
        field: String,
        allowed: &'static str,
    },

    #[error(
        "graph JSON version {found} is not supported; this build reads version {}",
        crate::GRAPH_VERSION
    )]
    UnknownVersion { found: u64 },

    #[error("graph JSON: input {input:?} has shape {shape:?}: {why}")]
    BadInputShape {
        input: String,
        shape: Vec<i64>,
        why: String,
    },
}
