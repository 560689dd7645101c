//! `add_f32` against the reference loops, through the CUDA test harness (NVRTC compile,
//! CPU emulation, and the GPU when there is one).

use super::cuda::add;
use super::reference;
use crate::activation::cuda_tests::{values, LENS};
use crate::cuda::testing::{check, Case};
use crate::Activation;

// One f32 add, rounded once either way, then a select: exact.
const RTOL: f64 = 0.0;

#[test]
fn add_matches_reference() {
    let mut cases = Vec::new();
    for act in [Activation::None, Activation::Relu, Activation::Relu6] {
        for len in LENS {
            // NaN, ±inf and ±0 in both, at different places (inf + -inf makes NaN).
            let seed = 2 * cases.len() as u64 + 1;
            let a = values(len, seed);
            let mut b = values(len, seed + 1);
            b.rotate_left(len.min(3));
            let mut expected = vec![0.0; len];
            reference::add(&a, &b, &mut expected);
            expected.iter_mut().for_each(|v| *v = act.apply(*v));
            cases.push(Case {
                name: format!("add {act:?} len {len}"),
                op: add(len, act).unwrap(),
                inputs: vec![a, b],
                expected,
                rtol: RTOL,
            });
        }
    }
    check("add", &cases);
}

#[test]
fn add_nothing_launches_nothing() {
    assert!(add(0, Activation::None).unwrap().launches.is_empty());
}
