//! adaptive_avg_pool2d over NCHW: any output size, larger than the input included.

use crate::error::{check_dims, check_pair, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

/// `x: (n, c, h, w)  y: (n, c, out[0], out[1])`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2dParams {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// [oh, ow]
    pub out: [usize; 2],
}

impl AdaptiveAvgPool2dParams {
    /// Checks every size is at least 1 and every element count fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        check_pair("output size", self.out)?;
        checked_numel("input", &[self.n, self.c, self.h, self.w])?;
        checked_numel("output", &self.output_shape())?;
        // The window rule multiplies an output index by the input length.
        checked_numel("window arithmetic", &[self.out[0] + 1, self.h])?;
        checked_numel("window arithmetic", &[self.out[1] + 1, self.w])?;
        Ok(())
    }

    /// (n, c, oh, ow)
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.out[0], self.out[1]]
    }
}
