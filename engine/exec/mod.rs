//! The CPU executor: runs a plan's steps in order over one arena, calling the kernels.

use crate::lower::Kernel;
use crate::plan::{Plan, Slot, Step};
use kestrel_kernels as k;
use kestrel_kernels::Activation;

/// Runs every step; `tap` sees each step's name and output after it is computed.
pub(crate) fn execute(plan: &Plan, arena: &mut [f32], tap: &mut dyn FnMut(&str, &Slot, &[f32])) {
    let arena = Arena::new(arena);
    for step in &plan.steps {
        run_step(plan, step, &arena);
        let out = &plan.values[step.output];
        // SAFETY: no step is running; this shared view ends before the next step writes.
        tap(&step.name, out, unsafe { arena.read(out) });
    }
}

fn run_step(plan: &Plan, step: &Step, arena: &Arena) {
    let slot = |i: usize| &plan.values[step.inputs[i]];
    let out_slot = &plan.values[step.output];
    if let Kernel::Alias = step.kernel {
        return; // the output is the input's storage
    }
    // SAFETY: the planner gives a step's output a range disjoint from the ranges of all
    // values live during that step, its inputs included (`plan::plan`), so this mutable
    // view overlaps none of the shared views taken below.
    let y = unsafe { arena.write(out_slot) };
    // SAFETY: inputs are only read, and only while this step runs.
    let x = |i: usize| unsafe { arena.read(slot(i)) };
    match &step.kernel {
        Kernel::Conv2d {
            p,
            weight,
            bias,
            residual,
            act,
        } => {
            k::conv2d::reference::conv2d(p, x(0), weight, bias.as_deref(), y);
            epilogue(y, residual.then(|| x(1)), *act);
        }
        Kernel::BatchNorm {
            p,
            weight,
            bias,
            mean,
            var,
        } => k::batch_norm::reference::batch_norm(
            p,
            x(0),
            weight.as_deref(),
            bias.as_deref(),
            mean,
            var,
            y,
        ),
        Kernel::Relu => k::activation::reference::relu(x(0), y),
        Kernel::Relu6 => k::activation::reference::relu6(x(0), y),
        Kernel::MaxPool2d(p) => k::pool2d::reference::max_pool2d(p, x(0), y),
        Kernel::AvgPool2d(p) => k::pool2d::reference::avg_pool2d(p, x(0), y),
        Kernel::AdaptiveAvgPool2d(p) => {
            k::adaptive_avg_pool2d::reference::adaptive_avg_pool2d(p, x(0), y)
        }
        Kernel::Mean(p) => k::mean::reference::mean_hw(p, x(0), y),
        Kernel::Linear {
            p,
            weight,
            bias,
            act,
        } => {
            k::linear::reference::linear(p, x(0), weight, bias.as_deref(), y);
            epilogue(y, None, *act);
        }
        Kernel::Add { act } => {
            k::add::reference::add(x(0), x(1), y);
            epilogue(y, None, *act);
        }
        Kernel::Concat { outer, inner } => {
            let total: usize = inner.iter().sum();
            let mut at = 0;
            for (i, &n) in inner.iter().enumerate() {
                k::concat::reference::concat_part(*outer, x(i), n, at, total, y);
                at += n;
            }
        }
        Kernel::Softmax(p) => k::softmax::reference::softmax(p, x(0), y),
        Kernel::Alias => {}
    }
}

/// The fused tail of a reference kernel, in the order the fast kernels apply it:
/// y = act(y + residual).
fn epilogue(y: &mut [f32], residual: Option<&[f32]>, act: Activation) {
    if let Some(r) = residual {
        y.iter_mut().zip(r).for_each(|(v, r)| *v += r);
    }
    if act != Activation::None {
        y.iter_mut().for_each(|v| *v = act.apply(*v));
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
