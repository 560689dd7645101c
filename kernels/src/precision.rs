//! The arithmetic a session's convolutions run in on the GPU.
//!
//! Inputs, outputs and every tensor between layers stay f32 in all modes; only the
//! implicit-GEMM convolutions change how they multiply, always accumulating in fp32:
//! - `Fp32`: fp32 FMA on the CUDA cores, the reference arithmetic.
//! - `Tf32`: tensor cores (`mma.sync` m16n8k8) on operands rounded to tf32 (10-bit
//!   mantissa, fp32 range): weights rounded once at session build, activations as loaded.
//! - `Fp16`: tensor cores (m16n8k16) on fp16 operands (10-bit mantissa, |x| ≤ 65504):
//!   weights converted at session build with `half`, activations as loaded. An activation
//!   past 65504 becomes ±inf, so this mode is for networks whose activations stay in range
//!   (batch-normalised CNNs do).
//!
//! The CPU kernels are fp32 only: asking them for another mode is an error, not a silent
//! fp32 run.

use std::fmt;
use std::str::FromStr;

/// The arithmetic of a CUDA session's convolutions; the CPU runs fp32 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 throughout, on the CUDA cores.
    #[default]
    Fp32,
    /// Convolutions on the tensor cores with operands rounded to tf32 (11 significant bits),
    /// f32 accumulation.
    Tf32,
    /// Convolutions on the tensor cores with fp16 operands, f32 accumulation.
    Fp16,
}

impl Precision {
    /// Every precision, in order.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Tf32, Precision::Fp16];

    /// The name as the CLI spells it: "fp32", "tf32" or "fp16".
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Fp16 => "fp16",
        }
    }

    /// `compare`'s default tolerance for this mode (docs/architecture.md, Numerics):
    /// max |out − ref| ≤ rtol · max|ref| + atol per output. fp32 reorders sums only;
    /// tf32 and fp16 keep 11 significant bits of each operand (a rounding error of up to
    /// 2^-11 ≈ 4.9e-4 per factor), which over a network of 20–50 layers comes to a few
    /// 1e-3 of the largest output.
    pub const fn tolerance(self) -> (f64, f64) {
        match self {
            Precision::Fp32 => (1e-4, 1e-6),
            Precision::Tf32 => (5e-3, 0.0),
            Precision::Fp16 => (1e-2, 0.0),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Precision, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown precision '{s}': expected fp32, tf32 or fp16"))
    }
}

/// `x` rounded to tf32 as the GPU's `cvt.rna.tf32.f32` does: to nearest, ties away from
/// zero, on the top 10 mantissa bits; the low 13 bits come out zero. NaN stays NaN and a
/// value past tf32's largest finite rounds to infinity, as on the device.
pub fn round_tf32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    // Adding half a tf32 ulp to the magnitude bits carries into the kept bits exactly
    // when the dropped ones are ≥ half: ties go away from zero (sign-magnitude format).
    f32::from_bits((x.to_bits() + 0x1000) & !0x1fff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_mode() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        assert!("bf16"
            .parse::<Precision>()
            .unwrap_err()
            .contains("fp32, tf32 or fp16"));
    }

    #[test]
    fn tf32_rounds_to_nearest_ties_away() {
        let ulp = 2f32.powi(-10); // tf32's step just above 1
        assert_eq!(round_tf32(1.0), 1.0);
        assert_eq!(round_tf32(1.0 + ulp * 0.49), 1.0);
        assert_eq!(round_tf32(1.0 + ulp * 0.5), 1.0 + ulp); // a tie: away from zero
        assert_eq!(round_tf32(-(1.0 + ulp * 0.5)), -(1.0 + ulp));
        assert_eq!(round_tf32(1.0 + ulp * 0.51), 1.0 + ulp);
        assert_eq!(round_tf32(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_tf32(f32::MAX), f32::INFINITY);
        assert!(round_tf32(f32::from_bits(0x7f80_0001)).is_nan());
        assert_eq!(round_tf32(0.1).to_bits() & 0x1fff, 0);
    }
}
