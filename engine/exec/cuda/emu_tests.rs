//! Whole fixtures through the CUDA executor's plan on the CPU emulator: every step's
//! launches with the very arena offsets, in-place views and producer-written concats the
//! GPU session resolves, over one arena buffer, against PyTorch's outputs. The kernel
//! tests check each op on its own buffers; this checks how the executor wires them, on a
//! machine without a GPU. Skips (saying why) without g++, unless KESTREL_REQUIRE_EMU=1.

use super::{arg_address, cuda_plan, OpChoice};
use crate::compare::{diff, rounding_sensitivity};
use crate::plan::{Plan, Slot};
use crate::session::{session_plan, SessionOptions};
use crate::{Model, Precision};
use kestrel_kernels::cuda::emu::{self, EmuRun, View};
use kestrel_kernels::testing::{require_or_skip, Need};
use kestrel_loader::read_tensors;

/// Buffer 0 is the arena; constants follow in plan order. Arena addresses are float
/// offsets here (base 0), which is what `arg_address` adds to the device base on a GPU.
/// Returns the final arena and the output's slot in it.
fn emulate(plan: &Plan, choice: OpChoice, input: &[f32]) -> (Vec<f32>, Slot) {
    let cuda = cuda_plan(plan, choice).unwrap();
    let ops = &cuda.ops;
    let mut arena = vec![0.0f32; cuda.arena_len.max(1)];
    let slot = &cuda.values[0];
    arena[slot.offset..slot.offset + slot.len].copy_from_slice(input);
    let consts: Vec<&[f32]> = ops
        .iter()
        .flat_map(|op| op.consts.iter().map(Vec::as_slice))
        .collect();
    // Encode a const as an "address" past every arena offset, so one resolver serves both.
    const CONST_TAG: u64 = 1 << 62;
    let mut launches = Vec::new();
    let mut first_const = 0;
    for (step, op) in plan.steps.iter().zip(ops) {
        let const_ids: Vec<u64> = (0..op.consts.len())
            .map(|i| CONST_TAG + (first_const + i) as u64)
            .collect();
        for launch in &op.launches {
            let views = launch
                .args
                .iter()
                .map(|a| {
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
                })
                .collect();
            launches.push((launch, views));
        }
        first_const += op.consts.len();
    }
    let buffers = std::iter::once(&arena[..]).chain(consts).collect();
    let arena = emu::run_views(&EmuRun {
        buffers,
        launches,
        result: 0,
    })
    .unwrap_or_else(|e| panic!("emulated run failed: {e}"));
    (arena, cuda.values[plan.outputs[0]].clone())
}

/// docs/architecture.md's tolerance for `precision`, widened for tf32 and fp16 to 3× the fixture's
/// own sensitivity to one rounding of its input where that is larger: these random-weight
/// nets amplify perturbations more than trained ones (see `rounding_sensitivity`). A
/// wrong index or fragment still misses by orders of magnitude more.
pub(crate) fn fixture_tolerance(
    model: &Model,
    batch: usize,
    input: &[f32],
    precision: Precision,
) -> (f64, f64) {
    let (rtol, atol) = precision.tolerance();
    if precision == Precision::Fp32 {
        return (rtol, atol);
    }
    let sensitivity = rounding_sensitivity(model, batch, input).unwrap();
    (rtol.max(3.0 * sensitivity), atol)
}

#[test]
fn fixtures_match_pytorch_on_the_emulated_executor() {
    if let Err(why) = emu::available() {
        return require_or_skip(Need::Emulator, "the emulated CUDA executor", &why);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    for name in ["cifarnet", "allops", "mobilenetv2", "resnet18"] {
        let model = Model::load(format!("{dir}/{name}.safetensors")).unwrap();
        let runs = [
            (1, true, Precision::Fp32),
            (3, true, Precision::Fp32),
            (1, false, Precision::Fp32),
            (1, true, Precision::Tf32),
            (3, true, Precision::Fp16),
        ];
        for (batch, optimize, precision) in runs {
            let opts = SessionOptions {
                batch,
                optimize,
                precision,
                ..SessionOptions::default()
            };
            let plan = session_plan(model.graph(), &opts).unwrap();
            let refs =
                read_tensors(format!("{dir}/{name}.b{batch}.ref.safetensors").as_ref()).unwrap();
            let input = refs.tensors["input"].data.as_ref().unwrap();
            let (arena, out) = emulate(&plan, OpChoice::of(&opts), input);
            let expected = refs.tensors["output"].data.as_ref().unwrap();
            let (rtol, atol) = fixture_tolerance(&model, batch, input, precision);
            let d = diff(
                &arena[out.offset..out.offset + out.len],
                expected,
                rtol,
                atol,
            );
            assert!(
                d.ok(),
                "{name} b{batch} optimize={optimize} {precision}: max abs {:.3e}, max rel {:.3e}",
                d.max_abs,
                d.rel()
            );
            println!(
                "{name} b{batch} {precision}: max rel {:.2e}, allowed {:.2e}",
                d.rel(),
                d.tolerance / d.max_ref
            );
        }
    }
}
