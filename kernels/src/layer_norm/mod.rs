//! Layer norm over one axis (`torch.nn.functional.layer_norm` over the last dim, and the
//! channel layer norm of NCHW), x viewed as (outer, norm, inner): every (o, i) line of
//! `norm` values, `inner` apart, is normalised on its own.
//!
//! - ConvNeXt's `layer_norm` on NHWC over C: outer = n·h·w, norm = c, inner = 1;
//! - the same over C of NCHW (ConvNeXt's downsampling `LayerNorm2d`): outer = n, norm = c,
//!   inner = h·w.

use crate::error::{check_dims, check_eps, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

/// x, y: (outer, norm, inner)  weight, bias: (norm)
///
/// `y = act((x - mean) / sqrt(var + eps) * weight[k] + bias[k])` along each line, var the
/// biased variance (a sum over `norm`, divided by `norm`), as PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormParams {
    /// Product of the dimensions before the normalised one.
    pub outer: usize,
    /// Size of the normalised dimension (weight's and bias's length).
    pub norm: usize,
    /// Product of the dimensions after it: 1 for a layer norm over the last dim.
    pub inner: usize,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl LayerNormParams {
    /// Checks every size is at least 1, `eps` is finite and at least 0, and the element
    /// count fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[
            ("outer", self.outer),
            ("norm", self.norm),
            ("inner", self.inner),
        ])?;
        check_eps(self.eps)?;
        checked_numel("input", &[self.outer, self.norm, self.inner])?;
        Ok(())
    }

    /// Elements of x (and of y).
    pub fn len(&self) -> usize {
        self.outer * self.norm * self.inner
    }

    /// Whether x is empty (never, once `validate` passed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Panics unless x, y, weight and bias are the lengths `self` gives them: the kernels'
    /// shared precondition.
    pub(crate) fn check(&self, x: &[f32], weight: Option<&[f32]>, bias: Option<&[f32]>, y: &[f32]) {
        // x, y: (outer, norm, inner)  weight, bias: (norm)
        assert_eq!(x.len(), self.len(), "layer_norm: x length");
        assert_eq!(y.len(), self.len(), "layer_norm: y length");
        weight.inspect(|w| assert_eq!(w.len(), self.norm, "layer_norm: weight length"));
        bias.inspect(|b| assert_eq!(b.len(), self.norm, "layer_norm: bias length"));
    }
}
