use super::MeanParams;

/// Slow on purpose: the test oracle.
///
/// One f64 sum per (image, channel) plane, divided by h*w.
pub fn mean_hw(p: &MeanParams, x: &[f32], y: &mut [f32]) {
    // x: (n, c, h, w)  y: (n, c)
    let plane = p.h * p.w;
    assert_eq!(x.len(), p.n * p.c * plane, "mean_hw: x length");
    assert_eq!(y.len(), p.n * p.c, "mean_hw: y length");
    for (x_c, yv) in x.chunks_exact(plane).zip(y.iter_mut()) {
        let sum: f64 = x_c.iter().map(|v| f64::from(*v)).sum();
        *yv = (sum / plane as f64) as f32;
    }
}
