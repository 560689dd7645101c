//! Mean over H and W of NCHW (`x.mean([2, 3])`), giving (n, c).

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

/// x: (n, c, h, w)  y: (n, c)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeanParams {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
}

impl MeanParams {
    /// Checks every size is at least 1 and the element count fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        checked_numel("input", &[self.n, self.c, self.h, self.w])?;
        Ok(())
    }
}
