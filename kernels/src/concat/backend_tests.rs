//! `concat_part_f32`, once per input, and the CPU's threaded copy, against the reference
//! concat, on every backend (`testing::everywhere`). A copy: bit-identical.

use super::cuda::concat;
use super::{cpu, reference};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;

#[test]
fn concat_matches_reference() {
    // (outer, inner per input): channels of NCHW at batch 1 and 3 (outer = n,
    // inner = c·h·w), two and three inputs, rows not multiples of a warp, one input
    // larger than a block of 256, and outputs the CPU splits over threads (cuts inside
    // an input's run and across rows).
    let sweep: [(usize, &[usize]); 8] = [
        (1, &[1, 1]),
        (1, &[35, 70]),
        (3, &[35, 70]),
        (1, &[49, 300, 7]),
        (3, &[49, 300, 7]),
        (3, &[5, 1, 33]),
        (1, &[20_000, 9, 30_001]),
        (5, &[7_001, 0, 3]),
    ];
    let mut cases = Vec::new();
    for (outer, inner) in sweep {
        let mut rng = Rng::new(cases.len() as u64 + 1);
        let inputs: Vec<Vec<f32>> = inner.iter().map(|n| rng.vec(outer * n)).collect();
        let slices: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let mut expected = vec![0.0; outer * inner.iter().sum::<usize>()];
        reference::concat(outer, &slices, inner, &mut expected);
        cases.push(
            Case::new(
                format!("concat outer {outer} inner {inner:?}"),
                inputs,
                expected,
                Allow::Bits,
            )
            .cuda(concat(outer, inner).unwrap())
            .cpu(move |_, threads, x, y| cpu::concat(threads, outer, |i| x[i], inner, y)),
        );
    }
    check("concat", &cases);
}

#[test]
fn concat_skips_empty_inputs() {
    // An input of no columns launches nothing; the others keep their columns.
    let op = concat(2, &[3, 0, 4]).unwrap();
    assert_eq!(op.launches.len(), 2);
    let at: Vec<i64> = op
        .launches
        .iter()
        .map(|l| l.defines.iter().find(|(n, _)| *n == "AT").unwrap().1)
        .collect();
    assert_eq!(at, [0, 3]);
    assert_eq!(op.launches[1].args[0], crate::cuda::Arg::Input(2));
}
