//! Softmax along one axis (`torch.softmax(x, dim)`), x viewed as (outer, axis, inner).

use crate::error::{check_dims, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
pub mod reference;

#[cfg(test)]
mod cuda_tests;
#[cfg(test)]
mod tests;

/// x, y: (outer, axis, inner); for softmax over dim `d` of a shape `s`:
/// `outer = prod(s[..d])`, `axis = s[d]`, `inner = prod(s[d+1..])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    pub outer: usize,
    pub axis: usize,
    pub inner: usize,
}

impl SoftmaxParams {
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[
            ("outer", self.outer),
            ("axis", self.axis),
            ("inner", self.inner),
        ])?;
        checked_numel("input", &[self.outer, self.axis, self.inner])?;
        Ok(())
    }
}
