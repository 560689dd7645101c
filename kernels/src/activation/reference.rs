/// Slow on purpose: the test oracle.
///
/// y = max(x, 0); NaN stays NaN, as in PyTorch (`f32::max` would turn it into 0).
pub fn relu(x: &[f32], y: &mut [f32]) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "relu: x and y lengths");
    for (xv, yv) in x.iter().zip(y.iter_mut()) {
        *yv = if *xv < 0.0 { 0.0 } else { *xv };
    }
}

/// Slow on purpose: the test oracle.
///
/// y = min(max(x, 0), 6); NaN stays NaN, as in PyTorch.
pub fn relu6(x: &[f32], y: &mut [f32]) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "relu6: x and y lengths");
    for (xv, yv) in x.iter().zip(y.iter_mut()) {
        *yv = xv.clamp(0.0, 6.0); // f32::clamp keeps NaN
    }
}
