use super::reference::{relu, relu6};
use crate::testing::assert_near;

const INF: f32 = f32::INFINITY;

#[test]
fn relu_clamps_below_and_keeps_nan() {
    let x = [-1.0, 0.0, 2.5, f32::NAN, -INF, INF, -1e-30];
    let mut y = [1.0; 7];
    relu(&x, &mut y);
    assert_near(&y, &[0.0, 0.0, 2.5, f32::NAN, 0.0, INF, 0.0]);
}

#[test]
fn relu6_clamps_both_sides_and_keeps_nan() {
    let x = [-1.0, 3.0, 6.0, 7.0, f32::NAN, INF, -INF];
    let mut y = [1.0; 7];
    relu6(&x, &mut y);
    assert_near(&y, &[0.0, 3.0, 6.0, 6.0, f32::NAN, 6.0, 0.0]);
}

/// `Simd::div6` (q = v/6 by a multiply and an FMA correction on x86) against the ISA's own
/// IEEE division, on every float in [2^-24, 6] (hardsigmoid's relu6 outputs are 0 or
/// ≥ 2^-22) and +0 and NaN (not -0 or ±inf, which relu6 never outputs): the exact activations stay bit-identical to the reference
/// and to CUDA's `/`. Scalar's div6 is the division itself.
#[test]
fn div6_is_a_correctly_rounded_division() {
    use crate::simd::dispatch;
    use crate::Isa;
    for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
        // SAFETY: dispatch! checks the ISA; the body reads and writes only its own arrays.
        let bad = unsafe { dispatch!(isa, div6_mismatches()) };
        assert_eq!(bad, None, "{isa}: v / 6 differs at this v");
    }
}

/// The first float whose `div6` differs from a division by 6. Needs S's features.
#[inline(always)]
unsafe fn div6_mismatches<S: crate::simd::Simd>() -> Option<f32> {
    let (lo, hi) = (2f32.powi(-24).to_bits(), 6f32.to_bits());
    let specials = [0.0, f32::NAN].map(f32::to_bits);
    let chunks = (lo..=hi).step_by(S::LANES).chain(specials);
    let (mut v, mut got, mut want) = ([0f32; 16], [0f32; 16], [0f32; 16]);
    for first in chunks {
        for (j, v) in v.iter_mut().enumerate().take(S::LANES) {
            // Past hi (the last chunk), or after a special: repeat the chunk's first float.
            let bits = first + j as u32;
            *v = f32::from_bits(if first < lo || bits > hi { first } else { bits });
        }
        let x = S::load(v.as_ptr());
        S::store(got.as_mut_ptr(), S::div6(x));
        S::store(want.as_mut_ptr(), S::div(x, S::splat(6.0)));
        let differs = |j: &usize| got[*j].to_bits() != want[*j].to_bits();
        if let Some(j) = (0..S::LANES).find(differs) {
            return Some(v[j]);
        }
    }
    None
}

/// The activations through e^x where it over- or underflows (AVX-512 scales by `vscalefps`
/// there, the others clamp and select), one at a time so that the max-relative rule does
/// not hide a small value's error behind a large one: within the backend tests' allowance
/// of the f64 reference (`backend_tests::allow`), ±inf and NaN included.
#[test]
fn exp_activations_at_the_edges_of_the_range() {
    use super::backend_tests::{allow, ALL_ACTS};
    use super::{cpu, reference};
    use crate::testing::assert_close;
    use crate::Isa;
    let edges = [
        87.0,
        87.4,
        88.2,
        88.4,
        88.8,
        89.5,
        100.0,
        103.9,
        104.5,
        1e30,
        INF,
        f32::NAN,
    ];
    let inputs = edges.iter().flat_map(|&v| [v, -v, v / 2.0, -v / 2.0]);
    for act in ALL_ACTS.into_iter().filter(|a| !a.is_exact()) {
        for v in inputs.clone() {
            // 16 copies: whole vectors, not the scalar tail.
            let (x, mut want) = ([v; 16], [0.0; 16]);
            reference::activate(act, &x, &mut want);
            for isa in Isa::available() {
                let mut got = [0.0; 16];
                cpu::activate(isa, act, &x, &mut got, 1);
                let what = format!("{} of {v} on {isa}", act.describe());
                assert_close(&got, &want, allow(act).tol(), &what);
            }
        }
    }
}
