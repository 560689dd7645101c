//! Inference batch norm over NCHW (`torch.nn.functional.batch_norm` with `training=False`),
//! and the per-channel scale and shift that fold it into the preceding conv.

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

/// x, y: (n, c, spatial)  weight, bias, mean, var: (c)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormParams {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// h*w; 1 after a linear layer (BatchNorm1d on (n, c)).
    pub spatial: usize,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl BatchNormParams {
    /// Checks every size is at least 1, `eps` is finite and at least 0, and the element count
    /// fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[("n", self.n), ("c", self.c), ("spatial", self.spatial)])?;
        check_eps(self.eps)?;
        checked_numel("input", &[self.n, self.c, self.spatial])?;
        Ok(())
    }
}

/// Per-channel scale and shift with `y = x*scale + shift`, computed in f64:
/// `scale = weight / sqrt(var + eps)`, `shift = bias - mean * scale` (weight defaults to 1,
/// bias to 0). The engine uses this to fold batch norm into the preceding conv
/// (`w' = w*scale[oc]`, `b' = b*scale + shift`).
pub fn scale_shift(
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    // weight, bias, mean, var: (c)
    let c = mean.len();
    assert_eq!(var.len(), c, "scale_shift: var length");
    weight.inspect(|w| assert_eq!(w.len(), c, "scale_shift: weight length"));
    bias.inspect(|b| assert_eq!(b.len(), c, "scale_shift: bias length"));
    (0..c)
        .map(|i| {
            let w = weight.map_or(1.0, |w| f64::from(w[i]));
            let b = bias.map_or(0.0, |b| f64::from(b[i]));
            let scale = w / (f64::from(var[i]) + f64::from(eps)).sqrt();
            let shift = b - f64::from(mean[i]) * scale;
            (scale as f32, shift as f32)
        })
        .unzip()
}
