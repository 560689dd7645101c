//! Fusions across steps that only the CUDA executor makes: at batch 1 each kernel costs
//! about a microsecond even inside a CUDA graph (gpu.md), as much as the small layers'
//! work. The CPU plan is unchanged; a fused op runs at the first step it covers, writes
//! every output the steps it replaces would have (so per-layer checks still see them),
//! and the later steps run nothing.

use crate::lower::Kernel;
use crate::plan::{moves_no_data, Plan, Slot};
use kestrel_kernels::cuda::{Arg, CudaOp};
use kestrel_kernels::linear::pool_linear::{pool_linear, MAX_CHANNELS};

/// A pooled image up to this size is read by every block of `pool_linear_f32` from L2
/// (the kernel's own numbers): ResNet-18's 512×7×7 (100 KB) gains a launch, while
/// MobileNetV2's 1280×7×7 (250 KB) and ResNet-50's 2048×7×7 (400 KB) would pay for the
/// redundant pooling about what they save. To be set from H100 timings.
const MAX_POOLED_BYTES: usize = 128 * 1024;

/// The classifier heads: a global average pool whose output feeds (through aliases such
/// as flatten) a linear layer at batch 1 become one `pool_linear` launch at the pool's
/// step, and the linear's step runs nothing.
pub(crate) fn fuse_heads(plan: &Plan, ops: &mut [CudaOp]) {
    for i in 0..plan.steps.len() {
        if let Some((j, op)) = fused_head(plan, i) {
            ops[i] = op;
            ops[j] = CudaOp::default();
        }
    }
}

/// Step `i`'s pool and the linear it feeds as one op, with the linear's step index.
fn fused_head(plan: &Plan, i: usize) -> Option<(usize, CudaOp)> {
    let pool = &plan.steps[i];
    let (n, c, hw) = match &pool.kernel {
        Kernel::Mean(p) => (p.n, p.c, p.h * p.w),
        Kernel::AdaptiveAvgPool2d(p) if p.out == [1, 1] => (p.n, p.c, p.h * p.w),
        _ => return None,
    };
    // The next step that moves data must be the linear reading the pooled values: then
    // nothing between reads them before the fused op (at step i) has written them.
    let j = (i + 1..plan.steps.len()).find(|&j| !moves_no_data(&plan.steps[j]))?;
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
    let [x, pooled, read, y] =
        [pool.inputs[0], pool.output, linear.inputs[0], linear.output].map(|v| &plan.values[v]);
    let reads_pooled = (read.offset, read.len) == (pooled.offset, pooled.len);
    let fits = n == 1 && p.rows == 1 && p.in_features == c && c <= MAX_CHANNELS;
    // y is written while x is still being read, earlier than the plan expects: the arena
    // may have given y storage that x (dead after step i) or the pooled values occupy.
    let clear = !overlaps(y, x) && !overlaps(y, pooled);
    if !reads_pooled || !fits || !clear || c * hw * size_of::<f32>() > MAX_POOLED_BYTES {
        return None;
    }
    let mut op = pool_linear(n, c, hw, p.out_features, weight, bias.as_deref(), *act);
    for launch in &mut op.launches {
        for arg in &mut launch.args {
            *arg = match *arg {
                // pool_linear writes the pooled values to its Input(1): the pool's output.
                Arg::Input(1) => Arg::Output,
                Arg::Output => Arg::Value(linear.output),
                other => other,
            };
        }
    }
    Some((j, op))
}

fn overlaps(a: &Slot, b: &Slot) -> bool {
    a.offset < b.offset + b.len && b.offset < a.offset + a.len
}

#[cfg(test)]
mod tests {
    use super::super::cuda::{cuda_ops, OpChoice};
    use crate::session::{session_plan, SessionOptions};
    use crate::{Model, Precision};

    /// (entry of each step's first launch, or "" for none) for a fixture's plan.
    fn entries(name: &str, batch: usize, fuse: bool) -> Vec<(String, &'static str)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
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
        let ops = cuda_ops(&plan, choice).unwrap();
        plan.steps
            .iter()
            .zip(&ops)
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
    fn no_fusion_where_the_output_would_overwrite_the_pooled_image() {
        // The MobileNetV2 fixture's arena puts the logits where the last feature map was
        // (it dies at the pool): written from the pool's step, they would corrupt it.
        let fused = entries("mobilenetv2", 1, true);
        assert!(fused.iter().all(|e| e.1 != "pool_linear_f32"), "{fused:?}");
        assert!(fused.iter().any(|e| e.1 == "linear_gemv_f32"), "{fused:?}");
    }
}
