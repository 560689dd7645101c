use super::SoftmaxParams;

/// Slow on purpose: the test oracle.
///
/// y = exp(x - max) / sum(exp(x - max)) along the axis, in f64 (each exp is taken twice
/// rather than staged in f32). Subtracting the max keeps exp from overflowing; a NaN or
/// +inf in a line makes the whole line NaN, and so does a line of all -inf, as in PyTorch.
pub fn softmax(p: &SoftmaxParams, x: &[f32], y: &mut [f32]) {
    // x, y: (outer, axis, inner)
    let block = p.axis * p.inner;
    assert_eq!(x.len(), p.outer * block, "softmax: x length");
    assert_eq!(y.len(), p.outer * block, "softmax: y length");

    for (x_o, y_o) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
        // One line per inner index: elements inner apart.
        for i in 0..p.inner {
            let line = || (0..p.axis).map(|a| a * p.inner + i);
            let max = line().map(|j| x_o[j]).fold(f32::NEG_INFINITY, f32::max);
            let exp = |j: usize| (f64::from(x_o[j]) - f64::from(max)).exp();
            let sum: f64 = line().map(exp).sum();
            for j in line() {
                y_o[j] = (exp(j) / sum) as f32;
            }
        }
    }
}
