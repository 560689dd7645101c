//! The residual add (with its fused activation) on every backend (`testing::everywhere`):
//! the SIMD kernel on every instruction set and `add_f32` on CUDA, against the reference.

use super::{cpu, cuda, reference};
use crate::activation::backend_tests::{allow, values, ALL_ACTS, LENS};
use crate::activation::reference::apply;
use crate::testing::everywhere::{check, Case};
use crate::Activation;

/// One f32 add, rounded once either way, then the activation: bit-identical everywhere
/// where that is a select, within the activation's allowance where it goes through e^x.
#[test]
fn add_matches_reference() {
    let mut cases = Vec::new();
    for act in ALL_ACTS {
        for len in LENS {
            // NaN, ±inf and ±0 in both, at different places (inf + -inf makes NaN).
            let seed = 2 * cases.len() as u64 + 1;
            let a = values(len, seed);
            let mut b = values(len, seed + 1);
            b.rotate_left(len.min(3));
            let mut expected = vec![0.0; len];
            reference::add(&a, &b, &mut expected);
            expected.iter_mut().for_each(|v| *v = apply(act, *v));
            let case = Case::new(
                format!("add {} len {len}", act.describe()),
                vec![a, b],
                expected,
                allow(act),
            )
            .cuda(cuda::add(len, act).unwrap())
            .cpu(move |isa, threads, x, y| cpu::add(isa, x[0], x[1], act, y, threads));
            cases.push(case);
        }
    }
    check("add", &cases);
}

#[test]
fn add_nothing_launches_nothing() {
    assert!(cuda::add(0, Activation::None).unwrap().launches.is_empty());
}
