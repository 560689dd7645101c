//! Kestrel's errors: values that name the file, node, tensor or shape at fault. The enums
//! are `#[non_exhaustive]`: new ways to fail may be added, so a `match` needs a `_` arm.

use std::fmt;
use std::path::PathBuf;

pub use kestrel_loader::{GraphJsonError, LoadError};

/// Everything the library can fail with. No panic crosses the API: each failure is one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or failed the loader's validation.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A model was asked for, but the file holds weights only.
    #[error("{}: no graph: the file has no `kestrel.graph` metadata (a plain state_dict loads with `Weights::load`)", path.display())]
    NoGraph {
        /// The file.
        path: PathBuf,
    },
    /// The graph is well-formed JSON but not a valid model.
    #[error("{}{error}", InFile(path))]
    Graph {
        /// The file the graph came from; `None` for a graph built in code.
        path: Option<PathBuf>,
        /// What is wrong with the graph.
        error: Box<GraphError>,
    },
    /// A session option this model, machine or device cannot take.
    #[error("session option {option}: {detail}")]
    BadOption {
        /// The option, as `SessionOptions` names it ("batch", "threads", ...).
        option: &'static str,
        /// What is wrong with its value.
        detail: String,
    },
    /// A node whose output has more elements than the CUDA kernels index (2^31 - 1).
    #[error("node \"{node}\": output of shape {shape:?} has 2^31 elements or more, past what the CUDA kernels index (32-bit); use a smaller batch")]
    TooLargeForCuda {
        /// The node.
        node: String,
        /// Its output's shape at the session's batch.
        shape: Vec<usize>,
    },
    /// A weight handed over in code does not fit its shape.
    #[error("weight \"{name}\": {detail}")]
    Weight {
        /// The weight's name.
        name: String,
        /// What does not fit.
        detail: String,
    },
    /// The caller's input does not fit the session.
    #[error("input \"{name}\": {detail}")]
    Input {
        /// The input's name.
        name: String,
        /// What does not fit.
        detail: String,
    },
    /// A reference or input file (`kestrel::reference`) lacks a tensor the model needs, or
    /// holds one of the wrong type or shape.
    #[error("{}: {detail}", path.display())]
    Reference {
        /// The file.
        path: PathBuf,
        /// What is missing or does not fit.
        detail: String,
    },
    /// No usable GPU, driver or NVRTC ("no CUDA device: …"), a kernel NVRTC refused, or a
    /// failed driver call.
    #[error(transparent)]
    Cuda(#[from] kestrel_kernels::cuda::CudaError),
    /// A node the CUDA kernels cannot run as asked: a tensor past their 32-bit indexing,
    /// a size past a launch limit.
    #[error("node \"{node}\": {error}")]
    CudaUnsupported {
        /// The node.
        node: String,
        /// What does not fit (`CudaError::Unsupported`).
        error: Box<kestrel_kernels::cuda::CudaError>,
    },
    /// A kernel failed on the GPU: the node, its step's index in the plan, and the kernel
    /// with its source file, grid and block.
    #[error("node \"{node}\" (step {step}): kernel {kernel} failed on the GPU: {error}")]
    CudaStep {
        /// The node whose step failed.
        node: String,
        /// The step's index in the session's plan.
        step: usize,
        /// The kernel, with its source file, grid and block.
        kernel: String,
        /// The driver's error.
        error: Box<kestrel_kernels::cuda::CudaError>,
    },
    /// A thread could not be pinned to a core (`pin_threads`).
    #[error(transparent)]
    Pin(#[from] kestrel_kernels::affinity::PinError),
    /// The arena or a weight could not be allocated.
    #[error("out of memory: {what} of {floats} floats")]
    OutOfMemory {
        /// What was being allocated, e.g. "session arena".
        what: String,
        /// Its size in f32s.
        floats: usize,
    },
}

/// What kind of failure an [`Error`] is, for callers that sort errors into a few classes:
/// the Python module's exception classes and the C ABI's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file that cannot be read, is not a valid model, or lacks a tensor it must hold.
    Load,
    /// An input that does not fit the session.
    Input,
    /// A session option this model, machine or device cannot take.
    Option,
    /// No usable GPU, driver or NVRTC, or something the CUDA kernels cannot run or that
    /// failed on the GPU.
    Cuda,
    /// Anything else: a weight handed over in code, pinning, memory.
    Other,
}

impl Error {
    /// The kind of failure this is. Every variant is sorted here, in one place, so that a
    /// new one is classed once for every binding.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Load(_)
            | Error::NoGraph { .. }
            | Error::Graph { .. }
            | Error::Reference { .. } => ErrorKind::Load,
            Error::Input { .. } => ErrorKind::Input,
            Error::BadOption { .. } => ErrorKind::Option,
            Error::Cuda(_)
            | Error::CudaUnsupported { .. }
            | Error::CudaStep { .. }
            | Error::TooLargeForCuda { .. } => ErrorKind::Cuda,
            Error::Weight { .. } | Error::Pin(_) | Error::OutOfMemory { .. } => ErrorKind::Other,
        }
    }

    pub(crate) fn graph(path: Option<PathBuf>, error: GraphError) -> Error {
        Error::Graph {
            path,
            error: Box::new(error),
        }
    }
}

/// Prints `path: ` when the error came from a file.
struct InFile<'a>(&'a Option<PathBuf>);

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}: ", path.display()),
            None => Ok(()),
        }
    }
}

/// What is wrong with a graph, naming the node (and tensor) at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The graph's `version` is not one this build reads.
    #[error("graph version {found} is not supported (this build reads versions 1 to {supported})")]
    Version {
        /// The version the graph gives.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A node uses an op newer than the version its graph declares.
    #[error("node \"{node}\": op \"{op}\" needs graph version {needs}, the graph says {version}")]
    OpTooNew {
        /// The node's name.
        node: String,
        /// The op.
        op: String,
        /// The version that introduced it.
        needs: u32,
        /// The graph's version.
        version: u32,
    },
    /// The graph declares no input.
    #[error("the graph has no inputs")]
    NoInputs,
    /// The graph declares no output.
    #[error("the graph has no outputs")]
    NoOutputs,
    /// A graph input's name or shape is unusable.
    #[error("input \"{name}\": {detail}")]
    BadInput {
        /// The input's name.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Two nodes, or a node and an input, share a name.
    #[error("name \"{name}\" is used by more than one node or input")]
    DuplicateName {
        /// The shared name.
        name: String,
    },
    /// A node's op is not one Kestrel runs.
    #[error("node \"{node}\": unknown op \"{op}\" (supported: {})", crate::graph::OP_NAMES.join(", "))]
    UnknownOp {
        /// The node's name.
        node: String,
        /// The op as the graph spells it.
        op: String,
    },
    /// A node has the wrong number of inputs for its op.
    #[error("node \"{node}\": op {op} takes {expected} input(s), got {found}")]
    Arity {
        /// The node's name.
        node: String,
        /// Its op.
        op: &'static str,
        /// How many inputs the op takes, such as "1" or "1 or 2".
        expected: String,
        /// How many it has.
        found: usize,
    },
    /// A node reads a value that is neither a graph input nor a node.
    #[error("node \"{node}\": input \"{name}\" is neither a graph input nor a node")]
    MissingValue {
        /// The node's name.
        node: String,
        /// The name it reads.
        name: String,
    },
    /// A graph output names a value that is neither a graph input nor a node.
    #[error("output \"{name}\" is neither a graph input nor a node")]
    MissingOutput {
        /// The output's name.
        name: String,
    },
    /// The nodes cannot be put in an order where each reads only earlier values.
    #[error("node \"{node}\" is part of a cycle")]
    Cycle {
        /// A node on the cycle.
        node: String,
    },
    /// A node names a weight tensor the file does not hold.
    #[error(
        "node \"{node}\": weight \"{role}\" names tensor \"{tensor}\", which is not in the file"
    )]
    MissingWeight {
        /// The node's name.
        node: String,
        /// The weight's role, such as `weight` or `bias`.
        role: String,
        /// The tensor name it gives.
        tensor: String,
    },
    /// A node lacks a weight its op needs.
    #[error("node \"{node}\": op {op} needs weight \"{role}\"")]
    WeightNotGiven {
        /// The node's name.
        node: String,
        /// Its op.
        op: &'static str,
        /// The missing role.
        role: &'static str,
    },
    /// A node gives a weight its op does not take.
    #[error("node \"{node}\": op {op} has no weight \"{role}\"")]
    UnexpectedWeight {
        /// The node's name.
        node: String,
        /// Its op.
        op: &'static str,
        /// The role it gives.
        role: String,
    },
    /// A weight tensor is not of a float dtype.
    #[error(
        "node \"{node}\": weight \"{role}\" (tensor \"{tensor}\") is {dtype}, not a float type"
    )]
    WeightNotFloat {
        /// The node's name.
        node: String,
        /// The weight's role.
        role: String,
        /// The tensor's name.
        tensor: String,
        /// The tensor's dtype.
        dtype: String,
    },
    /// An int8 weight (GRAPH_FORMAT.md, version 4) whose scales or zero points are missing
    /// or wrong.
    #[error("node \"{node}\": int8 weight \"{tensor}\": {detail}")]
    QuantizedWeight {
        /// The node's name.
        node: String,
        /// The int8 tensor's name.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// A weight tensor's shape is not the one its op needs.
    #[error("node \"{node}\": weight \"{role}\" (tensor \"{tensor}\") has shape {found:?}, expected {expected:?}")]
    WeightShape {
        /// The node's name.
        node: String,
        /// The weight's role.
        role: String,
        /// The tensor's name.
        tensor: String,
        /// The shape the op needs.
        expected: Vec<usize>,
        /// The shape the tensor has.
        found: Vec<usize>,
    },
    /// An attribute is missing, of the wrong type or out of range.
    #[error("node \"{node}\": attribute \"{attr}\": {detail}")]
    Attr {
        /// The node's name.
        node: String,
        /// The attribute's name.
        attr: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Shapes or attribute values the op cannot take (PyTorch would refuse them too).
    #[error("node \"{node}\" ({op}): {detail}")]
    Invalid {
        /// The node's name.
        node: String,
        /// Its op.
        op: &'static str,
        /// What the op cannot take.
        detail: String,
    },
}
