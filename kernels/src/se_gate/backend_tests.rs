//! The SE gate on every backend (`testing::everywhere`): the CPU's SIMD mean and linear
//! kernels on every instruction set and `se_gate_f32` on CUDA, against the unfused
//! reference ops.

use super::{cpu::SeGateCpu, cuda, reference, SeGateParams};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

// Two f32 sums (pool: hw terms, layers: c then hidden products) in another order than the
// reference's, through a sigmoid whose slope is at most 1/4: rel 1e-5 of the largest
// gate, as pool_linear's. NaN in x makes that image's gates NaN on every backend.
const RTOL: f64 = 1e-5;

/// (n, c, hw, hidden): SIMD tails in c and hidden, MobileNetV3's 16 channels at 56x56
/// (squeezed to 8), EfficientNet's 240 at 28x28 (squeezed to 10), a 1x1 map, batch 3.
const SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 3136, 8),
    (1, 240, 784, 10),
    (3, 17, 49, 4),
    (2, 96, 1, 24),
    (1, 1, 5, 1),
    (3, 33, 9, 65),
    (1, 576, 49, 144),
];

const ACTS: [(Activation, Activation); 3] = [
    (Activation::Relu, Activation::HardSigmoid),
    (Activation::Silu, Activation::Sigmoid),
    (Activation::Relu, Activation::Sigmoid),
];

#[test]
fn se_gate_matches_the_unfused_ops() {
    let mut cases = Vec::new();
    for (s, &(n, c, hw, hidden)) in SHAPES.iter().enumerate() {
        let (act, gate) = ACTS[s % ACTS.len()];
        let p = SeGateParams {
            n,
            c,
            hw,
            hidden,
            act,
            gate,
        };
        p.validate().unwrap();
        let mut rng = Rng::new(s as u64 + 11);
        let mut x = rng.vec(n * c * hw);
        // An offset, so the means are not all near zero.
        x.iter_mut().for_each(|v| *v += 0.25);
        if s == 2 {
            x[c * hw + 3] = f32::NAN; // image 1's gates all NaN
        }
        let (w1, w2) = (rng.vec(hidden * c), rng.vec(c * hidden));
        for bias in [true, false] {
            let (b1, b2) = (rng.vec(hidden), rng.vec(c));
            let b = match bias {
                true => [Some(&b1[..]), Some(&b2[..])],
                false => [None, None],
            };
            let mut want = vec![0.0; n * c];
            let mut scratch = vec![0.0; p.scratch_len()];
            reference::se_gate(&p, &x, [&w1, &w2], b, &mut want, &mut scratch);
            let cuda = cuda::se_gate(&p, [&w1, &w2], b).unwrap();
            let (b1, b2) = (bias.then(|| b1.clone()), bias.then(|| b2.clone()));
            let (w1, w2) = (w1.clone(), w2.clone());
            let name = format!(
                "se_gate n{n} c{c} hw{hw} hidden{hidden} {} {} bias{}",
                act.describe(),
                gate.describe(),
                bias as u8
            );
            let case = Case::new(name, vec![x.clone()], want, Allow::Max(RTOL, 1e-6))
                .cuda(cuda)
                .cpu(move |isa, threads, inputs, y| {
                    let gate = SeGateCpu::new(&p, [&w1, &w2], [b1.as_deref(), b2.as_deref()], isa);
                    let mut scratch = vec![0.0; gate.scratch_len()];
                    gate.run(inputs[0], y, &mut scratch, threads);
                });
            cases.push(case);
        }
    }
    check("se_gate", &cases);
}

#[test]
fn a_gate_that_is_not_a_sigmoid_is_refused() {
    let p = SeGateParams {
        n: 1,
        c: 4,
        hw: 4,
        hidden: 2,
        act: Activation::Relu,
        gate: Activation::Relu,
    };
    assert!(p.validate().unwrap_err().0.contains("not sigmoid"));
    assert!(cuda::se_gate(&p, [&[0.0; 8], &[0.0; 8]], [None, None]).is_err());
}
