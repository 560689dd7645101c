//! `activation_f32` against the reference loops, through the CUDA test harness (NVRTC
//! compile, CPU emulation, and the GPU when there is one).

use super::cuda::activate;
use super::reference::{relu, relu6};
use crate::cuda::testing::{check, Case};
use crate::testing::Rng;
use crate::Activation;

// A comparison and a select: exact.
const RTOL: f64 = 0.0;

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

/// One element, one warp minus one, a few blocks, and a block tail of 3.
pub(crate) const LENS: [usize; 4] = [1, 31, 1000, 4099];

/// Values in [-8, 8) (both sides of relu6's 6) with NaN, +inf, -inf, ±0 and 6 itself
/// written over the first elements and every 97th.
pub(crate) fn values(len: usize, seed: u64) -> Vec<f32> {
    const SPECIAL: [f32; 6] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 6.0];
    let mut x: Vec<f32> = Rng::new(seed).vec(len).iter().map(|v| v * 8.0).collect();
    for (k, v) in x.iter_mut().enumerate() {
        if k < SPECIAL.len() || k % 97 == 0 {
            *v = SPECIAL[(k / 97 + k) % SPECIAL.len()];
        }
    }
    x
}

#[test]
fn activate_matches_reference() {
    let mut cases = Vec::new();
    for act in ACTS {
        for len in LENS {
            let x = values(len, cases.len() as u64 + 1);
            let mut expected = vec![0.0; len];
            match act {
                Activation::None => expected.copy_from_slice(&x),
                Activation::Relu => relu(&x, &mut expected),
                Activation::Relu6 => relu6(&x, &mut expected),
            }
            cases.push(Case {
                name: format!("activation {act:?} len {len}"),
                op: activate(act, len).unwrap(),
                inputs: vec![x],
                expected,
                rtol: RTOL,
            });
        }
    }
    check("activation", &cases);
}

#[test]
fn activate_nothing_launches_nothing() {
    assert!(activate(Activation::Relu, 0).unwrap().launches.is_empty());
}
