//! 2-D transposed convolution over NCHW, as `torch.nn.functional.conv_transpose2d`:
//! stride, padding, output_padding, dilation and groups, bias optional, with an activation
//! fused after the bias.
//!
//! Each input pixel (iy, ix) spreads `x · w[ci, co, ky, kx]` onto output pixel
//! `(iy·s - p + ky·d, ix·s - p + kx·d)` when that lies inside the output: the gradient of
//! conv2d with respect to its input. Read from the output side, output oy takes tap ky
//! from input row `(oy + p - ky·d) / s` when that divides exactly and lands in the input.

use crate::error::{check_conv, checked_numel, dilated_extent};
use crate::ParamError;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod pytorch_values;
#[cfg(test)]
mod tests;

pub use cpu::ConvTranspose2dCpu;

/// Shapes and attributes of one conv_transpose2d call.
/// x: (n, c_in, h, w)  weight: (c_in, c_out/groups, kh, kw)  bias: (c_out)
/// y: (n, c_out, oh, ow)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// [along h, along w], as everywhere below: how far apart consecutive input pixels
    /// land in the output.
    pub stride: [usize; 2],
    /// Cut from both sides of each output axis (conv2d's padding, seen from the input).
    pub pad: [usize; 2],
    /// Added to the end of each output axis only: which of the `stride` output sizes that
    /// conv2d maps back onto the input size is meant.
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps; 1 is a dense kernel.
    pub dilation: [usize; 2],
    /// Channel groups: both channel counts divide by it.
    pub groups: usize,
}

impl ConvTranspose2dParams {
    /// Checks what PyTorch checks (sizes, stride and dilation at least 1, groups dividing
    /// both channel counts, output_padding below stride or dilation, an output of at least
    /// 1x1), plus that every size fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        let x = [self.n, self.c_in, self.h, self.w];
        let attrs = [self.stride, self.dilation];
        check_conv(x, self.c_out, [self.kh, self.kw], attrs, self.groups)?;
        for i in 0..2 {
            let op = self.output_padding[i];
            if op >= self.stride[i] && op >= self.dilation[i] {
                return Err(ParamError(format!(
                    "output_padding must be smaller than stride or dilation, got \
                     output_padding {:?}, stride {:?}, dilation {:?}",
                    self.output_padding, self.stride, self.dilation
                )));
            }
        }
        let [oh, ow] = self.output_hw_signed();
        if oh < 1 || ow < 1 {
            return Err(ParamError(format!(
                "output size {oh}x{ow} is too small: input {}x{}, kernel {}x{}, stride {:?}, \
                 pad {:?}, output_padding {:?}, dilation {:?}",
                self.h,
                self.w,
                self.kh,
                self.kw,
                self.stride,
                self.pad,
                self.output_padding,
                self.dilation
            )));
        }
        checked_numel("input", &[self.n, self.c_in, self.h, self.w])?;
        checked_numel("weight", &self.weight_shape())?;
        checked_numel("output", &[self.n, self.c_out, oh as usize, ow as usize])?;
        Ok(())
    }

    /// PyTorch's rule: `(h - 1)·s - 2p + d·(k - 1) + output_padding + 1`. Call only after
    /// `validate`.
    pub fn output_hw(&self) -> [usize; 2] {
        self.output_hw_signed().map(|v| v as usize)
    }

    /// The output size in i128, where no attribute a `usize` holds can overflow it; it may
    /// be below 1 (invalid params). A kernel extent past `usize` saturates.
    fn output_hw_signed(&self) -> [i128; 2] {
        let axis = |len: usize, k: usize, i: usize| {
            let extent = dilated_extent(k, self.dilation[i]).unwrap_or(usize::MAX) as i128;
            (len as i128 - 1) * self.stride[i] as i128 - 2 * self.pad[i] as i128
                + extent
                + self.output_padding[i] as i128
        };
        [axis(self.h, self.kh, 0), axis(self.w, self.kw, 1)]
    }

    /// (c_in, c_out/groups, kh, kw), as PyTorch stores it.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_in, self.c_out / self.groups, self.kh, self.kw]
    }

    /// (n, c_out, oh, ow)
    pub fn output_shape(&self) -> [usize; 4] {
        let [oh, ow] = self.output_hw();
        [self.n, self.c_out, oh, ow]
    }

    /// Floats in x: n·c_in·h·w.
    pub fn in_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }

    /// Floats in y: n·c_out·oh·ow.
    pub fn out_len(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// 2 · multiply-adds (saturating): every input pixel times every tap of its group's
    /// output channels, those that land outside the output included; the bias is not counted.
    pub fn flops(&self) -> u64 {
        let [c_in, cg_out, kh, kw] = self.weight_shape();
        [self.n, c_in, self.h, self.w, cg_out, kh, kw]
            .iter()
            .fold(2u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}
