//! The CPU executor: runs a plan's steps in order over one arena, with the kernels the
//! session was built for.

pub(crate) mod cuda;
mod reference;
mod simd;

use crate::error::Error;
use crate::lower::Kernel;
use crate::plan::{moves_no_data, Plan, Slot, Step};
use crate::session::Kernels;
use kestrel_kernels::{Activation, Isa};

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

/// Runs a plan: the backend, its per-step prepared kernels (packed weights) and the
/// scratch they share, all made when the session is built.
pub(crate) struct Executor {
    pub backend: Backend,
    pub threads: usize,
    prepared: Vec<simd::Prepared>,
    scratch: Vec<f32>,
}

impl Executor {
    pub(crate) fn new(plan: &Plan, backend: Backend, threads: usize) -> Result<Executor, Error> {
        let prepared: Vec<simd::Prepared> = match backend {
            Backend::Reference => Vec::new(),
            Backend::Simd(isa) => plan
                .steps
                .iter()
                .map(|s| simd::prepare(&s.kernel, isa))
                .collect(),
        };
        let scratch_len = prepared
            .iter()
            .map(|p| p.scratch_len(threads))
            .max()
            .unwrap_or(0);
        let scratch = crate::tensor::zeroed(scratch_len, "kernel scratch")?;
        Ok(Executor {
            backend,
            threads,
            prepared,
            scratch,
        })
    }

    /// Runs every step; `tap` sees each step's name and output after it is computed.
    pub(crate) fn execute(
        &mut self,
        plan: &Plan,
        arena: &mut [f32],
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) {
        let arena = Arena::new(arena);
        for (s, step) in plan.steps.iter().enumerate() {
            if !moves_no_data(step) {
                // SAFETY: the planner gives a step's output a range disjoint from the ranges
                // of all values live during that step, its inputs included (`plan::plan`),
                // so this mutable view overlaps none of the input views `io` hands out. An
                // in-place step's output is its input's storage, and it takes no input view.
                let y = unsafe { arena.write(&plan.values[step.output]) };
                if step.in_place {
                    self.activate_in_place(&step.kernel, y);
                    show_output(tap, plan, step, &arena);
                    continue;
                }
                let io = Io {
                    plan,
                    step,
                    arena: &arena,
                };
                match self.backend {
                    Backend::Reference => reference::run(&step.kernel, &io, y),
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
            show_output(tap, plan, step, &arena);
        }
    }

    fn activate_in_place(&self, kernel: &Kernel, y: &mut [f32]) {
        let act = match kernel {
            Kernel::Relu => Activation::Relu,
            Kernel::Relu6 => Activation::Relu6,
            other => unreachable!("the planner marks only activations in place, not {other:?}"),
        };
        match self.backend {
            Backend::Reference => y.iter_mut().for_each(|v| *v = act.apply(*v)),
            Backend::Simd(isa) => kestrel_kernels::activation::cpu::activate_in_place(isa, act, y),
        }
    }
}

/// Shows the step's output to the tap.
fn show_output(tap: &mut dyn FnMut(&str, &Slot, &[f32]), plan: &Plan, step: &Step, arena: &Arena) {
    let out = &plan.values[step.output];
    // SAFETY: no step is running; this shared view ends before the next step writes.
    tap(&step.name, out, unsafe { arena.read(out) });
}

/// A step's view of its inputs in the arena.
pub(crate) struct Io<'a> {
    plan: &'a Plan,
    step: &'a Step,
    arena: &'a Arena,
}

impl<'a> Io<'a> {
    /// Input `i` of the step, read-only.
    pub(crate) fn input(&self, i: usize) -> &'a [f32] {
        // SAFETY: inputs are only read while the step runs, and no input range overlaps
        // the step's output (see `Executor::execute`).
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
