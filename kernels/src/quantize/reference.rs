//! The quantization rule in scalar code, step by step as PyTorch computes it (see the
//! module doc): the oracle for every backend.

use super::QuantParams;

/// PyTorch's `quantize_per_tensor` of one value.
pub fn quantize(p: &QuantParams, x: f32) -> i32 {
    let v = (x * p.inv_scale).round_ties_even() + p.zero_point as f32;
    if v.is_nan() {
        // NaN passes the clamp and the f32 → int8 cast makes it 0 (x86's cvttss2si gives
        // 0x80000000, whose low byte is 0).
        return 0;
    }
    // Exact: an integer-valued f32 within ±2^24 after the clamp.
    v.clamp(p.qmin as f32, p.qmax as f32) as i32
}

/// PyTorch's `dequantize_per_tensor` of one value.
pub fn dequantize(p: &QuantParams, q: i32) -> f32 {
    (q as f32 - p.zero_point as f32) * p.scale
}

/// A quantize–dequantize pair: what a PT2E reference model computes for an activation
/// between two quantized ops.
pub fn fake_quant(p: &QuantParams, x: f32) -> f32 {
    dequantize(p, quantize(p, x))
}

/// y = fake_quant(x), element by element.
pub fn fake_quant_slice(p: &QuantParams, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "fake_quant: x and y lengths");
    for (y, &x) in y.iter_mut().zip(x) {
        *y = fake_quant(p, x);
    }
}
