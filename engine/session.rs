//! Sessions: a model prepared for one device and one batch size, ready to run repeatedly.

use crate::error::Error;
use crate::exec::cuda::{CudaExecutor, OpChoice};
use crate::exec::{images_per_pass, Backend, CpuExecutor, Executor, Named, Passes};
use crate::graph::Graph;
use crate::passes;
use crate::plan::{plan, Plan, Slot, Step};
use crate::tensor::TensorView;
use kestrel_kernels::{Isa, Precision};
use std::path::PathBuf;

/// Where a session runs. Non-exhaustive: devices may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Device {
    /// The CPU, with Kestrel's SIMD kernels (the default).
    #[default]
    Cpu,
    /// The NVIDIA GPU of this ordinal, running Kestrel's own CUDA kernels.
    Cuda(usize),
    /// For tests (the `testing` feature): the CUDA executor's plan, with the arena layout
    /// and launches a GPU session would run, on a CPU emulator of CUDA launches. Needs
    /// g++ at run time; a run takes seconds.
    #[cfg(feature = "testing")]
    CudaEmulated,
}

/// "cpu", "cuda" (GPU 0) or "cuda:N", as the command line takes them (and "cuda-emu"
/// with the `testing` feature).
impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            #[cfg(feature = "testing")]
            "cuda-emu" => Ok(Device::CudaEmulated),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device \"{s}\" (cpu, cuda or cuda:N)")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(0) => write!(f, "cuda"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            #[cfg(feature = "testing")]
            Device::CudaEmulated => write!(f, "cuda-emu"),
        }
    }
}

/// How to build a session: `SessionOptions::default()` (CPU, batch 1, one thread, the
/// graph passes on, the best kernels, fp32), then the `with_*` setters. Non-exhaustive, so
/// that new options do not break callers: build it from `default()`, not a struct literal.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Where the session runs.
    pub device: Device,
    /// The batch size every run of the session takes.
    pub batch: usize,
    /// Run the graph passes (batch-norm folding, identity removal, fusion). Turn off to
    /// compute every node of the file on its own, to check each one against PyTorch.
    pub optimize: bool,
    /// Threads one run may use. They come from one process-wide pool with a thread per
    /// core, so sessions that share a machine do not oversubscribe it.
    pub threads: usize,
    /// Which CPU kernels run the session.
    pub kernels: Kernels,
    /// Where compiled CUDA kernels are kept between processes; None: `$KESTREL_CUDA_CACHE`,
    /// else the user's cache directory (`~/.cache/kestrel/cuda`).
    pub cuda_cache: Option<PathBuf>,
    /// The arithmetic of the convolutions on CUDA: fp32, or tf32/fp16 on tensor cores with
    /// fp32 accumulation (inputs and outputs stay f32). The CPU runs fp32 only.
    pub precision: Precision,
    /// On the CPU, images per pass: a batch runs as passes of this many images through
    /// the whole network, each pass's activations staying in the caches (a divisor of
    /// `batch`). None: chosen from the model (`Session::images_per_pass` says what).
    pub micro_batch: Option<usize>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl SessionOptions {
            $($(#[$doc])* pub fn $name(mut self, value: $ty) -> SessionOptions {
                self.$field = value;
                self
            })*
        }
    };
}

setters! {
    /// Where the session runs.
    with_device: device: Device;
    /// The batch size every run takes.
    with_batch: batch: usize;
    /// Whether the graph passes run.
    with_optimize: optimize: bool;
    /// Threads one run may use.
    with_threads: threads: usize;
    /// Which CPU kernels run the session.
    with_kernels: kernels: Kernels;
    /// Where compiled CUDA kernels are kept.
    with_cuda_cache: cuda_cache: Option<PathBuf>;
    /// The convolutions' arithmetic on CUDA.
    with_precision: precision: Precision;
    /// On the CPU, images per pass (None: chosen from the model).
    with_micro_batch: micro_batch: Option<usize>;
}

/// The CPU kernels a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The fastest this CPU has, capped by `KESTREL_ISA=avx512|avx2|scalar` when set.
    #[default]
    Auto,
    /// The SIMD kernels for one instruction set (an error if this CPU lacks it).
    Isa(Isa),
    /// The reference kernels: plain loops with f64 sums, the test oracle.
    Reference,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            device: Device::Cpu,
            batch: 1,
            optimize: true,
            threads: 1,
            kernels: Kernels::Auto,
            cuda_cache: None,
            precision: Precision::Fp32,
            micro_batch: None,
        }
    }
}

/// A model prepared to run: every shape inferred, every kernel chosen, every buffer placed
/// in one arena. `run` allocates nothing. A session is `Send`: move it to the thread that
/// runs it; share the `Model` instead, and give each thread its own session.
pub struct Session {
    executor: Box<dyn Executor>,
    plan: Plan,
    input_names: Vec<String>,
    output_names: Vec<String>,
}

impl Session {
    pub(crate) fn new(graph: &Graph, opts: &SessionOptions) -> Result<Session, Error> {
        let mut plan = session_plan(graph, opts)?;
        if opts.micro_batch.is_some() && opts.device != Device::Cpu {
            return Err(Error::BadOption {
                option: "micro_batch",
                detail: format!("runs on the CPU only, not on {}", opts.device),
            });
        }
        let executor: Box<dyn Executor> = match opts.device {
            Device::Cpu if opts.precision != Precision::Fp32 => {
                return Err(Error::BadOption {
                    option: "precision",
                    detail: format!(
                        "{} runs on CUDA only: the CPU kernels compute in fp32",
                        opts.precision
                    ),
                })
            }
            Device::Cpu => cpu_executor(graph, &mut plan, opts)?,
            Device::Cuda(ordinal) => {
                let cuda = CudaExecutor::new(&plan, ordinal, cuda_cache(opts), OpChoice::of(opts))?;
                // Uploaded: the device holds its own copy of every constant.
                plan.steps.iter_mut().for_each(|s| {
                    s.kernel.release_packed_weights();
                });
                Box::new(cuda)
            }
            #[cfg(feature = "testing")]
            Device::CudaEmulated => Box::new(crate::exec::cuda::EmuExecutor::new(
                &plan,
                OpChoice::of(opts),
            )?),
        };
        Ok(Session {
            executor,
            input_names: graph.inputs.iter().map(|i| i.name.clone()).collect(),
            output_names: graph
                .outputs
                .iter()
                .map(|&v| graph.value_name(v).to_string())
                .collect(),
            plan,
        })
    }

    /// Runs the model on `inputs` (one slice per graph input, NCHW, batch first) and
    /// returns views of the outputs, valid until the next run.
    pub fn run(&mut self, inputs: &[&[f32]]) -> Result<Outputs<'_>, Error> {
        self.check_inputs(inputs)?;
        self.executor.run(&self.plan, &inputs)?;
        Ok(Outputs { session: self })
    }

    /// Runs the model on inputs that carry their shapes, one per graph input in
    /// [`Session::input_names`] order: each shape must be the session's
    /// ([`Session::input_shape`]), or the error names the input and both shapes. Like
    /// `run`, allocates nothing.
    pub fn run_tensors(&mut self, inputs: &[TensorView<'_>]) -> Result<Outputs<'_>, Error> {
        self.check_count(inputs.len())?;
        for (i, input) in inputs.iter().enumerate() {
            self.check_view(i, input)?;
        }
        self.executor.run(&self.plan, &inputs)?;
        Ok(Outputs { session: self })
    }

    /// Runs the model on inputs given by name, in any order, each carrying its shape, as
    /// ONNX Runtime's `run` takes them: every input of the model exactly once. An unknown
    /// name, an input missing or given twice, or a wrong shape is an error naming the
    /// input. Allocates nothing.
    pub fn run_named(&mut self, inputs: &[(&str, TensorView<'_>)]) -> Result<Outputs<'_>, Error> {
        if let Some((name, _)) = inputs.iter().find(|(n, _)| self.input_index(n).is_none()) {
            return Err(Error::Input {
                name: name.to_string(),
                detail: format!(
                    "the model has no such input (its inputs: {})",
                    self.input_names.join(", ")
                ),
            });
        }
        for (i, want) in self.input_names.iter().enumerate() {
            let mut given = inputs.iter().filter(|(n, _)| n == want);
            let (Some((_, view)), None) = (given.next(), given.next()) else {
                let times = inputs.iter().filter(|(n, _)| n == want).count();
                return Err(Error::Input {
                    name: want.clone(),
                    detail: match times {
                        0 => "not given".into(),
                        n => format!("given {n} times"),
                    },
                });
            };
            self.check_view(i, view)?;
        }
        let named = Named {
            names: &self.input_names,
            inputs,
        };
        self.executor.run(&self.plan, &named)?;
        Ok(Outputs { session: self })
    }

    /// Input `i` as a shaped view: its shape must be the session's, its data that long.
    fn check_view(&self, i: usize, input: &TensorView<'_>) -> Result<(), Error> {
        let expected = &self.plan.values[i].shape;
        let detail = if input.shape != &expected[..] {
            format!("expected shape {expected:?}, got {:?}", input.shape)
        } else if input.data.len() != self.plan.values[i].len {
            format!(
                "shape {:?} holds {} values, the data has {}",
                input.shape,
                self.plan.values[i].len,
                input.data.len()
            )
        } else {
            return Ok(());
        };
        Err(Error::Input {
            name: self.input_names[i].clone(),
            detail,
        })
    }

    /// Runs the model `runs` times on zeros and discards the outputs: faults in the
    /// arena's pages, fills the caches with the weights, wakes the worker pool, and on
    /// CUDA has the driver load every kernel (it loads them lazily, on first launch), so
    /// that the first real run is as fast as the rest. Allocates one zero input.
    pub fn warm_up(&mut self, runs: usize) -> Result<(), Error> {
        let zeros: Vec<Vec<f32>> = (0..self.input_names.len())
            .map(|i| vec![0.0; self.plan.values[i].len])
            .collect();
        let inputs: Vec<&[f32]> = zeros.iter().map(Vec::as_slice).collect();
        for _ in 0..runs {
            self.run(&inputs)?;
        }
        Ok(())
    }

    /// Like `run`, and calls `tap` with each node's name and output as soon as it is
    /// computed: how `compare --per-layer` checks every layer. On CUDA this runs the
    /// kernels one step at a time outside the session's graph, copying each output back.
    pub fn run_with(
        &mut self,
        inputs: &[&[f32]],
        mut tap: impl FnMut(&str, TensorView<'_>),
    ) -> Result<Outputs<'_>, Error> {
        self.check_inputs(inputs)?;
        let mut show = |name: &str, slot: &Slot, data: &[f32]| {
            tap(
                name,
                TensorView {
                    shape: &slot.shape,
                    data,
                },
            )
        };
        self.executor.run_with(&self.plan, &inputs, &mut show)?;
        Ok(Outputs { session: self })
    }

    fn check_count(&self, count: usize) -> Result<(), Error> {
        match count == self.input_names.len() {
            true => Ok(()),
            false => Err(Error::Input {
                name: self.input_names.join(", "),
                detail: format!(
                    "the model takes {} input(s), got {count}",
                    self.input_names.len()
                ),
            }),
        }
    }

    fn check_inputs(&self, inputs: &[&[f32]]) -> Result<(), Error> {
        self.check_count(inputs.len())?;
        for (i, data) in inputs.iter().enumerate() {
            let slot = &self.plan.values[i];
            if data.len() != slot.len {
                return Err(Error::Input {
                    name: self.input_names[i].clone(),
                    detail: format!(
                        "expected {} values (shape {:?}), got {}",
                        slot.len,
                        slot.shape,
                        data.len()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The shape (batch first) input `index` must have; None past the last input.
    pub fn input_shape(&self, index: usize) -> Option<&[usize]> {
        // The plan's first values are the inputs; the ones after are nodes' outputs.
        (index < self.input_names.len()).then(|| &self.plan.values[index].shape[..])
    }

    /// The shape (batch first) of output `index` of every run; None past the last output.
    pub fn output_shape(&self, index: usize) -> Option<&[usize]> {
        let value = *self.plan.outputs.get(index)?;
        Some(&self.plan.values[value].shape[..])
    }

    /// The names of the graph's inputs, in the order `run` takes them.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// The position of the input named `name` in the order `run` takes them, or None.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.input_names.iter().position(|n| n == name)
    }

    /// The names of the graph's outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// The kernels the session runs: `reference`, or the SIMD instruction set.
    /// On CUDA, the GPU's name.
    pub fn kernels_name(&self) -> &str {
        self.executor.kernels_name()
    }

    /// On CUDA, the device, driver and NVRTC the session runs on; None on the CPU.
    pub fn cuda_info(&self) -> Option<crate::CudaInfo> {
        self.executor.cuda_info()
    }

    /// The arithmetic of the session's convolutions.
    pub fn precision(&self) -> Precision {
        self.executor.precision()
    }

    /// Images per pass of the network: the batch, or on the CPU fewer, run in turn
    /// (`SessionOptions::micro_batch`).
    pub fn images_per_pass(&self) -> usize {
        self.executor
            .images_per_pass()
            .unwrap_or(self.plan.values[0].shape[0])
    }

    /// CPU threads a run uses (1 on CUDA: the host thread that launches the graph).
    pub fn threads(&self) -> usize {
        self.executor.threads()
    }

    /// Size of the session's activation arena in bytes (on the device, for CUDA).
    pub fn arena_bytes(&self) -> usize {
        // On CUDA, fusions may move a value past the plan's arena (exec/cuda/fusion.rs).
        self.executor.arena_len() * std::mem::size_of::<f32>()
    }

    /// Every step of one run, in order: the name its output is reported under (the last
    /// node fused into it), what it computes, its FLOPs and the bytes it moves.
    pub fn steps(&self) -> Vec<StepInfo> {
        self.plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepInfo {
                name: s.name.clone(),
                kernel: s.kernel.label(),
                algorithm: self.executor.algorithm(i),
                flops: s.kernel.flops(self.plan.values[s.output].len),
                moves_data: !crate::plan::moves_no_data(s),
                bytes: step_bytes(&self.plan, s),
            })
            .collect()
    }

    /// Number of kernel calls one run makes: aliases and concats assembled in place by
    /// their producers move no data and are not counted. On CUDA, the kernel launches
    /// in the session's graph.
    pub fn kernel_count(&self) -> usize {
        self.executor.kernel_count(&self.plan)
    }

    /// Output `index` of the last run.
    fn output(&self, index: usize) -> TensorView<'_> {
        let slot = &self.plan.values[self.plan.outputs[index]];
        let data = self.executor.output(&self.plan, index);
        TensorView {
            shape: &slot.shape,
            data,
        }
    }
}

/// The plan a session of `graph` runs: the graph passes when asked for, then shapes,
/// kernels and the arena at the session's batch.
pub(crate) fn session_plan(graph: &Graph, opts: &SessionOptions) -> Result<Plan, Error> {
    if opts.threads == 0 {
        return Err(Error::BadOption {
            option: "threads",
            detail: "must be at least 1".into(),
        });
    }
    let mut graph = graph.clone();
    if opts.optimize {
        passes::optimize(&mut graph, opts.device == Device::Cpu);
    }
    plan(&graph, opts.batch, opts.optimize)
}

/// The CPU executor for `plan` (at the session's batch): one run of the plan, or passes of
/// fewer images through a plan of their own (`exec/passes.rs`).
fn cpu_executor(
    graph: &Graph,
    plan: &mut Plan,
    opts: &SessionOptions,
) -> Result<Box<dyn Executor>, Error> {
    let backend = Backend::resolve(opts.kernels)?;
    let batch = opts.batch;
    if let Some(per) = opts
        .micro_batch
        .filter(|&m| m == 0 || !batch.is_multiple_of(m))
    {
        return Err(Error::BadOption {
            option: "micro_batch",
            detail: format!("{per} images per pass does not divide the batch of {batch}"),
        });
    }
    let forced = match backend {
        Backend::Simd(_) => opts.micro_batch,
        // The oracle runs the batch whole unless told otherwise.
        Backend::Reference => opts.micro_batch.or(Some(batch)),
    };
    let per = images_per_pass(plan, opts.threads, forced);
    if per == batch {
        return Ok(Box::new(CpuExecutor::new(plan, backend, opts.threads)?));
    }
    let mut part = session_plan(graph, &opts.clone().with_batch(per))?;
    if !part
        .steps
        .iter()
        .map(|s| &s.name)
        .eq(plan.steps.iter().map(|s| &s.name))
    {
        // Not the same steps at both batches (never seen): run the batch whole.
        return Ok(Box::new(CpuExecutor::new(plan, backend, opts.threads)?));
    }
    let inner = CpuExecutor::new(&mut part, backend, opts.threads)?;
    // The passes' plan holds the weights; the session's keeps shapes and steps.
    plan.steps.iter_mut().for_each(|s| {
        s.kernel.release_packed_weights();
    });
    Ok(Box::new(Passes::new(inner, part, plan, batch / per)?))
}

/// The CUDA module cache directory a session with `opts` uses.
pub(crate) fn cuda_cache(opts: &SessionOptions) -> Option<PathBuf> {
    opts.cuda_cache
        .clone()
        .or_else(kestrel_kernels::cuda::compile::default_cache_dir)
}

/// One step of a session's plan, for tables such as `bench --per-layer`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    /// The node the step runs.
    pub name: String,
    /// The kernel that runs it.
    pub kernel: String,
    /// The algorithm the executor chose for it, where it chose one: on the CPU, each
    /// conv's (`gemm1x1`, `im2col-gemm`, `winograd4x4`, `winograd2x2`, `direct`,
    /// `depthwise`, `gemv`).
    pub algorithm: Option<&'static str>,
    /// Floating-point operations per run (2 × multiply-adds).
    pub flops: u64,
    /// False for aliases and concats assembled in place, which cost nothing.
    pub moves_data: bool,
    /// Bytes the step must read and write at the least: each input and the output once,
    /// and its weights (see `Kernel::weight_len`), as f32. 0 when it moves no data.
    pub bytes: u64,
}

/// The outputs of one run, in the graph's output order.
pub struct Outputs<'a> {
    session: &'a Session,
}

impl<'a> Outputs<'a> {
    /// The number of outputs.
    pub fn len(&self) -> usize {
        self.session.plan.outputs.len()
    }

    /// Whether the graph has no output (never, for a validated graph).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Output `index`, or None past the last.
    pub fn get(&self, index: usize) -> Option<TensorView<'a>> {
        (index < self.len()).then(|| self.session.output(index))
    }

    /// Every output, in order.
    pub fn iter(&self) -> impl Iterator<Item = TensorView<'a>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The output named `name` (one of [`Session::output_names`]), or None.
    pub fn by_name(&self, name: &str) -> Option<TensorView<'a>> {
        let index = self.session.output_names.iter().position(|n| n == name)?;
        self.get(index)
    }
}

/// The least a step moves: each input and its output once, and its constants, in bytes.
fn step_bytes(plan: &Plan, step: &Step) -> u64 {
    if crate::plan::moves_no_data(step) {
        return 0;
    }
    let activations: usize = step.inputs.iter().map(|&v| plan.values[v].len).sum();
    let floats = activations + plan.values[step.output].len + step.kernel.weight_len();
    (floats * std::mem::size_of::<f32>()) as u64
}

/// Time per step, from [`Session::profile_steps`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepTimes {
    /// Mean seconds per step in [`Session::steps`] order; 0 for steps that move no data.
    pub seconds: Vec<f64>,
    /// Runs timed.
    pub runs: usize,
    /// On CUDA, the timed runs the host had queued whole before the GPU started them: their
    /// times hold no host launch cost. Equals `runs` unless one run takes the host over
    /// ~10 ms to queue. None on the CPU.
    pub queued_ahead: Option<usize>,
}

impl Session {
    /// Times each step over `runs` runs (at least one) on `inputs`: where a run's time
    /// goes. On the CPU, the wall time from one step's end to the next's, as `run_with`'s
    /// taps see it. On CUDA, the GPU's own time: each run launches the steps eagerly
    /// (outside the session's graph) with a CUDA event after each step's launches, all
    /// queued behind a hold kernel before the GPU starts them, so no host launch cost and
    /// no copy is in the times (see `kestrel_kernels::cuda::device::Timer`); it copies no
    /// output back. Like `run`, overwrites the last run's outputs on the CPU.
    pub fn profile_steps(&mut self, inputs: &[&[f32]], runs: usize) -> Result<StepTimes, Error> {
        self.check_inputs(inputs)?;
        let runs = runs.max(1);
        let (seconds, queued_ahead) = self.executor.profile(&self.plan, &inputs, runs)?;
        let mut times = StepTimes {
            seconds,
            runs,
            queued_ahead,
        };
        // A step with nothing to compute costs nothing; on the CPU its tap saw only the
        // time of the tap before it.
        for (t, s) in times.seconds.iter_mut().zip(&self.plan.steps) {
            if crate::plan::moves_no_data(s) {
                *t = 0.0;
            }
        }
        Ok(times)
    }
}
