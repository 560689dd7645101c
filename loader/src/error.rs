//! The loader's errors. Every message is one line; a `LoadError` starts with the file's path
//! and names the tensor at fault where there is one. Names are printed with `{:?}` so a
//! name holding a newline or a quote cannot break the line.

use std::path::PathBuf;

use safetensors::Dtype;

/// Why a safetensors file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Opening, inspecting or reading the file failed.
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file has no bytes at all.
    #[error("{}: the file is empty; a safetensors file starts with an 8-byte header length", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// The file has fewer than the 8 bytes of the header length.
    #[error("{}: the file is shorter than the 8-byte header length", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
    },

    /// The 8-byte little-endian header length points past the end of the file.
    #[error("{}: the header length is {header_len} bytes but only {} bytes follow the 8-byte length", path.display(), file_len.saturating_sub(8))]
    HeaderPastEnd {
        /// The file.
        path: PathBuf,
        /// The header length the file declares, in bytes.
        header_len: u64,
        /// The file's length in bytes.
        file_len: u64,
    },

    /// The header is longer than the safetensors format allows (the official crate refuses it).
    #[error("{}: the header length is {header_len} bytes, over the safetensors limit of {limit}", path.display())]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// The header length the file declares, in bytes.
        header_len: u64,
        /// The largest header length safetensors accepts, in bytes.
        limit: u64,
    },

    /// The header is not valid JSON.
    #[error("{}: the header is not valid JSON: {detail}", path.display())]
    HeaderNotJson {
        /// The file.
        path: PathBuf,
        /// The JSON parser's message.
        detail: String,
    },

    /// The header is valid JSON but not an object.
    #[error("{}: the header is JSON but not an object", path.display())]
    HeaderNotObject {
        /// The file.
        path: PathBuf,
    },

    /// A JSON object in the header has the same key twice: JSON readers disagree on which
    /// one wins, so the file is ambiguous.
    #[error("{}: the header has the key {key:?} twice", path.display())]
    DuplicateKey {
        /// The file.
        path: PathBuf,
        /// The key found twice.
        key: String,
    },

    /// A tensor's entry is not an object or lacks / mistypes `dtype`, `shape` or `data_offsets`.
    #[error("{}: tensor {tensor:?}: {detail}", path.display())]
    BadTensorEntry {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong with the entry.
        detail: String,
    },

    /// A tensor's `dtype` is not one safetensors defines.
    #[error("{}: tensor {tensor:?}: unknown dtype {dtype:?}", path.display())]
    UnknownDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The dtype as the header spells it.
        dtype: String,
    },

    /// The element count or byte size overflows 64 bits, or is larger than the whole file:
    /// refused before anything is allocated.
    #[error("{}: tensor {tensor:?}: shape {shape:?} is too large: its byte size overflows or exceeds the whole file", path.display())]
    ShapeTooLarge {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The declared shape.
        shape: Vec<u64>,
    },

    /// The byte size the shape and dtype call for differs from the span of `data_offsets`.
    #[error("{}: tensor {tensor:?}: shape {shape:?} × {dtype} is {expected_bytes} bytes but data_offsets span {actual_bytes}", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// The declared dtype.
        dtype: Dtype,
        /// Bytes the shape and dtype call for.
        expected_bytes: u64,
        /// Bytes `data_offsets` span.
        actual_bytes: u64,
    },

    /// A tensor's `data_offsets` run past the end of the data section (or end before they
    /// begin).
    #[error("{}: tensor {tensor:?}: data_offsets [{begin}, {end}] run past the end of the {data_len}-byte data section", path.display())]
    OffsetsOutOfRange {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// First byte of the tensor's data, from the start of the data section.
        begin: u64,
        /// One past its last byte.
        end: u64,
        /// The data section's length in bytes.
        data_len: u64,
    },

    /// Two tensors share bytes (a zero-size tensor strictly inside another's span counts too:
    /// the official crate refuses it).
    #[error("{}: tensor {tensor:?}: its data_offsets overlap those of tensor {other:?}", path.display())]
    Overlap {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The tensor whose bytes it shares.
        other: String,
    },

    /// Bytes between two tensors (or before the first) that no tensor covers: the safetensors
    /// format requires tensors packed back to back from offset 0, and the official crate
    /// refuses a gap.
    #[error("{}: tensor {tensor:?}: data starts at byte {begin} but the tensors before it end at byte {previous_end}; safetensors requires tensors packed without gaps", path.display())]
    Gap {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Where its data starts.
        begin: u64,
        /// Where the tensors before it end.
        previous_end: u64,
    },

    /// Bytes after the last tensor: the official crate refuses them.
    #[error("{}: the tensors end at byte {data_end} of the {data_len}-byte data section; safetensors forbids trailing bytes", path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Where the last tensor ends.
        data_end: u64,
        /// The data section's length in bytes.
        data_len: u64,
    },

    /// `__metadata__` is not an object mapping strings to strings.
    #[error("{}: __metadata__ must map strings to strings: {detail}", path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// The graph JSON in `__metadata__["kestrel.graph"]` is malformed or of an unknown version.
    #[error("{}: metadata \"kestrel.graph\": {source}", path.display())]
    Graph {
        /// The file.
        path: PathBuf,
        /// Why the graph JSON was refused.
        #[source]
        source: GraphJsonError,
    },

    /// The official safetensors crate refused a file our own checks accepted.
    #[error("{}: the safetensors crate refused the file: {detail}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors crate's message.
        detail: String,
    },

    /// Creating, writing or renaming the output file failed.
    #[error("{}: cannot write the file: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `write_tensors` was given a tensor it cannot write (data length ≠ shape's element
    /// count, a repeated name, the reserved name `__metadata__`); nothing was written.
    #[error("{}: cannot write tensor {tensor:?}: {detail}", path.display())]
    BadWriteInput {
        /// The file being written.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Why a graph JSON string was refused. The loader checks structure only; ops, attributes
/// and references between nodes are checked by the engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphJsonError {
    /// The text is not JSON.
    #[error("graph JSON is malformed at line {line}, column {column}: {detail}")]
    Malformed {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// The JSON parser's message.
        detail: String,
    },

    /// An object has the same key twice: JSON readers disagree on which one wins.
    #[error("graph JSON has the key {key:?} twice")]
    DuplicateKey {
        /// The key found twice.
        key: String,
    },

    /// `found` describes what is there instead, e.g. "an array".
    #[error("graph JSON must be an object, found {found}")]
    NotAnObject {
        /// What is there instead, e.g. "an array".
        found: String,
    },

    /// `field` is a path such as `nodes[3].op`.
    #[error("graph JSON: missing field {field}")]
    MissingField {
        /// The field's path, such as `nodes[3].op`.
        field: String,
    },

    /// A field has the wrong JSON type.
    #[error("graph JSON: {field} must be {expected}, found {found}")]
    WrongType {
        /// The field's path, such as `nodes[3].op`.
        field: String,
        /// The JSON type it must have.
        expected: &'static str,
        /// The JSON type it has.
        found: String,
    },

    /// A field version 1 does not define (a typo such as `atrs` would otherwise drop
    /// every attribute silently).
    #[error("graph JSON: unknown field {field} (expected one of: {allowed})")]
    UnknownField {
        /// The field's path.
        field: String,
        /// The fields allowed there, comma-separated.
        allowed: &'static str,
    },

    /// The graph's `version` is not one this build reads.
    #[error(
        "graph JSON version {found} is not supported; this build reads versions {} to {}",
        crate::MIN_GRAPH_VERSION,
        crate::GRAPH_VERSION
    )]
    UnknownVersion {
        /// The version the graph gives.
        found: u64,
    },

    /// A graph input's shape is refused: no dimension, too many, `-1` past the batch, a size
    /// below 1, or too many elements.
    #[error("graph JSON: input {input:?} has shape {shape:?}: {why}")]
    BadInputShape {
        /// The input's name.
        input: String,
        /// The shape it declares.
        shape: Vec<i64>,
        /// Why that shape is refused.
        why: String,
    },
}
