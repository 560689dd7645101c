//! Fusions across steps that only the CUDA executor makes: at batch 1 each kernel costs
//! about a microsecond even inside a CUDA graph (docs/cuda.md), as much as the small layers'
//! work. The CPU plan is unchanged; a fused op runs at the first step it covers, writes
//! every output the steps it replaces would have (so per-layer checks still see them),
//! and the later steps run nothing:
//! - conv → 2×2 stride-2 max pool: the pool in the conv's epilogue (`conv2d_max_pool2`);
//! - global average pool → flatten → linear at batch 1: `pool_linear`.

use super::CudaPlan;
use crate::lower::Kernel;
use crate::plan::{moves_no_data, shares_input_storage, Plan, Slot, ALIGN};
use kestrel_kernels::conv2d::cuda::{can_fuse_max_pool2, conv2d_max_pool2};
use kestrel_kernels::cuda::{Arg, CudaOp};
use kestrel_kernels::linear::pool_linear::{pool_linear, MAX_CHANNELS};
use kestrel_kernels::Precision;

/// A pooled image up to this size is read by every block of `pool_linear_f32` from L2
/// (the kernel's own numbers): ResNet-18's 512×7×7 (100 KB) gains a launch, while
/// MobileNetV2's 1280×7×7 (250 KB) and ResNet-50's 2048×7×7 (400 KB) would pay for the
/// redundant pooling about what they save. To be set from H100 timings.
const MAX_POOLED_BYTES: usize = 128 * 1024;

/// Every fusion this module knows, over `cuda` (`plan`'s ops in `precision` and their
/// layout, which a fusion may change: see `fused_conv_pool`).
pub(crate) fn fuse(plan: &Plan, cuda: &mut CudaPlan, precision: Precision) {
    for i in 0..plan.steps.len() {
        let fused = fused_conv_pool(plan, cuda, i, precision).or_else(|| fused_head(plan, cuda, i));
        if let Some((j, op)) = fused {
            cuda.ops[i] = op;
            cuda.ops[j] = CudaOp::default();
        }
    }
}

/// The next step after `i` that moves data: the one that reads what step `i` wrote when
/// only aliases (flatten, say) lie between.
fn next_computing(plan: &Plan, i: usize) -> Option<usize> {
    (i + 1..plan.steps.len()).find(|&j| !moves_no_data(&plan.steps[j]))
}

/// Step `i`'s conv and the 2×2 max pool reading its output as one op, with the pool's
/// step index: the conv's output still written (at the conv's slot), the pool's to its,
/// while the conv still reads x (the CIFAR net's first pooled map lands on its input:
/// see `written_apart`).
fn fused_conv_pool(
    plan: &Plan,
    cuda: &mut CudaPlan,
    i: usize,
    precision: Precision,
) -> Option<(usize, CudaOp)> {
    let conv = &plan.steps[i];
    let Kernel::Conv2d {
        p,
        weight,
        bias,
        residual,
        act,
        in_scale: false,
    } = &conv.kernel
    else {
        // `conv2d_max_pool2` takes no input scale (an SE block's conv feeds no pool).
        return None;
    };
    let j = next_computing(plan, i)?;
    let pool = &plan.steps[j];
    let Kernel::MaxPool2d(pp) = &pool.kernel else {
        return None;
    };
    let [y, read] = [conv.output, pool.inputs[0]].map(|v| &cuda.values[v]);
    if (read.offset, read.len) != (y.offset, y.len) || !can_fuse_max_pool2(p, pp) {
        return None;
    }
    let live: Vec<usize> = conv.inputs.iter().chain([&conv.output]).copied().collect();
    if !written_apart(plan, cuda, pool.output, &live) {
        return None;
    }
    // Shapes the fused kernel refuses run unfused, as the plan has them.
    let mut op = conv2d_max_pool2(p, weight, bias.as_deref(), *residual, *act, precision).ok()?;
    let y_role = Arg::Input(1 + *residual as usize);
    remap(&mut op, |arg| match arg {
        a if a == y_role => Arg::Output,
        Arg::Output => Arg::Value(pool.output),
        a => a,
    });
    Some((j, op))
}

fn remap(op: &mut CudaOp, f: impl Fn(Arg) -> Arg) {
    for arg in op.launches.iter_mut().flat_map(|l| &mut l.args) {
        *arg = f(*arg);
    }
}

/// Step `i`'s pool and the linear it feeds as one op, with the linear's step index.
fn fused_head(plan: &Plan, cuda: &mut CudaPlan, i: usize) -> Option<(usize, CudaOp)> {
    let pool = &plan.steps[i];
    let (n, c, hw) = match &pool.kernel {
        Kernel::Mean(p) => (p.n, p.c, p.h * p.w),
        Kernel::AdaptiveAvgPool2d(p) if p.out == [1, 1] => (p.n, p.c, p.h * p.w),
        _ => return None,
    };
    // The next step that moves data must be the linear reading the pooled values: then
    // nothing between reads them before the fused op (at step i) has written them.
    let j = next_computing(plan, i)?;
    let linear = &plan.steps[j];
    let Kernel::Linear {
        p,
        weight,
        bias,
        act,
    } = &linear.kernel
    else {
        return None;
    };
    let [pooled, read] = [pool.output, linear.inputs[0]].map(|v| &cuda.values[v]);
    let reads_pooled = (read.offset, read.len) == (pooled.offset, pooled.len);
    let fits = n == 1 && p.rows == 1 && p.in_features == c && c <= MAX_CHANNELS;
    if !reads_pooled || !fits || c * hw * size_of::<f32>() > MAX_POOLED_BYTES {
        return None;
    }
    // The logits are written at the pool's step, while it still reads x (the MobileNetV2
    // fixture's logits land on its last feature map).
    if !written_apart(plan, cuda, linear.output, &[pool.inputs[0], pool.output]) {
        return None;
    }
    let mut op = pool_linear(n, c, hw, p.out_features, weight, bias.as_deref(), *act).ok()?;
    remap(&mut op, |arg| match arg {
        // pool_linear writes the pooled values to its Input(1): the pool's output.
        Arg::Input(1) => Arg::Output,
        Arg::Output => Arg::Value(linear.output),
        a => a,
    });
    Some((j, op))
}

/// Whether value `early`, which a fused op writes at an earlier step than the plan's, is
/// kept off the storage of the `live` values that step still reads or writes. The arena
/// may have given `early` the storage of a value that dies at that step; then `early`
/// moves to fresh storage past the arena (false where it cannot move).
fn written_apart(plan: &Plan, cuda: &mut CudaPlan, early: usize, live: &[usize]) -> bool {
    let clear = |cuda: &CudaPlan| {
        let slot = &cuda.values[early];
        live.iter().all(|&v| !overlaps(slot, &cuda.values[v]))
    };
    clear(cuda) || relocate(plan, cuda, early)
}

/// Moves value `v`, with every later value sharing its storage (aliases, in-place
/// activations), to fresh storage at the end of the arena. False, changing nothing, when
/// an in-place concat holds it: its storage is then part of the concat's.
fn relocate(plan: &Plan, cuda: &mut CudaPlan, v: usize) -> bool {
    let mut chain = vec![v];
    for step in &plan.steps {
        let holds = step.inputs.iter().any(|u| chain.contains(u));
        if holds && matches!(step.kernel, Kernel::Concat { .. }) && step.in_place {
            return false;
        }
        if shares_input_storage(step) && chain.contains(&step.inputs[0]) {
            chain.push(step.output);
        }
    }
    let (from, to) = (
        cuda.values[v].offset,
        cuda.arena_len.next_multiple_of(ALIGN),
    );
    for &u in &chain {
        cuda.values[u].offset = cuda.values[u].offset - from + to;
    }
    cuda.arena_len = to + cuda.values[v].len;
    true
}

fn overlaps(a: &Slot, b: &Slot) -> bool {
    a.offset < b.offset + b.len && b.offset < a.offset + a.len
}

#[cfg(test)]
mod tests {
    use super::super::{cuda_plan, CudaPlan, OpChoice};
    use crate::plan::Plan;
    use crate::session::{session_plan, SessionOptions};
    use crate::{Model, Precision};

    /// A fixture's plan at `batch` and its CUDA plan in fp32, fused or not.
    fn layouts(name: &str, batch: usize, fuse: bool) -> (Plan, CudaPlan) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
        let model = Model::load(format!("{dir}/{name}.safetensors")).unwrap();
        let opts = SessionOptions {
            batch,
            ..SessionOptions::default()
        };
        let plan = session_plan(model.graph(), &opts).unwrap();
        let choice = OpChoice {
            precision: Precision::Fp32,
            fuse,
        };
        let cuda = cuda_plan(&plan, choice).unwrap();
        (plan, cuda)
    }

    /// (entry of each step's first launch, or "" for none) for a fixture's plan.
    fn entries(name: &str, batch: usize, fuse: bool) -> Vec<(String, &'static str)> {
        let (plan, cuda) = layouts(name, batch, fuse);
        plan.steps
            .iter()
            .zip(&cuda.ops)
            .map(|(s, op)| (s.name.clone(), op.launches.first().map_or("", |l| l.entry)))
            .collect()
    }

    #[test]
    fn the_head_is_one_launch_at_batch_1() {
        let fused = entries("resnet18", 1, true);
        let heads: Vec<usize> = (0..fused.len())
            .filter(|&i| fused[i].1 == "pool_linear_f32")
            .collect();
        assert_eq!(heads.len(), 1, "{fused:?}");
        // The linear after it runs nothing; without fusion it is the GEMV.
        let plain = entries("resnet18", 1, false);
        let linear = (heads[0] + 1..plain.len())
            .find(|&j| plain[j].1 == "linear_gemv_f32")
            .unwrap();
        assert_eq!(fused[linear].1, "", "{}", fused[linear].0);
        assert!(plain.iter().all(|e| e.1 != "pool_linear_f32"), "{plain:?}");
        // Batch 3 keeps pool and linear: one launch per image would reread the weight.
        let batch3 = entries("resnet18", 3, true);
        assert!(
            batch3.iter().all(|e| e.1 != "pool_linear_f32"),
            "{batch3:?}"
        );
    }

    #[test]
    fn the_cifar_net_is_three_launches() {
        // conv1+relu1 → pool, conv2+relu2 → pool, fc: the pools run in the convs'
        // epilogues, at any batch; unfused (no graph passes) every node has its kernel.
        for batch in [1, 3] {
            let fused = entries("cifarnet", batch, true);
            let launching: Vec<_> = fused.iter().filter(|e| !e.1.is_empty()).collect();
            let want = ["conv2d_igemm", "conv2d_igemm", "linear_gemv_f32"];
            let want = if batch == 1 { &want[..] } else { &want[..2] };
            assert_eq!(
                launching
                    .iter()
                    .map(|e| e.1)
                    .take(want.len())
                    .collect::<Vec<_>>(),
                want,
                "b{batch}: {fused:?}"
            );
            assert_eq!(launching.len(), 3, "b{batch}: {fused:?}");
        }
        let plain = entries("cifarnet", 1, false);
        assert!(plain.iter().any(|e| e.1 == "max_pool2d_f32"), "{plain:?}");
    }

    #[test]
    fn outputs_written_early_move_off_the_storage_still_read() {
        // The MobileNetV2 fixture's arena puts the logits where the last feature map was
        // (it dies at the pool), the CIFAR net's first pooled map where its input was
        // (dead after conv1): written from the earlier step, they would corrupt what it
        // still reads, so they move past the plan's arena.
        for (name, moved) in [("mobilenetv2", "classifier.1"), ("cifarnet", "relu1")] {
            let (plan, cuda) = layouts(name, 1, true);
            let v = plan.steps.iter().find(|s| s.name == moved).unwrap().output;
            assert!(
                cuda.values[v].offset >= plan.arena_len,
                "{name}: {moved} not moved"
            );
            assert_eq!(
                cuda.arena_len,
                plan.arena_len.next_multiple_of(16) + plan.values[v].len
            );
            let others = (0..plan.values.len()).filter(|&u| u != v);
            assert!(others
                .into_iter()
                .all(|u| cuda.values[u].offset == plan.values[u].offset));
        }
        let fused = entries("mobilenetv2", 1, true);
        assert!(fused.iter().any(|e| e.1 == "pool_linear_f32"), "{fused:?}");
    }
}
