//! What the int8 kernels' tests build their cases from: quantizations over a dtype's whole
//! range, inputs around the range with some past it and some not finite, and weights
//! over all 256 int8 values.

use super::{QuantDtype, QuantParams};
use crate::testing::Rng;

/// A quantization of `dtype` over its whole range.
pub(super) fn quant(scale: f64, zp: i64, dtype: QuantDtype) -> QuantParams {
    let (lo, hi) = dtype.range();
    QuantParams::new(scale, zp, lo.into(), hi.into(), dtype).unwrap()
}

/// Random inputs around a quantization's range (scales near 0.03), some far past it, some
/// not finite.
pub(super) fn input(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|j| match j % 97 {
            5 => f32::NAN,
            6 => f32::INFINITY,
            7 => f32::NEG_INFINITY,
            8 => 1e9,
            // Rng::f32 is uniform in [-1, 1).
            _ => rng.f32() * 4.5,
        })
        .collect()
}

/// Int8 weights uniform over all 256 values.
pub(super) fn weights(rng: &mut Rng, len: usize) -> Vec<i8> {
    (0..len).map(|_| rng.next_u64() as u8 as i8).collect()
}
