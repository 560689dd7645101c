//! Mean over H and W of NCHW (`x.mean([2, 3])`), giving (n, c).

use crate::error::{check_dims, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
pub mod reference;

#[cfg(test)]
mod cuda_tests;
#[cfg(test)]
mod tests;

/// x: (n, c, h, w)  y: (n, c)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeanParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl MeanParams {
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        checked_numel("input", &[self.n, self.c, self.h, self.w])?;
        Ok(())
    }
}
