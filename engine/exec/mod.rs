//! The CPU executor: runs a plan's steps in order over one arena, with the kernels the
//! session was built for.

pub(crate) mod cuda;
mod passes;
mod reference;
mod simd;

pub(crate) use passes::{images_per_pass, Passes};

use crate::error::Error;
use crate::lower::Kernel;
use crate::plan::{moves_no_data, Plan, Slot, Step};
use crate::session::Kernels;
use kestrel_kernels::{Isa, Precision};

/// The kernel family a session was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Reference,
    Simd(Isa),
}

impl Backend {
    pub(crate) fn resolve(kernels: Kernels) -> Result<Backend, Error> {
        match kernels {
            Kernels::Reference => Ok(Backend::Reference),
            Kernels::Isa(isa) if isa.is_supported() => Ok(Backend::Simd(isa)),
            Kernels::Isa(isa) => Err(Error::BadOption {
                option: "kernels",
                detail: format!("this CPU does not support {isa}"),
            }),
            Kernels::Auto => {
                Isa::from_env()
                    .map(Backend::Simd)
                    .map_err(|detail| Error::BadOption {
                        option: "kernels",
                        detail,
                    })
            }
        }
    }
}

/// The caller's inputs, one per graph input, as the executors read them: plain slices
/// (`Session::run`) or shaped views (`Session::run_tensors`), already checked.
pub(crate) trait Inputs {
    /// Input `i`'s values.
    fn data(&self, i: usize) -> &[f32];
}

impl Inputs for &[&[f32]] {
    fn data(&self, i: usize) -> &[f32] {
        self[i]
    }
}

impl Inputs for &[crate::TensorView<'_>] {
    fn data(&self, i: usize) -> &[f32] {
        self[i].data
    }
}

/// Inputs given by name (`Session::run_named`), already checked: each of `names` is
/// given once.
pub(crate) struct Named<'a, 'b> {
    pub names: &'a [String],
    pub inputs: &'a [(&'b str, crate::TensorView<'b>)],
}

impl Inputs for Named<'_, '_> {
    fn data(&self, i: usize) -> &[f32] {
        let given = self.inputs.iter().find(|(name, _)| *name == self.names[i]);
        given.map_or(&[], |(_, view)| view.data)
    }
}

/// What runs a session's plan on one device: the CPU executor or the CUDA one. Each owns
/// its buffers (the arena, input and output staging), so a session checks the inputs and
/// delegates everything else.
pub(crate) trait Executor: Send {
    /// One run of `plan` on the (checked) `inputs`; the outputs stay readable through
    /// [`Executor::output`] until the next run.
    fn run(&mut self, plan: &Plan, inputs: &dyn Inputs) -> Result<(), Error>;

    /// One run that shows `tap` each step's name and output as soon as it is computed.
    fn run_with(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) -> Result<(), Error>;

    /// Output `index` of the last run.
    fn output(&self, plan: &Plan, index: usize) -> &[f32];

    /// Mean seconds per step over `runs` runs (at least one), in plan order, and on CUDA
    /// how many runs the host had queued whole before the GPU started them.
    fn profile(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        runs: usize,
    ) -> Result<(Vec<f64>, Option<usize>), Error>;

    /// `reference`, the SIMD instruction set, or the GPU's name.
    fn kernels_name(&self) -> &str;

    /// The algorithm step `step` runs where the executor chose one (the CPU's convs:
    /// `CpuConv::name`), else None.
    fn algorithm(&self, _step: usize) -> Option<&'static str> {
        None
    }

    /// The arithmetic of the convolutions.
    fn precision(&self) -> Precision {
        Precision::Fp32
    }

    /// CPU threads a run uses.
    fn threads(&self) -> usize;

    /// Floats in the activation arena.
    fn arena_len(&self) -> usize;

    /// Kernel calls one run makes: by default the steps that move data.
    fn kernel_count(&self, plan: &Plan) -> usize {
        plan.steps.iter().filter(|s| !moves_no_data(s)).count()
    }

    /// The device, driver and NVRTC of a CUDA executor.
    fn cuda_info(&self) -> Option<crate::CudaInfo> {
        None
    }

    /// Images per pass where a run is several passes of a smaller plan (`Passes`).
    fn images_per_pass(&self) -> Option<usize> {
        None
    }
}

/// Runs a plan on the CPU: the backend, its per-step prepared kernels (packed weights),
/// the scratch they share and the activation arena, all made when the session is built.
pub(crate) struct CpuExecutor {
    backend: Backend,
    threads: usize,
    prepared: Vec<simd::Prepared>,
    scratch: Vec<f32>,
    arena: Vec<f32>,
    /// Where `run_with` shows a value stored as bytes (an int8 op's `bytes_out`) as f32:
    /// as long as the longest such value, empty where there is none.
    decoded: Vec<f32>,
}

impl Executor for CpuExecutor {
    fn run(&mut self, plan: &Plan, inputs: &dyn Inputs) -> Result<(), Error> {
        let _flush = kestrel_kernels::subnormals::FlushSubnormals::new();
        self.load_inputs(plan, inputs);
        self.execute(plan, &mut |_, _, _| {}, false);
        Ok(())
    }

    fn run_with(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) -> Result<(), Error> {
        // The caller's floating-point mode comes back when the guard drops.
        let _flush = kestrel_kernels::subnormals::FlushSubnormals::new();
        self.load_inputs(plan, inputs);
        self.execute(plan, tap, true);
        Ok(())
    }

    fn output(&self, plan: &Plan, index: usize) -> &[f32] {
        let slot = &plan.values[plan.outputs[index]];
        &self.arena[slot.offset..slot.offset + slot.len]
    }

    /// The wall time from one step's end to the next's, as `run_with`'s taps see it.
    fn profile(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        runs: usize,
    ) -> Result<(Vec<f64>, Option<usize>), Error> {
        let runs = runs.max(1);
        let mut seconds = vec![0.0; plan.steps.len()];
        for _ in 0..runs {
            let (mut k, mut last) = (0, std::time::Instant::now());
            let _flush = kestrel_kernels::subnormals::FlushSubnormals::new();
            self.load_inputs(plan, inputs);
            // No byte values decoded: the times are a run's.
            let mut time = |_: &str, _: &Slot, _: &[f32]| {
                let now = std::time::Instant::now();
                seconds[k] += (now - last).as_secs_f64();
                (k, last) = (k + 1, now);
            };
            self.execute(plan, &mut time, false);
        }
        seconds.iter_mut().for_each(|t| *t /= runs as f64);
        Ok((seconds, None))
    }

    fn algorithm(&self, step: usize) -> Option<&'static str> {
        self.prepared.get(step).and_then(simd::Prepared::algorithm)
    }

    fn kernels_name(&self) -> &str {
        match self.backend {
            Backend::Reference => "reference",
            Backend::Simd(isa) => isa.name(),
        }
    }

    fn threads(&self) -> usize {
        self.threads
    }

    fn arena_len(&self) -> usize {
        self.arena.len()
    }
}

impl CpuExecutor {
    /// Prepares every step of `plan` for `backend`. The SIMD kernels pack their weights
    /// into buffers of their own, step by step, and each step's weights are released from
    /// the plan as soon as they are packed ([`Kernel::release_packed_weights`]), so the
    /// plan's copies and the packed ones are never all resident at once. The reference
    /// kernels read the plan's weights on every run: they keep them, computed now.
    pub(crate) fn new(
        plan: &mut Plan,
        backend: Backend,
        threads: usize,
    ) -> Result<CpuExecutor, Error> {
        // The arena first: it is the large one, and the one a too-large batch runs out on.
        // Zeroed by the OS: its pages take no memory until the first run writes them.
        let arena = crate::tensor::zeroed(plan.arena_len, "session arena")?;
        let prepared: Vec<simd::Prepared> = match backend {
            Backend::Reference => {
                plan.steps
                    .iter_mut()
                    .for_each(|s| s.kernel.compute_weights());
                Vec::new()
            }
            Backend::Simd(isa) => plan
                .steps
                .iter_mut()
                .map(|s| {
                    let prepared = simd::prepare(&s.kernel, isa);
                    if s.kernel.release_packed_weights() {
                        crate::tensor::return_free_memory();
                    }
                    prepared
                })
                .collect(),
        };
        let scratch_len = match backend {
            Backend::Reference => plan
                .steps
                .iter()
                .map(|s| reference::scratch_len(&s.kernel))
                .max(),
            Backend::Simd(_) => prepared.iter().map(|p| p.scratch_len(threads)).max(),
        };
        let scratch_len = scratch_len.unwrap_or(0);
        let scratch = crate::tensor::zeroed(scratch_len, "kernel scratch")?;
        let decoded_len = plan
            .steps
            .iter()
            .filter(|s| byte_output(&s.kernel).is_some())
            .map(|s| plan.values[s.output].len)
            .max();
        let decoded = crate::tensor::zeroed(decoded_len.unwrap_or(0), "byte values shown")?;
        Ok(CpuExecutor {
            backend,
            threads,
            prepared,
            scratch,
            arena,
            decoded,
        })
    }

    /// Copies the (checked) inputs into their arena slots.
    fn load_inputs(&mut self, plan: &Plan, inputs: &dyn Inputs) {
        for i in 0..plan.inputs {
            let slot = &plan.values[i];
            self.arena[slot.offset..slot.offset + slot.len].copy_from_slice(inputs.data(i));
        }
    }

    /// Runs every step; `tap` sees each step's name and output after it is computed, a
    /// value stored as bytes decoded to f32 where `decode` says so (else its raw floats).
    fn execute(&mut self, plan: &Plan, tap: &mut dyn FnMut(&str, &Slot, &[f32]), decode: bool) {
        // Taken out for the run (no allocation), so the steps may borrow self.
        let mut buf = std::mem::take(&mut self.decoded);
        let decoded = match decode {
            true => Some(&mut buf[..]),
            false => None,
        };
        let mut show = Shown { tap, decoded };
        let arena = Arena::new(&mut self.arena);
        for (s, step) in plan.steps.iter().enumerate() {
            if !moves_no_data(step) {
                // SAFETY: the planner gives a step's output a range disjoint from the ranges
                // of all values live during that step, its inputs included (`plan::plan`),
                // so this mutable view overlaps none of the input views `io` hands out. An
                // in-place step's output is its input's storage, and it takes no input view.
                let y = unsafe { arena.write(&plan.values[step.output]) };
                if step.in_place {
                    self.activate_in_place(&step.kernel, y);
                    show.output(plan, step, &arena);
                    continue;
                }
                let io = Io {
                    plan,
                    step,
                    arena: &arena,
                };
                match self.backend {
                    Backend::Reference => reference::run(&step.kernel, &io, y, &mut self.scratch),
                    Backend::Simd(isa) => {
                        let ctx = simd::Ctx {
                            isa,
                            threads: self.threads,
                            scratch: &mut self.scratch,
                        };
                        simd::run(&step.kernel, &self.prepared[s], &io, y, ctx)
                    }
                }
            }
            show.output(plan, step, &arena);
        }
        self.decoded = buf;
    }

    fn activate_in_place(&self, kernel: &Kernel, y: &mut [f32]) {
        let act = match kernel {
            Kernel::Act(a) => *a,
            other => unreachable!("the planner marks only activations in place, not {other:?}"),
        };
        match self.backend {
            Backend::Reference => {
                let apply = kestrel_kernels::activation::reference::apply;
                y.iter_mut().for_each(|v| *v = apply(act, *v))
            }
            Backend::Simd(isa) => {
                kestrel_kernels::activation::cpu::activate_in_place(isa, act, y, self.threads)
            }
        }
    }
}

/// The quantization of a step's output stored as bytes, None for f32 outputs.
fn byte_output(kernel: &Kernel) -> Option<&kestrel_kernels::quantize::QuantParams> {
    match kernel {
        Kernel::QConv2d {
            add: Some(add),
            bytes_out: true,
            ..
        } => Some(&add.y),
        Kernel::QConv2d {
            q, bytes_out: true, ..
        }
        | Kernel::QLinear {
            q, bytes_out: true, ..
        } => Some(&q.y),
        Kernel::QAdd {
            q, bytes_out: true, ..
        } => Some(&q.y),
        Kernel::QLut {
            lut,
            bytes_out: true,
            ..
        } => Some(lut.y()),
        Kernel::QMaxPool {
            pool,
            bytes_out: true,
            ..
        } => Some(pool.y()),
        _ => None,
    }
}

/// A run's tap, with where byte values are decoded for it (None: shown raw).
struct Shown<'t, 'd> {
    tap: &'t mut dyn FnMut(&str, &Slot, &[f32]),
    decoded: Option<&'d mut [f32]>,
}

impl Shown<'_, '_> {
    /// Shows the step's output to the tap.
    fn output(&mut self, plan: &Plan, step: &Step, arena: &Arena) {
        let out = &plan.values[step.output];
        // SAFETY: no step is running; this shared view ends before the next step writes.
        let data = unsafe { arena.read(out) };
        match (byte_output(&step.kernel), self.decoded.as_deref_mut()) {
            (Some(q), Some(buf)) => {
                let buf = &mut buf[..out.len];
                let shift = q.dtype.byte_shift();
                let bytes = simd::bytes_of(data);
                for (v, &b) in buf.iter_mut().zip(bytes) {
                    *v = kestrel_kernels::quantize::reference::dequantize(q, i32::from(b) - shift);
                }
                (self.tap)(&step.name, out, buf)
            }
            _ => (self.tap)(&step.name, out, data),
        }
    }
}

/// A step's view of its inputs in the arena.
pub(crate) struct Io<'a> {
    plan: &'a Plan,
    step: &'a Step,
    arena: &'a Arena,
}

// SAFETY: an `Io` only reads the step's inputs (`input`), which nothing writes while the
// step runs, so the kernel's tasks may read them from several threads at once.
unsafe impl Sync for Io<'_> {}

impl<'a> Io<'a> {
    /// Input `i` of the step, read-only.
    pub(crate) fn input(&self, i: usize) -> &'a [f32] {
        // SAFETY: inputs are only read while the step runs, and no input range overlaps
        // the step's output (see `CpuExecutor::execute`).
        unsafe { self.arena.read(&self.plan.values[self.step.inputs[i]]) }
    }
}

/// The arena as a raw pointer, so a step can read its inputs while writing its output.
struct Arena {
    ptr: *mut f32,
    len: usize,
}

impl Arena {
    fn new(arena: &mut [f32]) -> Arena {
        Arena {
            ptr: arena.as_mut_ptr(),
            len: arena.len(),
        }
    }

    /// SAFETY: the caller guarantees no mutable view of an overlapping range is alive.
    unsafe fn read(&self, s: &Slot) -> &[f32] {
        assert!(s.offset + s.len <= self.len, "slot outside the arena");
        // SAFETY: in bounds (asserted); aliasing is the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.add(s.offset), s.len) }
    }

    /// SAFETY: the caller guarantees no other view of an overlapping range is alive.
    #[allow(clippy::mut_from_ref)]
    unsafe fn write(&self, s: &Slot) -> &mut [f32] {
        assert!(s.offset + s.len <= self.len, "slot outside the arena");
        // SAFETY: in bounds (asserted); aliasing is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(s.offset), s.len) }
    }
}
