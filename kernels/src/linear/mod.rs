//! Fully connected layer, as `torch.nn.functional.linear`: y = x wᵀ + bias.

use crate::error::{check_dims, checked_numel};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
pub mod pool_linear;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod pool_linear_tests;
#[cfg(test)]
mod tests;

/// x: (rows, in_features)  w: (out_features, in_features)  bias: (out_features)
/// y: (rows, out_features)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearParams {
    /// Rows of x: the batch.
    pub rows: usize,
    /// Columns of x.
    pub in_features: usize,
    /// Columns of y.
    pub out_features: usize,
}

impl LinearParams {
    /// Checks every size is at least 1 and every element count fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[
            ("rows", self.rows),
            ("in_features", self.in_features),
            ("out_features", self.out_features),
        ])?;
        checked_numel("input", &[self.rows, self.in_features])?;
        checked_numel("weight", &[self.out_features, self.in_features])?;
        checked_numel("output", &[self.rows, self.out_features])?;
        Ok(())
    }

    /// 2 * multiply-adds (saturating); the bias is not counted.
    pub fn flops(&self) -> u64 {
        [self.rows, self.in_features, self.out_features]
            .iter()
            .fold(2u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}
