//! Every activation on every backend (`testing::everywhere`): the SIMD kernels on every
//! instruction set (in place too) and `activation_f32` on CUDA, against the reference loops.

use super::reference::{self, relu, relu6};
use super::{cpu, cuda};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

pub(crate) const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

/// Every activation, the parametrised ones with PyTorch's defaults and with other values
/// (an infinite clamp bound, a negative slope, a large alpha).
pub(crate) const ALL_ACTS: [Activation; 17] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::Clamp {
        min: -1.0,
        max: 1.0,
    },
    Activation::Clamp {
        min: f32::NEG_INFINITY,
        max: 2.5,
    },
    Activation::Clamp {
        min: 0.5,
        max: f32::INFINITY,
    },
    Activation::LeakyRelu(0.01),
    Activation::LeakyRelu(-0.3),
    Activation::HardSigmoid,
    Activation::HardSwish,
    Activation::Elu(1.0),
    Activation::Elu(2.5),
    Activation::Sigmoid,
    Activation::Silu,
    Activation::Tanh,
    Activation::Gelu,
    Activation::GeluTanh,
];

/// What a case with `act` allows against the f64 reference: bits for the exact
/// activations; for those through e^x the polynomial's few ulp, A&S's erf (1.5e-7 of the
/// input) and tanh's 1 − 2/(e^2x + 1) near 0 (~1e-7 absolute).
pub(crate) fn allow(act: Activation) -> Allow {
    match act.is_exact() {
        true => Allow::Bits,
        false => Allow::Max(1e-6, 2e-7),
    }
}

/// Every SIMD tail around 8 and 16 lanes, one warp minus one, a few blocks, and a CUDA
/// block tail of 3.
pub(crate) const LENS: [usize; 19] = [
    1,
    2,
    7,
    8,
    9,
    15,
    16,
    17,
    31,
    32,
    33,
    63,
    64,
    65,
    100,
    127,
    1000,
    4099,
    // Split over the threads (`parallel::MIN_PARALLEL_FLOATS`), into odd parts.
    crate::parallel::MIN_PARALLEL_FLOATS + 9,
];

/// Values in [-8, 8) (both sides of relu6's 6) with NaN, +inf, -inf, ±0, 6 itself and
/// values where e^x or e^-x overflows (±100, −88.5, 87.5) written over the first elements
/// and every 97th.
pub(crate) fn values(len: usize, seed: u64) -> Vec<f32> {
    const SPECIAL: [f32; 10] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        6.0,
        -88.5,
        -100.0,
        100.0,
        87.5,
    ];
    let mut x: Vec<f32> = Rng::new(seed).vec(len).iter().map(|v| v * 8.0).collect();
    for (k, v) in x.iter_mut().enumerate() {
        if k < SPECIAL.len() || k % 97 == 0 {
            *v = SPECIAL[(k / 97 + k) % SPECIAL.len()];
        }
    }
    x
}

/// Every activation over SIMD tails and blocks, NaN, ±inf and ±0: bit-identical where
/// it is a comparison and a select, within [`allow`] where it goes through e^x.
#[test]
fn activate_matches_reference() {
    let mut cases = Vec::new();
    for act in ALL_ACTS {
        for len in LENS {
            let x = values(len, cases.len() as u64 + 1);
            let mut expected = vec![0.0; len];
            match act {
                Activation::Relu => relu(&x, &mut expected),
                Activation::Relu6 => relu6(&x, &mut expected),
                act => reference::activate(act, &x, &mut expected),
            }
            let name = format!("activation {} len {len}", act.describe());
            let case = Case::new(&name, vec![x], expected, allow(act))
                .cuda(cuda::activate(act, len).unwrap())
                .cpu(move |isa, threads, x, y| {
                    cpu::activate(isa, act, x[0], y, threads);
                    let mut in_place = x[0].to_vec();
                    cpu::activate_in_place(isa, act, &mut in_place, threads);
                    let same = in_place
                        .iter()
                        .zip(&*y)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{name} {isa}: in place differs from out of place");
                });
            cases.push(case);
        }
    }
    check("activation", &cases);
}

#[test]
fn activate_nothing_launches_nothing() {
    assert!(cuda::activate(Activation::Relu, 0)
        .unwrap()
        .launches
        .is_empty());
}
