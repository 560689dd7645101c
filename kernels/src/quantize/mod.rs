//! Affine int8 quantization as PyTorch's PT2E flow computes it (the `quantized_decomposed`
//! ops a converted model is made of): the arithmetic every int8 path of Kestrel must
//! reproduce, and `fake_quant`, a quantize–dequantize pair in f32 (how a PT2E model's
//! activations between two ops are computed by PyTorch's reference model).
//!
//! PyTorch (`torch/ao/quantization/fx/_decomposed.py`, CPU, f32 input):
//!
//! - `quantize_per_tensor(x, scale, zp, qmin, qmax, dtype)` is
//!   `clamp(round(x * (1.0 / scale)) + zp, qmin, qmax).to(dtype)`: `1.0 / scale` in f64,
//!   rounded to f32 as the tensor–scalar product takes it; `round` to nearest, ties to even;
//!   the sum and the clamp in f32. A NaN survives the clamp and becomes 0 in the integer
//!   cast (x86), whatever the zero point.
//! - `dequantize_per_tensor(q, scale, zp, …)` is `(q.to(f32) - zp) * scale`, `scale`
//!   rounded to f32.
//!
//! `pytorch_values.py` prints PyTorch's own results for the corners (ties, ±0, ±Inf,
//! NaN, values past the range, both dtypes); `tests.rs` checks the rule against them, and
//! every backend against the reference bit for bit.

use crate::ParamError;

pub use qisa::QIsa;

pub mod conv;
pub mod cpu;
pub mod cuda;
mod lanes;
pub mod qadd;
pub mod qconv;
pub mod qdw;
mod qisa;
pub mod qlinear;
pub mod qlut;
pub mod qmaxpool;
/// Plain loops: the test oracle.
pub mod reference;
#[cfg(test)]
mod test_util;
mod unzip;

#[cfg(test)]
mod conv_tests;
#[cfg(test)]
mod pytorch_values;
#[cfg(test)]
mod qadd_tests;
#[cfg(test)]
mod qlut_tests;
#[cfg(test)]
mod qmaxpool_tests;
#[cfg(test)]
mod tests;

/// The integer type a quantized tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantDtype {
    /// `torch.int8`: −128..=127.
    Int8,
    /// `torch.uint8`: 0..=255.
    Uint8,
}

impl QuantDtype {
    /// The dtype's whole range.
    pub fn range(self) -> (i32, i32) {
        match self {
            QuantDtype::Int8 => (-128, 127),
            QuantDtype::Uint8 => (0, 255),
        }
    }

    /// What a value stored as a byte adds to its quantized integer: 128 for int8 (so that
    /// it is unsigned, as `vpdpbusd` reads it), 0 for uint8.
    pub fn byte_shift(self) -> i32 {
        match self {
            QuantDtype::Int8 => 128,
            QuantDtype::Uint8 => 0,
        }
    }

    /// PyTorch's name: "int8" or "uint8".
    pub fn name(self) -> &'static str {
        match self {
            QuantDtype::Int8 => "int8",
            QuantDtype::Uint8 => "uint8",
        }
    }
}

/// One per-tensor affine quantization: q = clamp(round(x / scale) + zero_point, qmin,
/// qmax), x ≈ (q − zero_point) · scale. Built by [`QuantParams::new`], which checks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// The scale as PyTorch multiplies by it when it dequantizes: the given scale in f32.
    pub scale: f32,
    /// What PyTorch multiplies by when it quantizes: `1.0 / scale` in f64, then f32.
    pub inv_scale: f32,
    /// The integer that stands for 0.0.
    pub zero_point: i32,
    /// The clamp's low end, inside the dtype's range.
    pub qmin: i32,
    /// The clamp's high end, inside the dtype's range.
    pub qmax: i32,
    /// The integer type the quantized values are stored in.
    pub dtype: QuantDtype,
}

impl QuantParams {
    /// Checks and prepares a quantization as a PT2E graph gives it (`scale` as the f64 it
    /// holds). Errors name what is wrong: a scale that is not finite and positive (or
    /// whose inverse or f32 rounding is not), a clamp outside the dtype or empty, a zero
    /// point outside the clamp.
    pub fn new(
        scale: f64,
        zero_point: i64,
        qmin: i64,
        qmax: i64,
        dtype: QuantDtype,
    ) -> Result<QuantParams, ParamError> {
        let (lo, hi) = dtype.range();
        let err = |m: String| Err(ParamError(m));
        let (scale32, inv32) = (scale as f32, (1.0 / scale) as f32);
        let finite = |v: f32| v.is_finite() && v > 0.0;
        if !(scale.is_finite() && scale > 0.0 && finite(scale32) && finite(inv32)) {
            return err(format!(
                "scale must be finite and positive (and so must its inverse in f32), got {scale:e}"
            ));
        }
        if qmin < i64::from(lo) || qmax > i64::from(hi) || qmin > qmax {
            return err(format!(
                "quant range {qmin}..={qmax} is not a range within {}'s {lo}..={hi}",
                dtype.name()
            ));
        }
        if zero_point < qmin || zero_point > qmax {
            return err(format!(
                "zero point {zero_point} is outside the quant range {qmin}..={qmax}"
            ));
        }
        // Each fits in i32: inside the dtype's range, checked above.
        let narrow = |v: i64| v as i32;
        Ok(QuantParams {
            scale: scale32,
            inv_scale: inv32,
            zero_point: narrow(zero_point),
            qmin: narrow(qmin),
            qmax: narrow(qmax),
            dtype,
        })
    }
}
