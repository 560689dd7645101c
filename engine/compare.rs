//! Comparing outputs against PyTorch's: the numbers `kestrel compare` prints and the tests
//! assert on.

use crate::{Error, Model, Precision, SessionOptions};
use kestrel_kernels::compare::{element_error, max_finite_abs};
use kestrel_kernels::rng::Rng;

/// The default fp32 tolerance of `compare`, per output and per layer:
/// `max|out − ref| ≤ rtol · max|ref| + ATOL`. Kestrel and PyTorch sum in different orders;
/// 1e-4 of the largest magnitude covers that for deep nets while catching any wrong index.
pub const DEFAULT_RTOL: f64 = Precision::Fp32.tolerance().0;
/// The absolute term of `compare`'s tolerance: keeps an all-zero reference from demanding exact
/// zeros.
pub const ATOL: f64 = Precision::Fp32.tolerance().1;

/// How far one tensor is from its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diff {
    /// max |out − ref| over elements; infinite where a NaN or Inf does not match.
    pub max_abs: f64,
    /// max |ref| over finite elements: the scale the tolerance is relative to.
    pub max_ref: f64,
    /// The allowed max_abs: `rtol · max_ref + atol`.
    pub tolerance: f64,
}

impl Diff {
    /// max_abs relative to the reference's largest magnitude.
    pub fn rel(&self) -> f64 {
        if self.max_ref > 0.0 {
            self.max_abs / self.max_ref
        } else {
            self.max_abs
        }
    }

    /// Whether the error is within the tolerance.
    pub fn ok(&self) -> bool {
        self.max_abs <= self.tolerance
    }
}

/// Compares `out` with `reference` elementwise. NaN matches NaN and an infinity matches the
/// same infinity, as PyTorch propagates them; any other mismatch of the two is infinite.
/// Tensors of different lengths are infinitely far apart.
pub fn diff(out: &[f32], reference: &[f32], rtol: f64, atol: f64) -> Diff {
    let max_ref = max_finite_abs(reference);
    let max_abs = if out.len() != reference.len() {
        f64::INFINITY
    } else {
        out.iter()
            .zip(reference)
            .fold(0.0f64, |m, (&o, &r)| m.max(element_error(o, r)))
    };
    Diff {
        max_abs,
        max_ref,
        tolerance: rtol * max_ref + atol,
    }
}

/// A quantized tensor against its reference, counted in quantization steps: the outputs of
/// a `fake_quant` node are multiples of its scale (shifted by the zero point), so two
/// computations of one int8 model differ by whole steps where a value near a rounding tie
/// rounded the other way (PyTorch's own int8 backends differ from its reference that way).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps {
    /// The quantization step: the node's scale.
    pub step: f64,
    /// Elements equal to the reference (NaN to NaN).
    pub equal: usize,
    /// Elements one step away.
    pub one: usize,
    /// Elements further away (or a mismatched NaN, or of a tensor of another length).
    pub beyond: usize,
    /// The most steps any element is away (infinite for a mismatched NaN).
    pub most: f64,
}

impl Steps {
    /// Whether every element is within `steps` steps of its reference.
    pub fn within(&self, steps: f64) -> bool {
        self.most <= steps
    }
}

/// Counts how many quantization steps of `step` each element of `out` is from `reference`:
/// a distance is rounded to whole steps (the float arithmetic of the dequantization
/// leaves it a few ulp off).
pub fn steps(out: &[f32], reference: &[f32], step: f64) -> Steps {
    let mut s = Steps {
        step,
        equal: 0,
        one: 0,
        beyond: 0,
        most: 0.0,
    };
    if out.len() != reference.len() {
        s.beyond = out.len().max(reference.len());
        s.most = f64::INFINITY;
        return s;
    }
    for (&o, &r) in out.iter().zip(reference) {
        let k = (element_error(o, r) / step).round();
        match k {
            0.0 => s.equal += 1,
            1.0 => s.one += 1,
            _ => s.beyond += 1,
        }
        s.most = s.most.max(k);
    }
    s
}

/// How far one rounding of the input to 11 significant bits (tf32's and fp16's: every
/// element scaled by a random factor in 1 ± 2^-11) moves the model's outputs, each over
/// its largest magnitude (the most moved output counts), computed in fp32 on the CPU at
/// `batch`.
///
/// A tf32 or fp16 run rounds every conv's operands that much, layer after layer, so its
/// error against an fp32 reference cannot be expected below this: a network that
/// amplifies perturbations (the random-weight MobileNetV2 fixture turns this 4.9e-4 into
/// 6.2e-3) needs a wider tolerance than docs/architecture.md's default, one that says why.
pub fn rounding_sensitivity(model: &Model, batch: usize, input: &[f32]) -> Result<f64, Error> {
    let opts = SessionOptions {
        batch,
        ..SessionOptions::default()
    };
    let mut session = model.session(&opts)?;
    let mut outputs = |x: &[f32]| -> Result<Vec<Vec<f32>>, Error> {
        let outputs = session.run(&[x])?;
        Ok(outputs.iter().map(|o| o.data.to_vec()).collect())
    };
    let exact = outputs(input)?;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let rounded: Vec<f32> = input
        .iter()
        .map(|&v| v * (1.0 + rng.f32() * 2f32.powi(-11)))
        .collect();
    let moved = outputs(&rounded)?;
    let rel = |(m, e): (&Vec<f32>, &Vec<f32>)| diff(m, e, 0.0, 0.0).rel();
    Ok(moved.iter().zip(&exact).map(rel).fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn tolerance_is_relative_to_the_largest_reference_value() {
        let d = diff(&[1.0, 2.0005], &[1.0, 2.0], 1e-4, 1e-6);
        assert!((d.max_abs - 0.0005).abs() < 1e-6);
        assert_eq!(d.max_ref, 2.0);
        assert!((d.tolerance - 2.01e-4).abs() < 1e-9);
        assert!(!d.ok());
        assert!(diff(&[1.0, 2.0001], &[1.0, 2.0], 1e-4, 1e-6).ok());
    }

    #[test]
    fn steps_count_whole_quantization_steps() {
        let step = 0.1f32;
        let r = [0.3f32, -0.2, 1.0, f32::NAN, 0.0];
        // Equal, one step up (with the dequantization's rounding), two down, NaN, one.
        let o = [
            0.3f32,
            -0.2 + step * 1.000_001,
            1.0 - 2.0 * step,
            f32::NAN,
            -step,
        ];
        let s = super::steps(&o, &r, f64::from(step));
        assert_eq!((s.equal, s.one, s.beyond), (2, 2, 1), "{s:?}");
        assert_eq!(s.most, 2.0);
        assert!(s.within(2.0) && !s.within(1.0));
        let nan = super::steps(&[f32::NAN], &[0.0], 0.1);
        assert_eq!((nan.beyond, nan.most), (1, f64::INFINITY));
        assert_eq!(super::steps(&[0.0], &[], 0.1).beyond, 1);
    }

    #[test]
    fn nan_and_inf_must_match_exactly() {
        let nan = f32::NAN;
        assert!(diff(&[nan, f32::INFINITY], &[nan, f32::INFINITY], 1e-4, 0.0).ok());
        assert!(!diff(&[nan], &[0.0], 1e-4, 1.0).ok());
        assert!(!diff(&[f32::INFINITY], &[f32::NEG_INFINITY], 1e-4, 1.0).ok());
        assert!(!diff(&[1.0], &[1.0, 2.0], 1e-4, 1.0).ok());
    }
}
