//! Whole fixtures through the CUDA executor's plan on the CPU emulator: every step's
//! launches with the very arena offsets, in-place views and producer-written concats the
//! GPU session resolves, over one arena buffer, against PyTorch's outputs. The kernel
//! tests check each op on its own buffers; this checks how the executor wires them, on a
//! machine without a GPU. Skips (saying why) without g++, unless KESTREL_REQUIRE_EMU=1.

use super::cuda::{arg_address, cuda_ops};
use crate::plan::Plan;
use crate::session::{session_plan, SessionOptions};
use crate::{diff, Model, ATOL, DEFAULT_RTOL};
use kestrel_kernels::cuda::emu::{self, EmuRun, View};
use kestrel_loader::read_tensors;

/// Buffer 0 is the arena; constants follow in plan order. Arena addresses are float
/// offsets here (base 0), which is what `arg_address` adds to the device base on a GPU.
fn emulate(plan: &Plan, input: &[f32]) -> Vec<f32> {
    let ops = cuda_ops(plan).unwrap();
    let mut arena = vec![0.0f32; plan.arena_len.max(1)];
    let slot = &plan.values[0];
    arena[slot.offset..slot.offset + slot.len].copy_from_slice(input);
    let consts: Vec<&[f32]> = ops
        .iter()
        .flat_map(|op| op.consts.iter().map(Vec::as_slice))
        .collect();
    // Encode a const as an "address" past every arena offset, so one resolver serves both.
    const CONST_TAG: u64 = 1 << 62;
    let mut launches = Vec::new();
    let mut first_const = 0;
    for (step, op) in plan.steps.iter().zip(&ops) {
        let const_ids: Vec<u64> = (0..op.consts.len())
            .map(|i| CONST_TAG + (first_const + i) as u64)
            .collect();
        for launch in &op.launches {
            let views = launch
                .args
                .iter()
                .map(|a| {
                    let addr = arg_address(a, step, plan, &const_ids, &|s| s.offset as u64);
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
    emu::run_views(&EmuRun {
        buffers,
        launches,
        result: 0,
    })
    .unwrap_or_else(|e| panic!("emulated run failed: {e}"))
}

#[test]
fn fixtures_match_pytorch_on_the_emulated_executor() {
    if let Err(why) = emu::available() {
        assert!(
            std::env::var("KESTREL_REQUIRE_EMU").as_deref() != Ok("1"),
            "KESTREL_REQUIRE_EMU=1 but {why}"
        );
        return println!("skipping the emulated CUDA executor: {why}");
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for name in ["cifarnet", "allops", "mobilenetv2", "resnet18"] {
        let model = Model::load(format!("{dir}/{name}.safetensors")).unwrap();
        for (batch, optimize) in [(1, true), (3, true), (1, false)] {
            let opts = SessionOptions {
                batch,
                optimize,
                ..SessionOptions::default()
            };
            let plan = session_plan(model.graph(), &opts).unwrap();
            let refs =
                read_tensors(format!("{dir}/{name}.b{batch}.ref.safetensors").as_ref()).unwrap();
            let input = refs.tensors["input"].data.as_ref().unwrap();
            let arena = emulate(&plan, input);
            let out = &plan.values[plan.outputs[0]];
            let expected = refs.tensors["output"].data.as_ref().unwrap();
            let d = diff(
                &arena[out.offset..out.offset + out.len],
                expected,
                DEFAULT_RTOL,
                ATOL,
            );
            assert!(
                d.ok(),
                "{name} b{batch} optimize={optimize}: max abs {:.3e}",
                d.max_abs
            );
        }
    }
}
