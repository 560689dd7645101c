//! `pool_linear_f32` against the two ops it fuses, mean_hw then linear (their reference
//! loops, f64 sums), through the CUDA test harness: both of its outputs, y and the pooled
//! vector it writes into `Input(1)`.

use super::pool_linear::{pool_linear, MAX_CHANNELS};
use super::{reference, LinearParams};
use crate::cuda::{Arg, CudaOp};
use crate::mean::{self, MeanParams};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

// y: one f32 sum of c products per output (c <= 2048 here), in another order than the f64
// reference, over pooled values that are themselves rounded once: rel 1e-5, as linear's
// GEMV. pooled: an f32 sum of hw values (<= 3136) against an f64 one: rel 1e-5, as mean_hw.
const RTOL: f64 = 1e-5;

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

/// One shape and epilogue: the y case and the pooled case of the same launch.
struct Head {
    n: usize,
    c: usize,
    hw: usize,
    out: usize,
    bias: bool,
    act: Activation,
}

impl Head {
    /// Random x (with `poison` written over it: (index, value)), weight and bias; returns
    /// [the y case, the pooled case].
    fn cases(&self, poison: &[(usize, f32)]) -> [Case; 2] {
        let Head {
            n,
            c,
            hw,
            out,
            bias,
            act,
        } = *self;
        let mut rng = Rng::new((n * 1_000_003 + c * 7919 + hw * 31 + out) as u64);
        let mut x = rng.vec(n * c * hw);
        // An offset, so the means are not all near zero.
        x.iter_mut().for_each(|v| *v += 0.25);
        for &(i, v) in poison {
            x[i] = v;
        }
        let w = rng.vec(out * c);
        let b = bias.then(|| rng.vec(out));

        // The reference: the pool step, then the linear step, as the unfused plan runs.
        let mp = MeanParams { n, c, h: hw, w: 1 };
        mp.validate().unwrap();
        let mut pooled = vec![0.0; n * c];
        mean::reference::mean_hw(&mp, &x, &mut pooled);
        let lp = LinearParams {
            rows: n,
            in_features: c,
            out_features: out,
        };
        lp.validate().unwrap();
        let mut y = vec![0.0; n * out];
        reference::linear(&lp, &pooled, &w, b.as_deref(), &mut y);
        y.iter_mut().for_each(|v| *v = act.apply(*v));

        let op = pool_linear(n, c, hw, out, &w, b.as_deref(), act).unwrap();
        let name = format!(
            "pool_linear n{n} c{c} hw{hw} ->{out} bias{} {act:?}",
            bias as u8
        );
        // Input(1) is only written: NaN there shows y does not read it.
        let y_case = Case::new(
            format!("{name}: y"),
            vec![x.clone(), vec![f32::NAN; n * c]],
            y,
            Allow::Max(RTOL, 1e-6),
        )
        .cuda(op.clone());
        let pooled_case = Case::new(
            format!("{name}: pooled"),
            vec![x, vec![f32::NAN; n * out]],
            pooled,
            Allow::Max(RTOL, 1e-6),
        )
        .cuda(swap_outputs(op));
        [y_case, pooled_case]
    }
}

/// The same launches with `Input(1)` and `Output` exchanged, so the harness, which
/// compares `Output`, compares the pooled vector (y lands in the Input(1) buffer).
fn swap_outputs(mut op: CudaOp) -> CudaOp {
    for launch in &mut op.launches {
        for arg in &mut launch.args {
            *arg = match *arg {
                Arg::Input(1) => Arg::Output,
                Arg::Output => Arg::Input(1),
                other => other,
            };
        }
    }
    op
}

/// Every (n, c, hw) of the sweep for these out_features, each shape with one epilogue,
/// the epilogues taking turns.
fn sweep(outs: &[usize], cs: &[usize]) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut turn = 0;
    for &out in outs {
        for &c in cs {
            for hw in [1, 4, 49] {
                for n in [1, 2, 3] {
                    let head = Head {
                        n,
                        c,
                        hw,
                        out,
                        bias: turn % 2 == 0,
                        act: ACTS[turn % 3],
                    };
                    cases.extend(head.cases(&[]));
                }
                turn += 1;
            }
        }
    }
    cases
}

// c around the warp (32) and the float4 padding (7, 33, 100), hw as a lane per channel
// (1), 4 lanes (4) and two loads of a full warp (49); out_features within one block (1,
// 10), around one block (33 = 2 x 16 + 1 rows) and over 32 blocks (1000).
const CS: [usize; 6] = [1, 7, 32, 33, 100, 512];

#[test]
fn few_outputs_match_mean_then_linear() {
    check("pool_linear", &sweep(&[1, 10], &CS));
}

#[test]
fn one_block_and_more_match_mean_then_linear() {
    check("pool_linear", &sweep(&[33], &CS));
}

#[test]
fn thousand_outputs_match_mean_then_linear() {
    check("pool_linear", &sweep(&[1000], &CS[..5]));
}

#[test]
fn every_epilogue() {
    let mut cases = Vec::new();
    for bias in [false, true] {
        for act in ACTS {
            let head = Head {
                n: 2,
                c: 33,
                hw: 49,
                out: 40,
                bias,
                act,
            };
            cases.extend(head.cases(&[]));
        }
    }
    check("pool_linear", &cases);
}

#[test]
fn network_heads() {
    // (c, hw, out): ResNet-18, ResNet-50, MobileNetV2 at 7x7 -> 1000; a CIFAR ResNet's
    // 8x8 -> 10; 3x3 (9 values on 16 lanes) and 56x56 (98 loads a lane) for odd planes;
    // the widest head it takes (MAX_CHANNELS: 32 KB of shared memory).
    let shapes = [
        (512, 49, 1000),
        (2048, 49, 1000),
        (1280, 49, 1000),
        (64, 64, 10),
        (96, 9, 100),
        (20, 3136, 17),
        (MAX_CHANNELS, 1, 10),
    ];
    let cases: Vec<Case> = shapes
        .iter()
        .flat_map(|&(c, hw, out)| {
            let head = Head {
                n: 1,
                c,
                hw,
                out,
                bias: true,
                act: Activation::None,
            };
            head.cases(&[])
        })
        .collect();
    check("pool_linear", &cases);
}

#[test]
fn nan_and_inf_propagate() {
    // Image 0, channel 3 holds a NaN: its pooled value and every y of the image are NaN.
    // Image 1, channel 5 holds +inf: pooled +inf, each y ±inf by the sign of its weight
    // (relu takes -inf to 0). Image 2 is untouched.
    let (c, hw) = (40, 4);
    let poison = [(3 * hw + 1, f32::NAN), ((c + 5) * hw + 2, f32::INFINITY)];
    let mut cases = Vec::new();
    for act in ACTS {
        let head = Head {
            n: 3,
            c,
            hw,
            out: 9,
            bias: true,
            act,
        };
        cases.extend(head.cases(&poison));
    }
    check("pool_linear", &cases);
}
