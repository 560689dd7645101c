//! The int8 conv as an integer kernel computes it: the oracle the VNNI kernels will be
//! checked against, bit for bit.
//!
//! A PT2E model's quantized conv is, in PyTorch's reference form, a float conv of the
//! dequantized input and weight, then an activation, then a quantize. An integer kernel
//! computes the same thing in another order: the exact sum `acc = Σ (x_q − zp_x) · w_q`
//! in i32, then `y = acc · (s_x · s_w[c]) + bias[c]` in f32, the activation, and PT2E's
//! quantize of y (`quantize::reference::quantize`). The two agree but where y lies within
//! float rounding of a rounding tie of the output's quantization, which then rounds the
//! other way: one step, as PyTorch's own int8 backends differ from its reference
//! (`tests.rs` counts them).

use super::{reference, QuantParams};
use crate::conv2d::Conv2dParams;

/// A conv of int8 values: `p`'s shape, the input's quantization `x` (per tensor), the
/// weights' scales per output channel (symmetric: zero point 0, as PT2E's per-channel
/// config makes them), the output's quantization `y`, whether a relu comes before it, and
/// a narrower clamp of the output integers where one comes after.
#[derive(Debug, Clone)]
pub struct QConv2d {
    /// The conv's shape and attributes.
    pub p: Conv2dParams,
    /// The input's quantization.
    pub x: QuantParams,
    /// (c_out): each output channel's weight scale.
    pub w_scale: Vec<f32>,
    /// The output's quantization.
    pub y: QuantParams,
    /// A relu between the conv and the output's quantization.
    pub relu: bool,
    /// The output integers clamped to `[lo, hi]` after the quantization (inside y's
    /// range; None: y's own range): an activation on the quantized output that only
    /// clamps its integers (a relu6 between two equal quantizations), folded in.
    pub clamp: Option<[i32; 2]>,
}

/// Most products an i32 sum holds: |x − zp| ≤ 255, |w| ≤ 128 (an int8 weight may be
/// −128). The kernels' partial sums stay inside that bound too: each is the shifted sum
/// so far less the zero point times the weights still to come (qconv/mod.rs).
pub const MAX_K: usize = (i32::MAX as usize) / (255 * 128);

impl QConv2d {
    /// The output's quantization with its range narrowed to `clamp`: what the epilogue
    /// rounds and clamps by (a clamp of a clamp is one clamp).
    pub fn y_clamped(&self) -> QuantParams {
        let [lo, hi] = self.clamp.unwrap_or([self.y.qmin, self.y.qmax]);
        QuantParams {
            qmin: lo.max(self.y.qmin),
            qmax: hi.min(self.y.qmax),
            ..self.y
        }
    }

    /// The quantized output of `x_q` (n, c_in, h, w) through weights `w_q` (c_out,
    /// c_in/groups, kh, kw) and `bias` (c_out), as the integer kernels compute it (module
    /// doc). Panics on lengths that do not match `p`, or a k past [`MAX_K`]. Slow on
    /// purpose: the test oracle.
    pub fn reference(&self, x_q: &[i32], w_q: &[i32], bias: Option<&[f32]>) -> Vec<i32> {
        let p = &self.p;
        let [c_out, cg_in, kh, kw] = p.weight_shape();
        let [n, _, oh, ow] = p.output_shape();
        assert_eq!(x_q.len(), n * p.c_in * p.h * p.w, "qconv: x length");
        assert_eq!(w_q.len(), c_out * cg_in * kh * kw, "qconv: w length");
        assert_eq!(self.w_scale.len(), c_out, "qconv: weight scales");
        assert!(
            cg_in * kh * kw <= MAX_K,
            "qconv: k past what an i32 sum holds"
        );
        let cg_out = c_out / p.groups;
        let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
        let mut y = Vec::with_capacity(n * c_out * oh * ow);
        for img in 0..n {
            for oc in 0..c_out {
                let g = oc / cg_out;
                let multiplier = self.x.scale * self.w_scale[oc];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0i32;
                        for ci in 0..cg_in {
                            let c = g * cg_in + ci;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    // Padding is the zero point: (zp − zp) adds nothing.
                                    let (iy, ix) = ((oy * sh + ky * dh), (ox * sw + kx * dw));
                                    if iy < ph || ix < pw || iy - ph >= p.h || ix - pw >= p.w {
                                        continue;
                                    }
                                    let at = ((img * p.c_in + c) * p.h + iy - ph) * p.w + ix - pw;
                                    let w = w_q[((oc * cg_in + ci) * kh + ky) * kw + kx];
                                    acc += (x_q[at] - self.x.zero_point) * w;
                                }
                            }
                        }
                        let mut v = acc as f32 * multiplier + bias.map_or(0.0, |b| b[oc]);
                        if self.relu {
                            v = v.max(0.0);
                        }
                        y.push(reference::quantize(&self.y_clamped(), v));
                    }
                }
            }
        }
        y
    }
}
