use super::BatchNormParams;

/// Slow on purpose: the test oracle.
///
/// y = (x - mean) / sqrt(var + eps) * weight + bias, in f64: PyTorch's formula, with the
/// square root taken once per channel. Missing weight is 1, missing bias is 0.
pub fn batch_norm(
    p: &BatchNormParams,
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    y: &mut [f32],
) {
    // x, y: (n, c, spatial)  weight, bias, mean, var: (c)
    let len = p.n * p.c * p.spatial;
    assert_eq!(x.len(), len, "batch_norm: x length");
    assert_eq!(y.len(), len, "batch_norm: y length");
    assert_eq!(mean.len(), p.c, "batch_norm: mean length");
    assert_eq!(var.len(), p.c, "batch_norm: var length");
    weight.inspect(|w| assert_eq!(w.len(), p.c, "batch_norm: weight length"));
    bias.inspect(|b| assert_eq!(b.len(), p.c, "batch_norm: bias length"));

    let rows = x.chunks_exact(p.spatial).zip(y.chunks_exact_mut(p.spatial));
    for (row, (x_row, y_row)) in rows.enumerate() {
        let ch = row % p.c;
        let m = f64::from(mean[ch]);
        let std = (f64::from(var[ch]) + f64::from(p.eps)).sqrt();
        let w = weight.map_or(1.0, |w| f64::from(w[ch]));
        let b = bias.map_or(0.0, |b| f64::from(b[ch]));
        for (xv, yv) in x_row.iter().zip(y_row.iter_mut()) {
            *yv = ((f64::from(*xv) - m) / std * w + b) as f32;
        }
    }
}
