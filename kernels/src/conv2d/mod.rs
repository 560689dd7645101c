//! 2-D convolution over NCHW, as `torch.nn.functional.conv2d`: stride, padding, dilation
//! and groups (depthwise when groups = c_in = c_out), bias optional.

use crate::error::{check_conv, checked_numel, dilated_extent};
use crate::ParamError;
use std::panic::RefUnwindSafe;
use std::sync::Arc;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;
pub mod shapes;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod in_scale_tests;
#[cfg(test)]
mod tests;

/// Shapes and attributes of one conv2d call.
/// x: (n, c_in, h, w)  w: (c_out, c_in/groups, kh, kw)  bias: (c_out)  y: (n, c_out, oh, ow)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
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
    /// [along h, along w], as everywhere below.
    pub stride: [usize; 2],
    /// Zeros added on both sides of each axis.
    pub pad: [usize; 2],
    /// Spacing between kernel taps, [along h, along w]; 1 is a dense kernel.
    pub dilation: [usize; 2],
    /// Channel groups: both channel counts divide by it; `groups == c_in == c_out` is
    /// depthwise.
    pub groups: usize,
}

/// The weights a conv keeps for a path that runs only on rare inputs (Winograd's exact
/// path, for images holding a NaN or an infinity), held by reference to storage the caller
/// has anyway (a memory-mapped model file, whose untouched pages cost no memory) instead of
/// a copy: `weight`, with output channel oc times `out_scale[oc]` when given (a batch norm
/// folded into the conv after the fact).
#[derive(Clone)]
pub struct ExactWeights {
    /// (c_out, c_in/groups, kh, kw). Unwind-safe, so that a conv holding it stays so.
    pub weight: Arc<dyn AsRef<[f32]> + Send + Sync + RefUnwindSafe>,
    /// (c_out), or None for `weight` as it is.
    pub out_scale: Option<Arc<[f32]>>,
}

impl ExactWeights {
    /// A copy of `weight`, unscaled.
    pub fn copy_of(weight: &[f32]) -> ExactWeights {
        ExactWeights {
            weight: Arc::new(weight.to_vec()),
            out_scale: None,
        }
    }

    /// y = conv(x, weight · out_scale) + bias, by the reference kernel: the scale and the
    /// bias are applied to each output in f32 after the f64 sum, as PyTorch's conv then
    /// batch norm would. Panics on lengths that do not match `p`, as `reference::conv2d`.
    pub fn conv2d(&self, p: &Conv2dParams, x: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let w = (*self.weight).as_ref();
        let Some(scale) = &self.out_scale else {
            return reference::conv2d(p, x, w, bias, y);
        };
        reference::conv2d(p, x, w, None, y);
        let [_, c_out, oh, ow] = p.output_shape();
        assert_eq!(scale.len(), c_out, "ExactWeights: out_scale length");
        // y: (n, c_out, oh, ow)
        for (k, plane) in y.chunks_exact_mut(oh * ow).enumerate() {
            let (s, b) = (scale[k % c_out], bias.map_or(0.0, |b| b[k % c_out]));
            plane.iter_mut().for_each(|v| *v = *v * s + b);
        }
    }
}

impl Conv2dParams {
    /// `Some(c_out / c_in)` when the conv is depthwise: groups == c_in, so each output
    /// channel reads one input channel, through `c_out / c_in` filters per input channel
    /// (`validate` guarantees c_out % groups == 0). The one place that says which convs
    /// the depthwise kernels take: the CPU's takes multiplier 1, CUDA's any multiplier.
    pub fn depthwise_multiplier(&self) -> Option<usize> {
        (self.groups == self.c_in).then(|| self.c_out / self.c_in)
    }

    /// Whether the conv kernels take an `in_scale` for this conv: `conv(x · s)` with
    /// s: (n, c_in), one scale per image and input channel, multiplied in as x is read.
    /// That is squeeze-excite's gate, whose `x · gate` feeds the block's projection: a 1×1,
    /// stride-1, unpadded, one-group conv (MobileNetV3, EfficientNet, RegNetY). For these
    /// B of the GEMM is x itself, one row per input channel, so the scale applies per
    /// packed row (CPU) or per loaded element (CUDA), and the scaled tensor is never
    /// written: one write and one read of the expanded tensor saved per SE block. The one
    /// place that says which convs take it; the reference takes any.
    pub fn in_scale_applies(&self) -> bool {
        self.is_pointwise() && self.groups == 1
    }

    /// 1×1, stride 1, unpadded (any groups): each group's x is the GEMM's B as it lies,
    /// (c_in/groups, h·w), which the CPU GEMM reads in place or copies row by row.
    pub fn is_pointwise(&self) -> bool {
        [self.kh, self.kw, self.stride[0], self.stride[1]] == [1; 4] && self.pad == [0, 0]
    }

    /// Checks what PyTorch checks, plus that every size fits in `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        let x = [self.n, self.c_in, self.h, self.w];
        let attrs = [self.stride, self.dilation];
        check_conv(x, self.c_out, [self.kh, self.kw], attrs, self.groups)?;
        let overflow = || {
            ParamError(format!(
                "kernel {}x{} with dilation {:?} on input {}x{} with pad {:?} overflows usize",
                self.kh, self.kw, self.dilation, self.h, self.w, self.pad
            ))
        };
        let padded = |len: usize, pad: usize| pad.checked_mul(2)?.checked_add(len);
        let ext_h = dilated_extent(self.kh, self.dilation[0]).ok_or_else(overflow)?;
        let ext_w = dilated_extent(self.kw, self.dilation[1]).ok_or_else(overflow)?;
        let in_h = padded(self.h, self.pad[0]).ok_or_else(overflow)?;
        let in_w = padded(self.w, self.pad[1]).ok_or_else(overflow)?;
        // PyTorch's rule; it also guarantees an output of at least 1x1.
        if ext_h > in_h || ext_w > in_w {
            return Err(ParamError(format!(
                "kernel {ext_h}x{ext_w} (dilated) is larger than the padded input {in_h}x{in_w}"
            )));
        }
        checked_numel("input", &[self.n, self.c_in, self.h, self.w])?;
        checked_numel("weight", &self.weight_shape())?;
        checked_numel("output", &self.output_shape())?;
        Ok(())
    }

    /// PyTorch's rule: `(h + 2p - d(k-1) - 1) / s + 1`, rounded down. Call only after `validate`.
    pub fn output_hw(&self) -> (usize, usize) {
        let out = |len: usize, k: usize, s: usize, p: usize, d: usize| {
            (len + 2 * p - (d * (k - 1) + 1)) / s + 1
        };
        (
            out(
                self.h,
                self.kh,
                self.stride[0],
                self.pad[0],
                self.dilation[0],
            ),
            out(
                self.w,
                self.kw,
                self.stride[1],
                self.pad[1],
                self.dilation[1],
            ),
        )
    }

    /// (c_out, c_in/groups, kh, kw)
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in / self.groups, self.kh, self.kw]
    }

    /// (n, c_out, oh, ow)
    pub fn output_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.output_hw();
        [self.n, self.c_out, oh, ow]
    }

    /// Panics, naming `kernel`, unless x: (n, c_in, h, w) and y and residual (if any):
    /// (n, c_out, oh, ow) have this conv's lengths. Every CPU kernel's `run` starts here.
    pub(crate) fn assert_io(&self, kernel: &str, x: &[f32], y: &[f32], residual: Option<&[f32]>) {
        let [n, c_out, oh, ow] = self.output_shape();
        assert_eq!(
            x.len(),
            n * self.c_in * self.h * self.w,
            "{kernel}: x length"
        );
        assert_eq!(y.len(), n * c_out * oh * ow, "{kernel}: y length");
        residual.inspect(|r| assert_eq!(r.len(), y.len(), "{kernel}: residual length"));
    }

    /// Panics, naming `kernel`, unless this conv takes an input scale (`in_scale_applies`)
    /// and s is (n, c_in). Every CPU kernel's `run_scaled` checks a scale it is given here.
    pub(crate) fn assert_in_scale(&self, kernel: &str, s: &[f32]) {
        assert!(
            self.in_scale_applies(),
            "{kernel}: in_scale on a conv other than 1×1 stride 1 pad 0 groups 1: {self:?}"
        );
        assert_eq!(s.len(), self.n * self.c_in, "{kernel}: in_scale length");
    }

    /// 2 * multiply-adds (saturating); the bias is not counted.
    pub fn flops(&self) -> u64 {
        let [n, c_out, oh, ow] = self.output_shape();
        let [_, cg_in, kh, kw] = self.weight_shape();
        [n, c_out, oh, ow, cg_in, kh, kw]
            .iter()
            .fold(2u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}
