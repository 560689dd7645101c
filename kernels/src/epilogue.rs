//! What a kernel does to each output value before storing it: the fused epilogue of
//! conv2d and friends, `y = act(acc + bias[c] + residual)`, in that order, as a ResNet block
//! computes `relu(bn(conv(x)) + identity)`.

/// The activation applied last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// No activation.
    #[default]
    None,
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
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
        }
    }
}
