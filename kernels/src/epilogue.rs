//! What a kernel does to each output value before storing it: the fused epilogue of
//! conv2d and friends, `y = act(acc + bias[c] + residual)`, in that order, as a ResNet block
//! computes `relu(bn(conv(x)) + identity)`.

/// The activation applied last: PyTorch's definitions, NaN in, NaN out.
///
/// The piecewise-linear ones (`None` to `HardSwish`) are computed the same way on every
/// ISA and on CUDA, bit for bit ([`Activation::is_exact`]). The others go through e^x:
/// on the CPU, [`Activation::apply`] and every SIMD path use one polynomial e^x (within
/// 2 ulp, saturating below -87.3 and above 88.3), so tails and vector bodies agree to a
/// few ulp; CUDA uses its own `expf`/`erff`/`tanhf`. Against exact math they are within
/// ~1e-6 of the largest output (gelu: A&S 7.1.26's erf, 1.5e-7 absolute).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// No activation.
    #[default]
    None,
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
    /// min(max(x, min), max): hardtanh, clamp (a bound may be infinite).
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound (≥ min).
        max: f32,
    },
    /// x > 0 ? x : slope·x
    LeakyRelu(f32),
    /// relu6(x + 3) / 6
    HardSigmoid,
    /// x · relu6(x + 3) / 6
    HardSwish,
    /// x > 0 ? x : alpha·(e^x − 1)
    Elu(f32),
    /// 1 / (1 + e^−x)
    Sigmoid,
    /// x / (1 + e^−x) (swish)
    Silu,
    /// tanh x, as 1 − 2 / (e^2x + 1)
    Tanh,
    /// x · Φ(x), Φ the standard normal CDF: PyTorch's `gelu(approximate="none")`.
    Gelu,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): `gelu(approximate="tanh")`.
    GeluTanh,
}

impl Activation {
    /// Scalar form, the definition the SIMD forms follow. NaN propagates, as in PyTorch.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => {
                if v < 0.0 {
                    0.0
                } else {
                    v
                }
            }
            Activation::Relu6 => v.clamp(0.0, 6.0),
            // Written as the SIMD form computes it (x86 min/max keep NaN in their second
            // operand), so the two agree bit for bit; f32::clamp would panic on NaN bounds.
            Activation::Clamp { min, max } => {
                let v = if min > v { min } else { v };
                if max < v {
                    max
                } else {
                    v
                }
            }
            Activation::LeakyRelu(slope) => {
                if v > 0.0 {
                    v
                } else {
                    v * slope
                }
            }
            Activation::HardSigmoid => (v + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::HardSwish => v * Activation::HardSigmoid.apply(v),
            // SAFETY: the scalar form needs no CPU feature.
            _ => unsafe { <crate::simd::Scalar as crate::simd::Simd>::act(v, self) },
        }
    }

    /// Whether every ISA and CUDA compute this activation bit for bit alike (no e^x).
    pub fn is_exact(self) -> bool {
        matches!(
            self,
            Activation::None
                | Activation::Relu
                | Activation::Relu6
                | Activation::Clamp { .. }
                | Activation::LeakyRelu(_)
                | Activation::HardSigmoid
                | Activation::HardSwish
        )
    }

    /// Whether x ≤ y implies act(x) ≤ act(y), so that it commutes with a max (a max pool).
    pub fn is_non_decreasing(self) -> bool {
        match self {
            Activation::LeakyRelu(slope) => slope >= 0.0,
            Activation::Elu(alpha) => alpha >= 0.0,
            Activation::HardSwish | Activation::Silu | Activation::Gelu | Activation::GeluTanh => {
                false
            }
            _ => true,
        }
    }

    /// The name PyTorch and the graph format give it, with its parameters.
    pub fn describe(self) -> String {
        match self {
            Activation::None => "none".into(),
            Activation::Relu => "relu".into(),
            Activation::Relu6 => "relu6".into(),
            Activation::Clamp { min, max } => format!("clamp({min}, {max})"),
            Activation::LeakyRelu(s) => format!("leaky_relu({s})"),
            Activation::HardSigmoid => "hardsigmoid".into(),
            Activation::HardSwish => "hardswish".into(),
            Activation::Elu(a) => format!("elu({a})"),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Silu => "silu".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Gelu => "gelu".into(),
            Activation::GeluTanh => "gelu(tanh)".into(),
        }
    }
}
