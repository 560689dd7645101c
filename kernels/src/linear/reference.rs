use super::LinearParams;

/// Slow on purpose: the test oracle.
///
/// One f64 dot product per output: both operands are read along `in_features`, contiguous.
pub fn linear(p: &LinearParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // x: (rows, in)  w: (out, in)  bias: (out)  y: (rows, out)
    assert_eq!(x.len(), p.rows * p.in_features, "linear: x length");
    assert_eq!(w.len(), p.out_features * p.in_features, "linear: w length");
    assert_eq!(y.len(), p.rows * p.out_features, "linear: y length");
    bias.inspect(|b| assert_eq!(b.len(), p.out_features, "linear: bias length"));

    for (x_row, y_row) in x
        .chunks_exact(p.in_features)
        .zip(y.chunks_exact_mut(p.out_features))
    {
        for (o, (w_row, yv)) in w
            .chunks_exact(p.in_features)
            .zip(y_row.iter_mut())
            .enumerate()
        {
            let dot: f64 = x_row
                .iter()
                .zip(w_row)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            *yv = (dot + bias.map_or(0.0, |b| f64::from(b[o]))) as f32;
        }
    }
}
