//! Softmax along one axis (`torch.softmax(x, dim)`), x viewed as (outer, axis, inner).

use crate::error::{check_dims, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

/// x, y: (outer, axis, inner); for softmax over dim `d` of a shape `s`:
/// `outer = prod(s[..d])`, `axis = s[d]`, `inner = prod(s[d+1..])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Product of the dimensions before the softmax's.
    pub outer: usize,
    /// Size of the softmax's dimension.
    pub axis: usize,
    /// Product of the dimensions after it.
    pub inner: usize,
}

impl SoftmaxParams {
    /// Checks every size is at least 1 and the element count fits in `usize`.
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
