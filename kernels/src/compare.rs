//! How far an output is from its reference, element by element: the one rule behind
//! `kestrel compare`, the engine's tests and the CUDA kernel checks.

/// |out − reference| in f64; NaN matches NaN and an infinity matches the same infinity
/// (PyTorch propagates them so), any other mismatch involving them is infinite.
pub fn element_error(out: f32, reference: f32) -> f64 {
    if out.is_finite() && reference.is_finite() {
        (f64::from(out) - f64::from(reference)).abs()
    } else if (out.is_nan() && reference.is_nan()) || out == reference {
        0.0
    } else {
        f64::INFINITY
    }
}

/// max |x| over the finite values: the scale a relative tolerance applies to.
pub fn max_finite_abs(xs: &[f32]) -> f64 {
    xs.iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, &x| m.max(f64::from(x).abs()))
}
