//! The CUDA executor's plan run on the CPU emulator of CUDA launches (`Device::CudaEmulated`,
//! the `testing` feature): every step's launches with the very arena offsets, in-place
//! views and producer-written concats a GPU session resolves, over one arena buffer. The
//! kernel tests check each op on its own buffers; this runs how the executor wires them,
//! on a machine without a GPU, behind the same `Session` API the fixture tests use for
//! every other device. Slow (one emulated program per run), so for tests only.

use super::{arg_address, cuda_plan, CudaPlan, OpChoice};
use crate::error::Error;
use crate::exec::{Executor, Inputs};
use crate::plan::{Plan, Slot};
use kestrel_kernels::cuda::emu::{self, EmuRun, View};
use kestrel_kernels::cuda::{CudaError, CudaOp, Launch};
use kestrel_kernels::Precision;

pub(crate) struct EmuExecutor {
    cuda: CudaPlan,
    precision: Precision,
    /// The arena after the last run.
    arena: Vec<f32>,
}

impl EmuExecutor {
    /// An error naming why when g++, which builds the emulated kernels, cannot be run.
    pub(crate) fn new(plan: &Plan, choice: OpChoice) -> Result<EmuExecutor, Error> {
        emu::available().map_err(|why| {
            Error::Cuda(CudaError::Unavailable(format!(
                "the CUDA emulator cannot build kernels: {why}"
            )))
        })?;
        let cuda = cuda_plan(plan, choice)?;
        let arena = vec![0.0; cuda.arena_len];
        Ok(EmuExecutor {
            cuda,
            precision: choice.precision,
            arena,
        })
    }

    /// Emulates one run; with `capture`, also copies each step's output, as soon as the step
    /// has run, into a capture buffer (in plan order) and returns it (else nothing).
    fn emulate(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        capture: bool,
    ) -> Result<Vec<f32>, Error> {
        let cuda = &self.cuda;
        let arena_len = cuda.arena_len;
        let mut arena = vec![0.0f32; cuda.arena_len.max(1)];
        for (i, slot) in cuda.values[..plan.inputs].iter().enumerate() {
            arena[slot.offset..slot.offset + slot.len].copy_from_slice(inputs.data(i));
        }
        let consts: Vec<&[f32]> = cuda
            .ops
            .iter()
            .flat_map(|op| op.consts.iter().map(Vec::as_slice))
            .collect();
        // Buffer 0 is the arena, then the constants in plan order, then the capture buffer
        // (each step's output, then the final arena). Arena addresses are float offsets
        // (base 0), what `arg_address` adds to the device base on a GPU; a constant gets an
        // "address" past every arena offset, so one resolver serves both.
        const CONST_TAG: u64 = 1 << 62;
        let capture_buffer = 1 + consts.len();
        let copies = match capture {
            true => copy_ops(plan, cuda)?,
            false => Vec::new(),
        };
        let mut launches = Vec::new();
        let mut first_const = 0;
        let mut captured = 0;
        for (s, (step, op)) in plan.steps.iter().zip(&cuda.ops).enumerate() {
            let const_ids: Vec<u64> = (0..op.consts.len())
                .map(|i| CONST_TAG + (first_const + i) as u64)
                .collect();
            first_const += op.consts.len();
            for launch in &op.launches {
                let views = launch.args.iter().map(|a| {
                    let addr = arg_address(a, step, &cuda.values, &const_ids, &|s| s.offset as u64);
                    match addr >= CONST_TAG {
                        true => View {
                            buffer: 1 + (addr - CONST_TAG) as usize,
                            offset: 0,
                        },
                        false => View {
                            buffer: 0,
                            offset: addr as usize,
                        },
                    }
                });
                launches.push((launch, views.collect()));
            }
            if let Some(copy) = copies.get(s) {
                let from = cuda.values[step.output].offset;
                push_copy(&mut launches, copy, from, (capture_buffer, captured));
                captured += cuda.values[step.output].len;
            }
        }
        if let Some(copy) = copies.last() {
            push_copy(&mut launches, copy, 0, (capture_buffer, captured));
            captured += arena_len;
        }
        let capture_buffer_data = vec![0.0f32; captured.max(1)];
        let mut buffers: Vec<&[f32]> = std::iter::once(&arena[..]).chain(consts).collect();
        buffers.push(&capture_buffer_data);
        let result = emu::run_views(&EmuRun {
            buffers,
            launches,
            result: if capture { capture_buffer } else { 0 },
        })
        .map_err(|detail| {
            Error::Cuda(CudaError::Driver {
                what: "emulated run".into(),
                detail,
            })
        })?;
        if !capture {
            self.arena = result;
            return Ok(Vec::new());
        }
        self.arena = result[captured - arena_len..captured].to_vec();
        Ok(result)
    }
}

/// One copy op per step (its output's length), then one for the whole arena: `concat`
/// of a single input is a copy.
fn copy_ops(plan: &Plan, cuda: &CudaPlan) -> Result<Vec<CudaOp>, Error> {
    let lens = plan.steps.iter().map(|s| cuda.values[s.output].len);
    lens.chain([cuda.arena_len])
        .map(|len| kestrel_kernels::concat::cuda::concat(1, &[len]))
        .collect::<Result<_, _>>()
        .map_err(Error::Cuda)
}

/// Appends `copy`'s launch (none for an empty copy), reading arena offset `from` and
/// writing `to` (buffer, offset).
fn push_copy<'a>(
    launches: &mut Vec<(&'a Launch, Vec<View>)>,
    copy: &'a CudaOp,
    from: usize,
    (buffer, offset): (usize, usize),
) {
    for launch in &copy.launches {
        let views = vec![
            View {
                buffer: 0,
                offset: from,
            },
            View { buffer, offset },
        ];
        launches.push((launch, views));
    }
}

impl Executor for EmuExecutor {
    fn run(&mut self, plan: &Plan, inputs: &dyn Inputs) -> Result<(), Error> {
        self.emulate(plan, inputs, false).map(drop)
    }

    fn run_with(
        &mut self,
        plan: &Plan,
        inputs: &dyn Inputs,
        tap: &mut dyn FnMut(&str, &Slot, &[f32]),
    ) -> Result<(), Error> {
        let captured = self.emulate(plan, inputs, true)?;
        let mut at = 0;
        for step in &plan.steps {
            let slot = &self.cuda.values[step.output];
            tap(&step.name, slot, &captured[at..at + slot.len]);
            at += slot.len;
        }
        Ok(())
    }

    fn output(&self, plan: &Plan, index: usize) -> &[f32] {
        let slot = &self.cuda.values[plan.outputs[index]];
        &self.arena[slot.offset..slot.offset + slot.len]
    }

    fn profile(
        &mut self,
        _plan: &Plan,
        _inputs: &dyn Inputs,
        _runs: usize,
    ) -> Result<(Vec<f64>, Option<usize>), Error> {
        Err(Error::Cuda(CudaError::Unsupported {
            op: "profile".into(),
            detail: "the CUDA emulator does not time kernels".into(),
        }))
    }

    fn kernels_name(&self) -> &str {
        "emulated CUDA"
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn threads(&self) -> usize {
        1
    }

    fn arena_len(&self) -> usize {
        self.cuda.arena_len
    }

    fn kernel_count(&self, _plan: &Plan) -> usize {
        self.cuda.ops.iter().map(|op| op.launches.len()).sum()
    }
}
