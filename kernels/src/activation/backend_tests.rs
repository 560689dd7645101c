//! relu and relu6 on every backend (`testing::everywhere`): the SIMD kernels on every
//! instruction set (in place too) and `activation_f32` on CUDA, against the reference loops.

use super::reference::{relu, relu6};
use super::{cpu, cuda};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

pub(crate) const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

/// Every SIMD tail around 8 and 16 lanes, one warp minus one, a few blocks, and a CUDA
/// block tail of 3.
pub(crate) const LENS: [usize; 18] = [
    1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 1000, 4099,
];

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

/// A comparison and a select: bit-identical everywhere.
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
            let name = format!("activation {act:?} len {len}");
            let case = Case::new(&name, vec![x], expected, Allow::Bits)
                .cuda(cuda::activate(act, len).unwrap())
                .cpu(move |isa, _, x, y| {
                    cpu::activate(isa, act, x[0], y);
                    let mut in_place = x[0].to_vec();
                    cpu::activate_in_place(isa, act, &mut in_place);
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
