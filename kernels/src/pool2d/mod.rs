//! max_pool2d and avg_pool2d over NCHW. They share params and PyTorch's output-size rule
//! (`pooling_output_shape` in ATen's Pool.h), `ceil_mode` included.

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

/// x: (n, c, h, w)  y: (n, c, oh, ow). Per-axis attributes are [along h, along w].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window (kh, kw).
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding on each side.
    pub pad: [usize; 2],
    /// Max pool only; avg pool requires [1, 1].
    pub dilation: [usize; 2],
    /// Whether a partial window at the end makes one more output, as PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
    /// Avg pool only: divide by the whole window, padding included, instead of the taps
    /// inside the input.
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// PyTorch's rules (`pool2d_shape_check`): kernel, stride, dilation >= 1,
    /// pad <= kernel/2 on each axis, and an output of at least 1x1.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[("n", self.n), ("c", self.c), ("h", self.h), ("w", self.w)])?;
        check_pair("kernel", self.kernel)?;
        check_pair("stride", self.stride)?;
        check_pair("dilation", self.dilation)?;
        if self.pad[0] > self.kernel[0] / 2 || self.pad[1] > self.kernel[1] / 2 {
            return Err(ParamError(format!(
                "pad must be at most half the kernel, got pad {:?} for kernel {:?}",
                self.pad, self.kernel
            )));
        }
        let (oh, ow) = self.output_hw_signed();
        if oh < 1 || ow < 1 {
            return Err(ParamError(format!(
                "output size {oh}x{ow} is too small: input {}x{}, kernel {:?}, stride {:?}, \
                 pad {:?}, dilation {:?}, ceil_mode {}",
                self.h, self.w, self.kernel, self.stride, self.pad, self.dilation, self.ceil_mode
            )));
        }
        checked_numel("input", &[self.n, self.c, self.h, self.w])?;
        checked_numel("output", &self.output_shape())?;
        Ok(())
    }

    /// PyTorch's `pooling_output_shape`. Call only after `validate`.
    pub fn output_hw(&self) -> (usize, usize) {
        let (oh, ow) = self.output_hw_signed();
        (oh as usize, ow as usize)
    }

    /// (n, c, oh, ow)
    pub fn output_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.output_hw();
        [self.n, self.c, oh, ow]
    }

    fn output_hw_signed(&self) -> (i128, i128) {
        let axis = |len: usize, i: usize| {
            let [len, k, s, p, d] = [
                len,
                self.kernel[i],
                self.stride[i],
                self.pad[i],
                self.dilation[i],
            ]
            .map(|v| v as i128);
            // In i128 only the two products can overflow (saturating keeps absurd attributes
            // absurd); the numerator can be negative, and PyTorch rounds it towards -inf.
            let ceil_extra = if self.ceil_mode { s - 1 } else { 0 };
            let span = d.saturating_mul(k - 1);
            let mut out = (len + 2 * p - span - 1 + ceil_extra).div_euclid(s) + 1;
            // In ceil mode the last window must start inside the input or its left padding.
            if self.ceil_mode && (out - 1).saturating_mul(s) >= len + p {
                out -= 1;
            }
            out
        };
        (axis(self.h, 0), axis(self.w, 1))
    }
}
