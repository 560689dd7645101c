//! The CUDA executor: the CPU planner's plan on one device arena, every step's kernels
//! compiled by NVRTC and loaded when the session is built, and the whole run captured once
//! as a CUDA graph: a run is one host-to-device copy per input, one graph launch and one
//! device-to-host copy per output, with no allocation, compilation or host work per layer.

use super::{Executor, Inputs};
use crate::error::Error;
use crate::lower::Kernel;
use crate::plan::{moves_no_data, Plan, Slot, Step};
use kestrel_kernels as k;
use kestrel_kernels::cuda::compile::Compiler;
use kestrel_kernels::cuda::device::{driver_error, geometry, Gpu, Pinned};
use kestrel_kernels::cuda::module::Kernel as CudaKernelFn;
use kestrel_kernels::cuda::{Arg, CudaError, CudaOp, Launch};
use kestrel_kernels::Precision;
use std::path::PathBuf;

#[cfg(feature = "testing")]
mod emu;
#[cfg(test)]
mod fault_tests;
mod fusion;
mod profile;
mod report;

#[cfg(feature = "testing")]
pub(crate) use emu::EmuExecutor;
pub(crate) use report::compile_plan;
pub use report::{CudaBuild, CudaInfo, CudaKernel};

/// The `CudaOp` that computes one step in `precision`; empty for steps that move no data.
/// An error for shapes the CUDA kernels cannot run (past their 32-bit indexing, say).
pub(crate) fn cuda_op(
    kernel: &Kernel,
    out_len: usize,
    precision: Precision,
) -> Result<CudaOp, CudaError> {
    match kernel {
        // Sessions on CUDA keep every int8 op in its float form (`passes::optimize`).
        Kernel::QConv2d { .. }
        | Kernel::QAdd { .. }
        | Kernel::QLut { .. }
        | Kernel::QMaxPool { .. }
        | Kernel::QLinear { .. } => Err(CudaError::Unsupported {
            op: kernel.label(),
            detail: "the int8 ops have no CUDA kernels yet".into(),
        }),
        Kernel::Conv2d {
            p,
            weight,
            bias,
            residual,
            act,
            in_scale,
        } => {
            let conv = match in_scale {
                true => k::conv2d::cuda::conv2d_in_scaled,
                false => k::conv2d::cuda::conv2d,
            };
            conv(p, weight, bias.as_deref(), *residual, *act, precision)
        }
        Kernel::Linear {
            p,
            weight,
            bias,
            act,
        } => k::linear::cuda::linear(p, weight, bias.as_deref(), *act, precision),
        Kernel::BatchNorm {
            p,
            weight,
            bias,
            mean,
            var,
        } => {
            let (scale, shift) =
                k::batch_norm::scale_shift(weight.as_deref(), bias.as_deref(), mean, var, p.eps);
            k::batch_norm::cuda::scale_shift(p, &scale, &shift)
        }
        Kernel::Act(a) => k::activation::cuda::activate(*a, out_len),
        Kernel::MaxPool2d(p) => k::pool2d::cuda::max_pool2d(p),
        Kernel::AvgPool2d(p) => k::pool2d::cuda::avg_pool2d(p),
        Kernel::AdaptiveAvgPool2d(p) => k::adaptive_avg_pool2d::cuda::adaptive_avg_pool2d(p),
        Kernel::Mean(p) => k::mean::cuda::mean_hw(p),
        Kernel::Add { act } => k::add::cuda::add(out_len, *act),
        Kernel::Binary {
            p,
            op,
            operands,
            act,
        } => k::binary::cuda::binary(p, *op, operands.as_slices(), *act),
        Kernel::Concat { outer, inner } => k::concat::cuda::concat(*outer, inner),
        Kernel::Softmax(p) => k::softmax::cuda::softmax(p),
        Kernel::Alias | Kernel::View { .. } => Ok(CudaOp::default()),
        Kernel::LayerNorm {
            p,
            weight,
            bias,
            act,
        } => k::layer_norm::cuda::layer_norm(p, weight.as_deref(), bias.as_deref(), *act),
        Kernel::Copy(p) => k::copy::cuda::copy(p),
        Kernel::SeGate { p, w, b } => {
            k::se_gate::cuda::se_gate(p, [&w[0], &w[1]], [b[0].as_deref(), b[1].as_deref()])
        }
        Kernel::Upsample(p) => k::upsample::cuda::upsample(p),
        Kernel::FakeQuant(p) => k::quantize::cuda::fake_quant(p, out_len),
        // fp32 whatever the precision: its sums are short (c_in/groups x taps) and rare.
        Kernel::ConvTranspose2d {
            p,
            weight,
            bias,
            act,
        } => k::conv_transpose2d::cuda::conv_transpose2d(p, weight, bias.as_deref(), *act),
    }
}

/// How a plan's steps become CUDA ops: in which precision, and whether ops may be fused
/// across steps (with the graph passes on; off, every node runs on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpChoice {
    pub precision: Precision,
    pub fuse: bool,
}

impl OpChoice {
    pub(crate) fn of(opts: &crate::SessionOptions) -> OpChoice {
        OpChoice {
            precision: opts.precision,
            fuse: opts.optimize,
        }
    }
}

/// What the CUDA executor runs for a plan: each step's ops (empty where the step moves no
/// data, or where an earlier step's fused op computes it), in plan order, and where each
/// value lives in the device arena: the plan's own layout, except values a fused op had
/// to move past the plan's arena (see `fusion.rs`).
pub(crate) struct CudaPlan {
    pub ops: Vec<CudaOp>,
    pub values: Vec<Slot>,
    pub arena_len: usize,
}

/// The [`CudaPlan`] of `plan`; an error for a plan the CUDA kernels cannot run.
pub(crate) fn cuda_plan(plan: &Plan, choice: OpChoice) -> Result<CudaPlan, Error> {
    // The kernels index with 32-bit ints: a large batch is the way to get past that.
    if let Some(step) = plan
        .steps
        .iter()
        .find(|s| plan.values[s.output].len > i32::MAX as usize)
    {
        return Err(Error::TooLargeForCuda {
            node: step.name.clone(),
            shape: plan.values[step.output].shape.clone(),
        });
    }
    let ops =
        plan.steps
            .iter()
            .map(|s| match moves_no_data(s) {
                true => Ok(CudaOp::default()),
                false => cuda_op(&s.kernel, plan.values[s.output].len, choice.precision).map_err(
                    |error| Error::CudaUnsupported {
                        node: s.name.clone(),
                        error: Box::new(error),
                    },
                ),
            })
            .collect::<Result<Vec<_>, Error>>()?;
    let mut cuda = CudaPlan {
        ops,
        values: plan.values.clone(),
        arena_len: plan.arena_len,
    };
    if choice.fuse {
        fusion::fuse(plan, &mut cuda, choice.precision);
    }
    Ok(cuda)
}

/// A CUDA graph replayed by one session at a time.
struct Graph(cudarc::driver::CudaGraph);

// SAFETY: the graph is created, launched and destroyed only through `&mut CudaExecutor`
// (a session runs on one thread at a time), so no two threads ever touch it at once;
// CUDA objects are not tied to the thread that made them.
unsafe impl Send for Graph {}

/// One kernel launch, resolved: its loaded function and its arguments' device addresses.
struct Call {
    function: CudaKernelFn,
    launch: Launch,
    ptrs: Vec<u64>,
}

/// Where a graph input or output sits in the arena and in its pinned staging buffer.
struct Transfer {
    device: u64,
    staged_at: usize,
    len: usize,
}

pub(crate) struct CudaExecutor {
    // Fields drop in order: the graph before the buffers it points into. Always Some
    // once `new` returns.
    graph: Option<Graph>,
    /// Each step's calls, for the eager per-layer run of `compare --per-layer`.
    steps: Vec<Vec<Call>>,
    inputs: Vec<Transfer>,
    outputs: Vec<Transfer>,
    input_stage: Pinned,
    output_stage: Pinned,
    _consts: Vec<cudarc::driver::CudaSlice<f32>>,
    arena: cudarc::driver::CudaSlice<f32>,
    /// Where each value of the plan lives in `arena` (`CudaPlan::values`).
    values: Vec<Slot>,
    gpu: Gpu,
    precision: Precision,
    /// The device, driver and NVRTC the kernels were compiled with and run on.
    info: CudaInfo,
}

impl CudaExecutor {
    pub(crate) fn new(
        plan: &Plan,
        ordinal: usize,
        cache_dir: Option<PathBuf>,
        choice: OpChoice,
    ) -> Result<CudaExecutor, Error> {
        let gpu = Gpu::new(ordinal)?;
        let compiler = Compiler::new(gpu.arch(), cache_dir)?;
        // Before compiling anything: a driver older than NVRTC would refuse every module.
        gpu.check(&compiler)?;
        let cuda = cuda_plan(plan, choice)?;
        compiler.precompile(cuda.ops.iter().flat_map(|op| &op.launches))?;
        let arena = gpu.alloc_zeros(cuda.arena_len.max(1))?;
        let base = gpu.device_ptr(&arena);
        let addr = |slot: &Slot| slot_address(base, slot);
        let mut consts = Vec::new();
        let mut steps = Vec::with_capacity(plan.steps.len());
        for (step, op) in plan.steps.iter().zip(cuda.ops) {
            let uploaded: Vec<u64> = op
                .consts
                .iter()
                .map(|c| {
                    let buf = gpu.upload(c)?;
                    let ptr = gpu.device_ptr(&buf);
                    consts.push(buf);
                    Ok(ptr)
                })
                .collect::<Result<_, CudaError>>()?;
            let mut calls = Vec::with_capacity(op.launches.len());
            for launch in op.launches {
                let function = gpu.load(&*compiler.module(&launch)?, &launch)?;
                let ptrs = launch
                    .args
                    .iter()
                    .map(|a| arg_address(a, step, &cuda.values, &uploaded, &addr))
                    .collect();
                calls.push(Call {
                    function,
                    launch,
                    ptrs,
                });
            }
            steps.push(calls);
        }
        let transfers = |values: &mut dyn Iterator<Item = usize>| {
            let mut at = 0;
            values
                .map(|v| {
                    let slot = &cuda.values[v];
                    let t = Transfer {
                        device: addr(slot),
                        staged_at: at,
                        len: slot.len,
                    };
                    at += slot.len;
                    t
                })
                .collect::<Vec<_>>()
        };
        let inputs = transfers(&mut (0..plan.inputs));
        let outputs = transfers(&mut plan.outputs.iter().copied());
        let staged = |t: &[Transfer]| t.iter().map(|t| t.len).sum::<usize>().max(1);
        // Inputs are only written by the CPU: write-combined memory suits that. Outputs
        // are read by the CPU, which write-combined memory makes very slow (docs/cuda.md).
        let input_stage = gpu.alloc_pinned(staged(&inputs), true)?;
        let output_stage = gpu.alloc_pinned(staged(&outputs), false)?;
        let info = CudaInfo {
            device: gpu.name().to_string(),
            arch: gpu.arch().to_string(),
            driver: gpu.driver_version(),
            nvrtc: compiler.nvrtc().version,
            nvrtc_library: compiler.nvrtc().library.clone(),
            image: compiler.target().kind.as_str(),
        };
        let mut exec = CudaExecutor {
            graph: None,
            steps,
            inputs,
            outputs,
            input_stage,
            output_stage,
            _consts: consts,
            arena,
            values: cuda.values,
            gpu,
            precision: choice.precision,
            info,
        };
        exec.validate(plan)?;
        exec.graph = Some(Graph(exec.capture()?));
        Ok(exec)
    }

    /// Runs every step once, eagerly and in order, waiting after each launch: the first
    /// run of each kernel happens here, where a failure names its node, step, kernel and
    /// launch geometry, and not inside the graph, where it would surface as a bare error
    /// at the end of the first replay. Once per session build, on the zeroed inputs.
    fn validate(&mut self, plan: &Plan) -> Result<(), Error> {
        self.copy_inputs_in()?;
        for (index, step) in plan.steps.iter().enumerate() {
            self.run_step_checked(step, index)?;
        }
        Ok(())
    }

    /// Step `index`'s launches, each waited for: a failure names the step's node.
    fn run_step_checked(&self, step: &Step, index: usize) -> Result<(), Error> {
        for call in &self.steps[index] {
            let failed = |error| step_error(&step.name, index, &call.launch, error);
            self.gpu
                .launch(&call.function, &call.launch, &call.ptrs)
                .map_err(failed)?;
            self.gpu.synchronize().map_err(failed)?;
        }
        Ok(())
    }

    /// Records one whole run (copies in, every kernel, copies out) as a CUDA graph.
    fn capture(&mut self) -> Result<cudarc::driver::CudaGraph, CudaError> {
        use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
        let stream = self.gpu.stream().clone();
        let driver = |what: &'static str| move |e| driver_error(what, e);
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(driver("begin graph capture"))?;
        let recorded = self.enqueue_run();
        // End the capture even when recording failed, so the stream is usable again; a
        // failed launch invalidates the capture, and its own error (naming the kernel)
        // says more than end_capture's, so it comes first.
        let ended = stream.end_capture(CUgraphInstantiate_flags(0));
        recorded?;
        let graph = ended.map_err(driver("end graph capture"))?;
        let graph = graph.ok_or_else(|| CudaError::Driver {
            what: "graph capture".into(),
            detail: "captured an empty graph".into(),
        })?;
        graph.upload().map_err(driver("upload the graph"))?;
        Ok(graph)
    }

    /// Enqueues one run on the session's stream (captured into the graph).
    fn enqueue_run(&mut self) -> Result<(), CudaError> {
        self.copy_inputs_in()?;
        for call in self.steps.iter().flatten() {
            self.gpu.launch(&call.function, &call.launch, &call.ptrs)?;
        }
        self.copy_outputs_out()
    }

    fn copy_inputs_in(&mut self) -> Result<(), CudaError> {
        let stage = self.input_stage.as_slice();
        for t in &self.inputs {
            self.gpu
                .copy_in(t.device, &stage[t.staged_at..t.staged_at + t.len])?;
        }
        Ok(())
    }

    fn copy_outputs_out(&mut self) -> Result<(), CudaError> {
        let stage = self.output_stage.as_mut_slice();
        for t in &self.outputs {
            self.gpu
                .copy_out(&mut stage[t.staged_at..t.staged_at + t.len], t.device)?;
        }
        Ok(())
    }

    /// Copies the caller's inputs into the pinned buffer the captured copies read.
    fn stage_inputs(&mut self, inputs: &dyn Inputs) {
        let stage = self.input_stage.as_mut_slice();
        for (i, t) in self.inputs.iter().enumerate() {
            stage[t.staged_at..t.staged_at + t.len].copy_from_slice(inputs.data(i));
        }
    }
}

impl Executor for CudaExecutor {
    /// Stages the inputs, replays the graph, waits for the outputs.
    fn run(&mut self, _plan: &Plan, inputs: &dyn Inputs) -> Result<(), Error> {
        self.stage_inputs(inputs);
        let Some(graph) = &self.graph else {
            return Err(Error::Cuda(CudaError::Driver {
                what: "launch the session's graph".into(),
                detail: "the session has no graph".into(),
            }));
        };
        graph
            .0
            .launch()
            .map_err(|e| driver_error("launch the session's graph", e))?;
        self.gpu.synchronize()?;
        Ok(())
    }

    /// Step by step, outside the graph, each step's output copied back for `tap`: what
    /// `compare --per-layer` checks. Slow (a copy back per step), and allocates.
    fn run_with(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) -> Result<(), Error> {
        self.stage_inputs(inputs);
        self.copy_inputs_in()?;
        let base = self.gpu.device_ptr(&self.arena);
        let mut host = Vec::new();
        for (index, step) in plan.steps.iter().enumerate() {
            self.run_step_checked(step, index)?;
            let slot = &self.values[step.output];
            host.resize(slot.len, 0.0);
            self.gpu
                .copy_out_sync(&mut host, slot_address(base, slot))?;
            tap(&step.name, slot, &host);
        }
        self.copy_outputs_out()?;
        self.gpu.synchronize()?;
        Ok(())
    }

    fn output(&self, _plan: &Plan, index: usize) -> &[f32] {
        let t = &self.outputs[index];
        &self.output_stage.as_slice()[t.staged_at..t.staged_at + t.len]
    }

    /// The GPU's own time per step (`profile.rs`).
    fn profile(
        &mut self,
        _plan: &Plan,
        inputs: &dyn Inputs,
        runs: usize,
    ) -> Result<(Vec<f64>, Option<usize>), Error> {
        let p = self.profile_steps(inputs, runs)?;
        Ok((p.seconds, Some(p.queued_ahead)))
    }

    fn kernels_name(&self) -> &str {
        self.gpu.name()
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    /// The host thread that launches the graph.
    fn threads(&self) -> usize {
        1
    }

    /// The device arena: the plan's, and what fusions moved past it.
    fn arena_len(&self) -> usize {
        self.arena.len()
    }

    /// The kernel launches in the session's graph.
    fn kernel_count(&self, _plan: &Plan) -> usize {
        self.steps.iter().map(Vec::len).sum()
    }

    fn cuda_info(&self) -> Option<CudaInfo> {
        Some(self.info.clone())
    }
}

/// A kernel of step `index` (node `node`) failed: the error names all four.
fn step_error(node: &str, index: usize, launch: &Launch, error: CudaError) -> Error {
    Error::CudaStep {
        node: node.to_string(),
        step: index,
        kernel: format!(
            "{} ({}, {})",
            launch.entry,
            launch.source.name,
            geometry(launch)
        ),
        error: Box::new(error),
    }
}

/// The device address of `slot` in the arena starting at `base`.
fn slot_address(base: u64, slot: &Slot) -> u64 {
    base + (slot.offset * size_of::<f32>()) as u64
}

/// The device address an argument role stands for in `step`, the plan's values laid
/// out as `values` says.
pub(crate) fn arg_address(
    arg: &Arg,
    step: &Step,
    values: &[Slot],
    consts: &[u64],
    addr: &dyn Fn(&Slot) -> u64,
) -> u64 {
    match *arg {
        Arg::Input(i) => addr(&values[step.inputs[i]]),
        Arg::Output => addr(&values[step.output]),
        Arg::Value(v) => addr(&values[v]),
        Arg::Const(i) => consts[i],
    }
}
