//! What a CUDA session is built from, for people: which NVRTC, driver and device, and
//! what ptxas made of each kernel (registers, shared memory, stack, spills).

use super::{cuda_plan, OpChoice};
use crate::error::Error;
use crate::plan::Plan;
use kestrel_kernels::cuda::compile::Compiler;
use std::path::PathBuf;

/// One kernel launch of a session's plan, as compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaKernel {
    /// The node whose step launches it.
    pub node: String,
    /// The kernel's entry point (its CUDA symbol).
    pub entry: &'static str,
    /// The `.cu` file it comes from.
    pub source: &'static str,
    /// Blocks per launch, x y z.
    pub grid: [u32; 3],
    /// Threads per block, x y z.
    pub block: [u32; 3],
    /// Registers per thread; 0 when the module is PTX (the driver's JIT decides).
    pub registers: u32,
    /// Static shared memory per block, from ptxas.
    pub static_shared_bytes: u32,
    /// Dynamic shared memory per block, from the launch.
    pub dynamic_shared_bytes: u32,
    /// Local-memory stack per thread, from ptxas.
    pub stack_bytes: u32,
    /// Bytes spilled to local memory by stores, from ptxas (0 means no spill).
    pub spill_stores: u32,
    /// Bytes read back from spills, from ptxas.
    pub spill_loads: u32,
}

/// What compiling a session's kernels gave ([`crate::Model::compile_cuda`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaBuild {
    /// The device architecture compiled for, e.g. "sm_90".
    pub arch: String,
    /// "CUBIN" (machine code for `arch`), or "PTX" where NVRTC cannot emit `arch`.
    pub image: &'static str,
    /// NVRTC's version and library path, e.g. "13.0 (/usr/local/cuda/lib64/libnvrtc.so.13)".
    pub nvrtc: String,
    /// Distinct modules (kernel specialisations).
    pub modules: usize,
    /// Every launch, in plan order.
    pub kernels: Vec<CudaKernel>,
}

/// The CUDA stack a session runs on: printed in `kestrel bench`'s header and `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaInfo {
    /// The device's name, e.g. "NVIDIA H200".
    pub device: String,
    /// Its architecture, e.g. "sm_90".
    pub arch: String,
    /// The driver's CUDA version, e.g. (13, 0).
    pub driver: (i32, i32),
    /// NVRTC's version, e.g. (13, 0).
    pub nvrtc: (i32, i32),
    /// The libnvrtc file the loader found.
    pub nvrtc_library: Option<PathBuf>,
    /// "CUBIN" or "PTX": what the session's modules are.
    pub image: &'static str,
}

impl CudaInfo {
    /// "NVIDIA H200 (sm_90), CUDA driver 13.0, NVRTC 13.0 (/path/libnvrtc.so.13), CUBIN".
    pub fn describe(&self) -> String {
        let library = match &self.nvrtc_library {
            Some(path) => format!(" ({})", path.display()),
            None => String::new(),
        };
        format!(
            "{} ({}), CUDA driver {}.{}, NVRTC {}.{}{library}, {}",
            self.device,
            self.arch,
            self.driver.0,
            self.driver.1,
            self.nvrtc.0,
            self.nvrtc.1,
            self.image
        )
    }
}

/// Compiles every kernel specialisation of `plan`, as `choice` makes them, for `arch`
/// with NVRTC, without a GPU, and reports what ptxas made of each launch.
pub(crate) fn compile_plan(
    plan: &Plan,
    choice: OpChoice,
    arch: &str,
    cache_dir: Option<PathBuf>,
) -> Result<CudaBuild, Error> {
    let ops = cuda_plan(plan, choice)?.ops;
    let compiler = Compiler::new(arch, cache_dir)?;
    compiler.precompile(ops.iter().flat_map(|op| &op.launches))?;
    let mut texts = std::collections::HashSet::new();
    let mut kernels = Vec::new();
    for (step, op) in plan.steps.iter().zip(ops) {
        for launch in &op.launches {
            let module = compiler.module(launch)?;
            texts.insert(launch.module_text());
            let used = module
                .resources()
                .into_iter()
                .find(|r| r.entry == launch.entry)
                .unwrap_or_default();
            kernels.push(CudaKernel {
                node: step.name.clone(),
                entry: launch.entry,
                source: launch.source.name,
                grid: launch.grid,
                block: launch.block,
                registers: used.registers,
                static_shared_bytes: used.shared_bytes,
                dynamic_shared_bytes: launch.shared_bytes,
                stack_bytes: used.stack_bytes,
                spill_stores: used.spill_stores,
                spill_loads: used.spill_loads,
            });
        }
    }
    Ok(CudaBuild {
        arch: arch.to_string(),
        image: compiler.target().kind.as_str(),
        nvrtc: compiler.nvrtc().describe(),
        modules: texts.len(),
        kernels,
    })
}
