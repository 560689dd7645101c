//! Kestrel's errors: values that name the file, node, tensor or shape at fault.

use std::fmt;
use std::path::PathBuf;

pub use kestrel_loader::{GraphJsonError, LoadError};

/// Everything the library can fail with. No panic crosses the API: each failure is one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or failed the loader's validation.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A model was asked for, but the file holds weights only.
    #[error("{}: no graph: the file has no `kestrel.graph` metadata (a plain state_dict loads with `Weights::load`)", path.display())]
    NoGraph { path: PathBuf },
    /// The graph is well-formed JSON but not a valid model.
    #[error("{}{error}", InFile(path))]
    Graph {
        path: Option<PathBuf>,
        error: Box<GraphError>,
    },
    /// A session was asked for with options the model cannot take.
    #[error("session: {0}")]
    Session(String),
    /// A weight handed over in code does not fit its shape.
    #[error("weight \"{name}\": {detail}")]
    Weight { name: String, detail: String },
    /// The caller's input does not fit the session.
    #[error("input \"{name}\": {detail}")]
    Input { name: String, detail: String },
    /// No usable GPU, driver or NVRTC ("no CUDA device: …"), a kernel NVRTC refused, or a
    /// failed driver call.
    #[error(transparent)]
    Cuda(#[from] kestrel_kernels::cuda::CudaError),
    /// A kernel failed on the GPU: the node, its step's index in the plan, and the kernel
    /// with its source file, grid and block.
    #[error("node \"{node}\" (step {step}): kernel {kernel} failed on the GPU: {error}")]
    CudaStep {
        node: String,
        step: usize,
        kernel: String,
        error: Box<kestrel_kernels::cuda::CudaError>,
    },
    /// A thread could not be pinned to a core (`pin_threads`).
    #[error(transparent)]
    Pin(#[from] kestrel_kernels::affinity::PinError),
    /// The arena or a weight could not be allocated.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
}

impl Error {
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
pub enum GraphError {
    #[error("graph version {found} is not supported (this build reads version {supported})")]
    Version { found: u32, supported: u32 },
    #[error("the graph has no inputs")]
    NoInputs,
    #[error("the graph has no outputs")]
    NoOutputs,
    #[error("input \"{name}\": {detail}")]
    BadInput { name: String, detail: String },
    #[error("name \"{name}\" is used by more than one node or input")]
    DuplicateName { name: String },
    #[error("node \"{node}\": unknown op \"{op}\" (supported: {})", crate::graph::OP_NAMES.join(", "))]
    UnknownOp { node: String, op: String },
    #[error("node \"{node}\": op {op} takes {expected} input(s), got {found}")]
    Arity {
        node: String,
        op: &'static str,
        expected: String,
        found: usize,
    },
    #[error("node \"{node}\": input \"{name}\" is neither a graph input nor a node")]
    MissingValue { node: String, name: String },
    #[error("output \"{name}\" is neither a graph input nor a node")]
    MissingOutput { name: String },
    #[error("node \"{node}\" is part of a cycle")]
    Cycle { node: String },
    #[error(
        "node \"{node}\": weight \"{role}\" names tensor \"{tensor}\", which is not in the file"
    )]
    MissingWeight {
        node: String,
        role: String,
        tensor: String,
    },
    #[error("node \"{node}\": op {op} needs weight \"{role}\"")]
    WeightNotGiven {
        node: String,
        op: &'static str,
        role: &'static str,
    },
    #[error("node \"{node}\": op {op} has no weight \"{role}\"")]
    UnexpectedWeight {
        node: String,
        op: &'static str,
        role: String,
    },
    #[error(
        "node \"{node}\": weight \"{role}\" (tensor \"{tensor}\") is {dtype}, not a float type"
    )]
    WeightNotFloat {
        node: String,
        role: String,
        tensor: String,
        dtype: String,
    },
    #[error("node \"{node}\": weight \"{role}\" (tensor \"{tensor}\") has shape {found:?}, expected {expected:?}")]
    WeightShape {
        node: String,
        role: String,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("node \"{node}\": attribute \"{attr}\": {detail}")]
    Attr {
        node: String,
        attr: String,
        detail: String,
    },
    /// Shapes or attribute values the op cannot take (PyTorch would refuse them too).
    #[error("node \"{node}\" ({op}): {detail}")]
    Invalid {
        node: String,
        op: &'static str,
        detail: String,
    },
}
