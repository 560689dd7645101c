//! `upsample_nearest2d` and `upsample_bilinear2d` over NCHW: `F.interpolate` with mode
//! "nearest" or "bilinear" (align_corners false or true), to any output size, larger or
//! smaller than the input.
//!
//! # PyTorch's index rule, computed here once
//!
//! Every backend takes its source indices and weights from [`Axis`], which computes them
//! as ATen's CPU kernel does for f32 tensors (ATen's UpSample.h and UpSampleKernel.cpp),
//! in f32:
//!
//! - The ratio. Without align_corners it is `(f32)(1.0 / scale)` (the division in f64)
//!   when the caller gave a scale factor (`scales`; PyTorch passes it on unless
//!   `recompute_scale_factor` is set), else `(f32)in / (f32)out` (`compute_scales_value`).
//!   With align_corners (bilinear only) it is `(f32)(in - 1) / (f32)(out - 1)`, 0 when
//!   out is 1, and any scale factor is ignored (`area_pixel_compute_scale`).
//! - Nearest: `src = min(floor(ratio * (f32)o), in - 1)` (`nearest_neighbor_compute_source_index`).
//! - Bilinear: when out == in, both taps are o with weights 1 and 0. Otherwise
//!   `real = ratio * (f32)o` with align_corners, else `ratio * ((f32)o + 0.5) - 0.5`
//!   rounded after the product and after the subtraction, and clamped at 0 below
//!   (`area_pixel_compute_source_index`); then `i0 = min(floor(real), in - 1)`,
//!   `i1 = i0 + 1` unless i0 is the last index, `l1 = clamp(real - i0, 0, 1)`, `l0 = 1 - l1`
//!   (`guard_index_and_lambda`, `compute_source_index_and_lambda`).
//! - Bilinear's value: `t_r = x[r][i0w]·l0w + x[r][i1w]·l1w` for rows r = i0h, i1h, then
//!   `y = t_i0h·l0h + t_i1h·l1h`, each product and sum rounded to f32 (no FMA) in this
//!   order, on every backend. Both taps are always read, so an Inf or NaN tap with weight
//!   0 still makes the output NaN (Inf·0), as in PyTorch: an all-finite output from an
//!   input with Inf is not PyTorch's answer.
//!
//! This is PyTorch's generic NCHW kernel (`upsample_generic_Nd_kernel_impl`), which it
//! runs when oh + ow > 128. For smaller outputs (and some channels-last inputs) PyTorch
//! switches to its channels-last kernel, which differs in two corners: its nearest takes
//! `nearest_idx`'s shortcuts `out == in → o` and `out == 2·in → o / 2` even when a scale
//! factor says otherwise (a scale of 1.1 on 2 pixels, 2.05 on 10), and on AVX2/AVX-512
//! builds it computes bilinear's `ratio * (o + 0.5) - 0.5` with an FMA, so a weight there
//! can differ from this rule by an ulp (6e-8). Kestrel follows the generic kernel at
//! every size; `tests.rs` checks the rule against PyTorch's numbers.
//!
//! Output values agree with PyTorch within a few ulp (PyTorch's own kernels sum in
//! other orders); the backends here agree with the reference bit for bit.

use crate::error::{check_dims, checked_numel};
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

/// How output values are made from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsampleMode {
    /// `mode="nearest"`: the value at PyTorch's (floor) source index.
    Nearest,
    /// `mode="bilinear"`: the 2×2 taps around the source point, weighted.
    Bilinear {
        /// Whether the corner pixels' centres map onto each other.
        align_corners: bool,
    },
}

/// x: (n, c, ih, iw)  y: (n, c, oh, ow).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpsampleParams {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub ih: usize,
    /// Input width.
    pub iw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Nearest or bilinear.
    pub mode: UpsampleMode,
    /// PyTorch's `scale_factor` (along h, along w) when the caller gave one and
    /// `recompute_scale_factor` is unset; `None` when the output size was given. The
    /// output size must still be set: [`scaled_len`] is PyTorch's rule for it.
    pub scales: Option<[f64; 2]>,
}

/// The output length PyTorch gives an axis of `len` for a scale factor:
/// `floor(len · scale)`, in f64.
pub fn scaled_len(len: usize, scale: f64) -> usize {
    (len as f64 * scale).floor() as usize
}

/// Bilinear's two source indices and weights for one output index along one axis:
/// `x[i0]·l0 + x[i1]·l1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearTaps {
    /// The source index at or left of the source point.
    pub i0: usize,
    /// The next source index (i0 itself at the last one).
    pub i1: usize,
    /// Weight of i0: 1 - l1.
    pub l0: f32,
    /// Weight of i1: the source point's distance from i0, in [0, 1].
    pub l1: f32,
}

impl UpsampleParams {
    /// Every size at least 1, scale factors finite and positive, element counts within
    /// `usize`.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[
            ("n", self.n),
            ("c", self.c),
            ("ih", self.ih),
            ("iw", self.iw),
            ("oh", self.oh),
            ("ow", self.ow),
        ])?;
        if let Some(s) = self.scales {
            if s.iter().any(|v| !v.is_finite() || *v <= 0.0) {
                return Err(ParamError(format!(
                    "scale factors must be finite and positive, got {s:?}"
                )));
            }
        }
        checked_numel("input", &[self.n, self.c, self.ih, self.iw])?;
        checked_numel("output", &[self.n, self.c, self.oh, self.ow])?;
        Ok(())
    }

    /// Floats in x: n·c·ih·iw.
    pub fn in_len(&self) -> usize {
        self.n * self.c * self.ih * self.iw
    }

    /// Floats in y: n·c·oh·ow.
    pub fn out_len(&self) -> usize {
        self.n * self.c * self.oh * self.ow
    }

    /// (n, c, oh, ow)
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// The rule along h (`axis` 0) or w (1).
    pub fn axis(&self, axis: usize) -> Axis {
        let align_corners = matches!(
            self.mode,
            UpsampleMode::Bilinear {
                align_corners: true
            }
        );
        let (len_in, len_out) = [(self.ih, self.oh), (self.iw, self.ow)][axis];
        Axis::new(len_in, len_out, align_corners, self.scales.map(|s| s[axis]))
    }

    /// Nearest's source row for output row `oy`.
    pub fn source_index_h(&self, oy: usize) -> usize {
        self.axis(0).nearest(oy)
    }

    /// Nearest's source column for output column `ox`.
    pub fn source_index_w(&self, ox: usize) -> usize {
        self.axis(1).nearest(ox)
    }

    /// Bilinear's source rows and weights for output row `oy`.
    pub fn taps_h(&self, oy: usize) -> LinearTaps {
        self.axis(0).linear(oy)
    }

    /// Bilinear's source columns and weights for output column `ox`.
    pub fn taps_w(&self, ox: usize) -> LinearTaps {
        self.axis(1).linear(ox)
    }
}

/// The index rule along one axis (module doc), its ratio computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    len_in: usize,
    len_out: usize,
    align_corners: bool,
    /// Nearest's ratio (`compute_scales_value`).
    nearest_ratio: f32,
    /// Bilinear's ratio (`area_pixel_compute_scale`).
    linear_ratio: f32,
}

impl Axis {
    /// The rule for `len_in` → `len_out` (both at least 1); `scale` is the caller's scale
    /// factor, if given. align_corners applies to bilinear only.
    pub fn new(len_in: usize, len_out: usize, align_corners: bool, scale: Option<f64>) -> Axis {
        let nearest_ratio = match scale {
            Some(s) if s > 0.0 => (1.0 / s) as f32,
            _ => len_in as f32 / len_out as f32,
        };
        let linear_ratio = match (align_corners, len_out > 1) {
            (true, true) => (len_in - 1) as f32 / (len_out - 1) as f32,
            (true, false) => 0.0,
            (false, _) => nearest_ratio,
        };
        Axis {
            len_in,
            len_out,
            align_corners,
            nearest_ratio,
            linear_ratio,
        }
    }

    /// Nearest's source index for output `o`.
    #[inline]
    pub fn nearest(&self, o: usize) -> usize {
        ((self.nearest_ratio * o as f32).floor() as usize).min(self.len_in - 1)
    }

    /// Bilinear's taps for output `o`.
    #[inline]
    pub fn linear(&self, o: usize) -> LinearTaps {
        if self.len_in == self.len_out {
            return LinearTaps {
                i0: o,
                i1: o,
                l0: 1.0,
                l1: 0.0,
            };
        }
        let real = if self.align_corners {
            self.linear_ratio * o as f32
        } else {
            // Two roundings, as written in ATen (not an FMA: see the module doc).
            let r = self.linear_ratio * (o as f32 + 0.5) - 0.5;
            if r < 0.0 {
                0.0
            } else {
                r
            }
        };
        let i0 = (real.floor() as usize).min(self.len_in - 1);
        let l1 = (real - i0 as f32).clamp(0.0, 1.0);
        LinearTaps {
            i0,
            i1: if i0 < self.len_in - 1 { i0 + 1 } else { i0 },
            l0: 1.0 - l1,
            l1,
        }
    }

    /// Whether nearest's index of every output o is o / 2: the ×2 fast path's condition.
    pub fn nearest_is_double(&self) -> bool {
        self.len_out == 2 * self.len_in && (0..self.len_out).all(|o| self.nearest(o) == o / 2)
    }
}

/// Bilinear's value from two rows' taps: `(r0[i0w]·l0w + r0[i1w]·l1w)·l0h + (r1 …)·l1h`,
/// every product and sum rounded to f32 in this order (module doc).
#[inline(always)]
pub(crate) fn lerp(a: f32, b: f32, l0: f32, l1: f32) -> f32 {
    a * l0 + b * l1
}
