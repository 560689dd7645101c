//! The CUDA side of the kernels: what an op needs on the GPU, described as data.
//!
//! Each op's `cuda.rs` turns its params (and weights) into a [`CudaOp`]: the constant
//! buffers to upload once (packed weights, bias) and the kernel launches that compute it,
//! each launch with its `.cu` source, the layer's shapes baked in as `#define`s, its grid
//! and block, and its pointer arguments by role. The engine compiles the sources with
//! NVRTC when a session is built (`compile`), resolves the roles to device addresses in
//! its arena, and captures the launches in one CUDA graph. Nothing here touches a device,
//! so every specialisation can be compiled (and emulated on the CPU, `emu`) without a GPU.

pub mod compile;
pub mod device;
/// The CPU emulator of CUDA launches: a test tool (needs g++ at run time), so behind the
/// `testing` feature.
#[cfg(feature = "testing")]
pub mod emu;
pub mod module;
pub mod nvrtc;
#[cfg(test)]
pub(crate) mod tests;
mod timer;

use std::fmt::Write as _;

/// What several kernels share (the fused activation), put before each one's source.
const PRELUDE: &str = include_str!("prelude.cuh");

/// A CUDA source file embedded in the binary.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// File name, for error messages and NVRTC's program name (e.g. "conv2d.cu").
    pub name: &'static str,
    /// The CUDA source text.
    pub code: &'static str,
}

/// What a kernel's pointer argument points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Input `i` of the step (the residual of a fused conv is input 1).
    Input(usize),
    /// The step's output. An element-wise op may be given its input's storage as output
    /// (in place): its kernels read each element before writing it.
    Output,
    /// Constant buffer `i` of the `CudaOp` (uploaded once at session build). Kernels read
    /// them, except split-K's workspace, which conv2d writes and leaves ready for the next
    /// run (its counters back at zero).
    Const(usize),
    /// Value `v` of the engine's plan, whichever step owns it: how an op fused across steps
    /// writes a later step's output (the classifier head, pool + linear, runs at the
    /// pool's step and writes the linear's output). Only the engine resolves it.
    Value(usize),
}

/// One kernel launch, fully specialised: the source with the layer's shapes baked in.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The `.cu` file the kernel comes from.
    pub source: &'static Source,
    /// The `extern "C"` entry point.
    pub entry: &'static str,
    /// Prepended to the source as `#define NAME value` lines, in this order.
    pub defines: Vec<(&'static str, i64)>,
    /// Blocks per launch, x y z.
    pub grid: [u32; 3],
    /// Threads per block, x y z.
    pub block: [u32; 3],
    /// Dynamic shared memory in bytes (0 when the kernel's shared memory is static).
    pub shared_bytes: u32,
    /// The kernel's parameters, in order: each one a `float*` (or `const float*`).
    pub args: Vec<Arg>,
}

impl Launch {
    /// The text NVRTC compiles: the defines, then the source. Two launches with the same
    /// text share one compiled module.
    pub fn module_text(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.defines {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "#define {name} {value}");
        }
        let _ = writeln!(text, "#line 1 \"prelude.cuh\"");
        text.push_str(PRELUDE);
        let _ = writeln!(text, "#line 1 \"{}\"", self.source.name);
        text.push_str(self.source.code);
        text
    }

    /// Threads per block.
    pub fn threads(&self) -> u32 {
        self.block.iter().product()
    }
}

/// Everything one op needs on the GPU.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CudaOp {
    /// Uploaded once when the session is built; `Arg::Const(i)` is `consts[i]`.
    pub consts: Vec<Vec<f32>>,
    /// Run in order on one stream.
    pub launches: Vec<Launch>,
}

/// Ok when `len` elements fit the kernels' 32-bit indices, else `{op} on CUDA: {what}
/// has {len} elements, over 2^31 - 1`.
pub(crate) fn check_int_indexable(op: &str, what: &str, len: usize) -> Result<(), CudaError> {
    ensure(
        len <= i32::MAX as usize,
        op,
        format_args!("{what} has {len} elements, over 2^31 - 1"),
    )
}

/// Ok when `cond` holds, else `CudaError::Unsupported` for `op` saying `detail`: how an op
/// builder refuses shapes its kernels cannot run.
pub(crate) fn ensure(
    cond: bool,
    op: &str,
    detail: std::fmt::Arguments<'_>,
) -> Result<(), CudaError> {
    match cond {
        true => Ok(()),
        false => Err(CudaError::Unsupported {
            op: op.to_string(),
            detail: detail.to_string(),
        }),
    }
}

/// Blocks of `per_block` needed to cover `n` items, as a grid dimension.
pub fn blocks(n: usize, per_block: usize) -> u32 {
    n.div_ceil(per_block) as u32
}

/// Anything that went wrong on the CUDA side, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// No driver, no device, or no NVRTC library: the message says which.
    #[error("no CUDA device: {0}")]
    Unavailable(String),
    /// NVRTC rejected a source: the file, entry point, defines and NVRTC's log.
    #[error("NVRTC could not compile {source_name} ({entry}): {log}")]
    Compile {
        /// The `.cu` file.
        source_name: String,
        /// The kernel's entry point.
        entry: String,
        /// NVRTC's log.
        log: String,
    },
    /// An op the CUDA kernels cannot run as asked: a tensor past their 32-bit indexing, a
    /// size past a launch limit, or weights that do not fit the op's shapes.
    #[error("{op} on CUDA: {detail}")]
    Unsupported {
        /// The op, e.g. "conv2d".
        op: String,
        /// What does not fit, with the sizes.
        detail: String,
    },
    /// A driver call failed.
    #[error("CUDA {what}: {detail}")]
    Driver {
        /// The call, and what it was for.
        what: String,
        /// The driver's error.
        detail: String,
    },
    /// This NVRTC's modules would not load on this driver: both versions and the fix.
    #[error("NVRTC {nvrtc} and the CUDA {driver} driver do not work together: {detail}")]
    Version {
        /// NVRTC's version.
        nvrtc: String,
        /// The driver's CUDA version.
        driver: String,
        /// Why they do not work together, and which NVRTC to use.
        detail: String,
    },
    /// The driver refused a compiled module; `log` is its JIT error and info log.
    #[error(
        "CUDA could not load the {kind} module holding {entry} ({source_name}): {detail}{}",
        on_lines(log)
    )]
    Load {
        /// CUBIN or PTX.
        kind: &'static str,
        /// The kernel's entry point.
        entry: String,
        /// The `.cu` file.
        source_name: String,
        /// The driver's error.
        detail: String,
        /// The JIT's error and info log.
        log: String,
    },
    /// A kernel faulted on the device (an illegal address, say). CUDA makes such errors
    /// sticky: the process's context is unusable from then on.
    #[error("CUDA {what}: {detail}; {STICKY}")]
    Fault {
        /// The call that reported the fault.
        what: String,
        /// The driver's error.
        detail: String,
    },
    /// A CUDA call made after an earlier device fault in this process.
    #[error("CUDA {what}: refused, an earlier device fault in this process ({first}) left its CUDA context unusable; restart the process")]
    ContextLost {
        /// The call that was refused.
        what: String,
        /// The first fault, as it was reported.
        first: String,
    },
}

const STICKY: &str = "a device fault is sticky in CUDA: this process's CUDA context can \
                      no longer be used, and every later CUDA call in it fails; restart the \
                      process";

fn on_lines(log: &str) -> String {
    match log.trim().is_empty() {
        true => String::new(),
        false => format!("\n{}", log.trim_end()),
    }
}
