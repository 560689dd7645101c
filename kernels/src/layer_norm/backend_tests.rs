//! Layer norm on every backend (`testing::everywhere`): the SIMD kernel on every
//! instruction set, and on CUDA `layer_norm_block_f32` and `layer_norm_thread_f32` on every
//! shape, whichever `layer_norm` would pick for it, against the f64 reference.
//!
//! Tolerance: the kernels sum in f32, in other orders than the reference's f64. The mean's
//! rounding scales with mean |x| of the line (not with x - mean), the rest with the
//! output's own terms: rel 1e-5 of `(|x - mean| + mean |x|)·rstd·|weight| + |bias|`, times
//! 3 for the steepest activation tested (elu(2.5)), plus 0.02 for the activations'
//! absolute rounding (~2e-7, `activation::backend_tests::allow`). PyTorch's own f32 layer
//! norm is matched to ~1e-5 relative; a one-pass variance (E[x²] − mean²) fails the
//! offset lines below by orders of magnitude.

use super::cuda::{launch_layer_norm_block_f32, launch_layer_norm_thread_f32};
use super::{cpu, cuda, reference, LayerNormParams};
use crate::activation::backend_tests::ALL_ACTS;
use crate::cuda::{CudaOp, Launch};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

/// Builds one kernel's launch for a shape, weight, bias and activation.
type LaunchFn = fn(&LayerNormParams, bool, bool, Activation) -> Launch;

/// One input with its weight and bias.
struct Data {
    x: Vec<f32>,
    weight: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
}

/// See the module doc: each output's terms, from the f64 mean, mean |x| and rstd of its
/// line.
fn magnitudes(p: &LayerNormParams, d: &Data) -> Vec<f32> {
    let mut mags = vec![0.0; d.x.len()];
    for o in 0..p.outer {
        for i in 0..p.inner {
            let at = |k: usize| (o * p.norm + k) * p.inner + i;
            let v = |k: usize| f64::from(d.x[at(k)]);
            let n = p.norm as f64;
            let mean = (0..p.norm).map(v).sum::<f64>() / n;
            let mean_abs = (0..p.norm).map(|k| v(k).abs()).sum::<f64>() / n;
            let var = (0..p.norm).map(|k| (v(k) - mean).powi(2)).sum::<f64>() / n;
            let rstd = 1.0 / (var + f64::from(p.eps)).sqrt();
            for k in 0..p.norm {
                let w = d.weight.as_ref().map_or(1.0, |w| f64::from(w[k]).abs());
                let b = d.bias.as_ref().map_or(0.0, |b| f64::from(b[k]).abs());
                let terms = ((v(k) - mean).abs() + mean_abs) * rstd * w + b;
                mags[at(k)] = (3.0 * terms + 0.02) as f32;
            }
        }
    }
    mags
}

/// `d` through `layer_norm`'s own choice of CUDA kernel and the CPU kernel, and through
/// each CUDA kernel alone, against the reference.
fn cases(p: LayerNormParams, d: Data, act: Activation, what: &str) -> Vec<Case> {
    p.validate().unwrap();
    let (w, b) = (d.weight.as_deref(), d.bias.as_deref());
    let mut expected = vec![0.0; d.x.len()];
    reference::layer_norm(&p, &d.x, w, b, act, &mut expected);
    let mags = magnitudes(&p, &d);
    let allow = || Allow::Given(1e-5, mags.clone());
    let name = format!(
        "layer_norm {p:?} weight {} bias {} {} {what}",
        w.is_some(),
        b.is_some(),
        act.describe()
    );
    let kernels: [(&str, LaunchFn); 2] = [
        ("block", launch_layer_norm_block_f32),
        ("thread", launch_layer_norm_thread_f32),
    ];
    let chosen = cuda::layer_norm(&p, w, b, act).unwrap();
    let mut cases: Vec<Case> = kernels
        .into_iter()
        .map(|(kernel, launch)| {
            let op = CudaOp {
                consts: chosen.consts.clone(),
                launches: vec![launch(&p, w.is_some(), b.is_some(), act)],
            };
            let name = format!("{name} ({kernel} kernel)");
            Case::new(name, vec![d.x.clone()], expected.clone(), allow()).cuda(op)
        })
        .collect();
    let case = Case::new(name, vec![d.x.clone()], expected, allow())
        .cuda(chosen)
        .cpu(move |isa, threads, x, y| {
            let (w, b) = (d.weight.as_deref(), d.bias.as_deref());
            cpu::layer_norm(isa, &p, x[0], w, b, act, y, threads)
        });
    cases.push(case);
    cases
}

/// x = offset + scale·u with u uniform in [-1, 1); weight in [0.5, 1.5) (its sign does not
/// matter to the sums), bias in [-1, 1), each when asked for.
fn data(p: &LayerNormParams, seed: u64, offset: f32, scale: f32, affine: [bool; 2]) -> Data {
    let mut rng = Rng::new(seed);
    let x = rng
        .vec(p.len())
        .iter()
        .map(|u| offset + scale * u)
        .collect();
    let weight = affine[0].then(|| rng.vec(p.norm).iter().map(|u| 1.0 + u / 2.0).collect());
    let bias = affine[1].then(|| rng.vec(p.norm));
    Data { x, weight, bias }
}

/// Every weight/bias combination, in turn.
const AFFINE: [[bool; 2]; 4] = [[true, true], [false, false], [true, false], [false, true]];

#[test]
fn layer_norm_matches_reference() {
    // Norms around the SIMD widths and a warp, ConvNeXt's 96 and a transformer's 768;
    // inner 1 (rows), 3 and 49 (strips with tails), 55·57 (a 56x56-ish plane: 49 column
    // blocks, and enough work for two threads at norm 96); outer 1 to 3. Each shape has
    // one weight/bias combination and activation, the lists cycled.
    let mut all = Vec::new();
    let mut n = 0;
    for norm in [1, 7, 8, 9, 17, 33, 96, 768] {
        for inner in [1, 3, 49, 55 * 57] {
            let outer = n % 3 + 1;
            if norm * inner * outer > 400_000 {
                continue;
            }
            let p = LayerNormParams {
                outer,
                norm,
                inner,
                eps: 1e-5,
            };
            let affine = AFFINE[n % AFFINE.len()];
            let act = ALL_ACTS[n % ALL_ACTS.len()];
            let d = data(&p, n as u64 + 1, 0.5, 2.0, affine);
            all.extend(cases(p, d, act, "(x in [-1.5, 2.5))"));
            n += 1;
        }
    }
    check("layer_norm", &all);
}

#[test]
fn layer_norm_convnext_shapes_with_every_activation() {
    // ConvNeXt-T stage 1: NHWC over C (3136 rows of 96, split over threads) and the
    // channel layer norm of NCHW (96 channels of 56x56), weight and bias given; every
    // activation on a small shape of each kind, with every weight/bias combination.
    let mut all = Vec::new();
    for (outer, inner) in [(56 * 56, 1), (1, 56 * 56)] {
        let p = LayerNormParams {
            outer,
            norm: 96,
            inner,
            eps: 1e-6,
        };
        let d = data(&p, inner as u64, 0.0, 1.0, [true, true]);
        all.extend(cases(p, d, Activation::None, "(ConvNeXt stage 1)"));
    }
    for (a, act) in ALL_ACTS.into_iter().enumerate() {
        for (outer, norm, inner) in [(5, 24, 1), (2, 24, 33)] {
            let p = LayerNormParams {
                outer,
                norm,
                inner,
                eps: 1e-5,
            };
            let d = data(&p, 100 + a as u64, -0.25, 3.0, AFFINE[a % AFFINE.len()]);
            all.extend(cases(p, d, act, "(every activation)"));
        }
    }
    check("layer_norm", &all);
}

#[test]
fn layer_norm_offset_lines_need_two_passes() {
    // Lines with mean 100 and a spread of ±0.01: var ≈ 3e-5, below the f32 rounding of
    // E[x²] ≈ 1e4 (1e-3). Only a two-pass variance gets rstd right.
    let mut all = Vec::new();
    for (outer, norm, inner) in [(3, 768, 1), (2, 96, 40), (2, 33, 3)] {
        let p = LayerNormParams {
            outer,
            norm,
            inner,
            eps: 1e-12,
        };
        let d = data(&p, norm as u64, 100.0, 0.01, [true, true]);
        all.extend(cases(p, d, Activation::None, "(x in 100 ± 0.01)"));
    }
    check("layer_norm", &all);
}

#[test]
fn layer_norm_propagates_nan_and_infinities() {
    // Rows of 33 (one past a warp and the SIMD widths): 0 plain, 1 with a NaN, 2 with
    // +inf, 3 with -inf, 4 with both, 5 constant (variance 0: y = bias exactly), 6 with a
    // NaN in the SIMD tail. Every line but 0 and 5 comes out all NaN, as in PyTorch.
    let norm = 33;
    let mut x = Rng::new(7).vec(7 * norm);
    x[norm + 5] = f32::NAN;
    x[2 * norm + 32] = f32::INFINITY;
    x[3 * norm] = f32::NEG_INFINITY;
    x[4 * norm + 1] = f32::INFINITY;
    x[4 * norm + 20] = f32::NEG_INFINITY;
    x[5 * norm..6 * norm].fill(0.75);
    x[6 * norm + 32] = f32::NAN;
    // As rows (inner 1), and as columns: the same values transposed to (norm, 7) and
    // repeated to (norm, 35) so the thread kernel's warps get a tail.
    let lines = 35;
    let transposed: Vec<f32> = (0..norm * lines)
        .map(|k| x[(k % lines % 7) * norm + k / lines])
        .collect();
    let mut all = Vec::new();
    for (outer, inner, x) in [(7, 1, x), (1, lines, transposed)] {
        let p = LayerNormParams {
            outer,
            norm,
            inner,
            eps: 1e-5,
        };
        let mut d = data(&p, 3, 0.0, 1.0, [true, true]);
        d.x = x;
        all.extend(cases(
            p,
            d,
            Activation::Relu,
            "(lines with NaN and infinities)",
        ));
    }
    check("layer_norm", &all);
}
