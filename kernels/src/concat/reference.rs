/// Slow on purpose: the test oracle.
///
/// Each input in turn goes to its columns of every output row.
pub fn concat(outer: usize, inputs: &[&[f32]], inner: &[usize], y: &mut [f32]) {
    // inputs[i]: (outer, inner[i])  y: (outer, sum(inner))
    assert_eq!(
        inputs.len(),
        inner.len(),
        "concat: inputs and inner lengths"
    );
    for (i, (x, len)) in inputs.iter().zip(inner).enumerate() {
        assert_eq!(x.len(), outer * len, "concat: input {i} length");
    }
    let row: usize = inner.iter().sum();
    assert_eq!(y.len(), outer * row, "concat: y length");

    let mut at = 0;
    for (x, &len) in inputs.iter().zip(inner) {
        concat_part(outer, x, len, at, row, y);
        at += len;
    }
}

/// Slow on purpose: the test oracle.
///
/// Writes one input of a concat into its place in the output: `x` viewed as (outer, inner)
/// goes to columns `[offset, offset + inner)` of `y` viewed as (outer, y_inner). Calling it
/// for each input in turn gives `concat`, with no list of inputs to gather first.
pub fn concat_part(
    outer: usize,
    x: &[f32],
    inner: usize,
    offset: usize,
    y_inner: usize,
    y: &mut [f32],
) {
    // x: (outer, inner)  y: (outer, y_inner)
    assert_eq!(x.len(), outer * inner, "concat_part: x length");
    assert_eq!(y.len(), outer * y_inner, "concat_part: y length");
    assert!(
        offset + inner <= y_inner,
        "concat_part: columns past the row"
    );
    for o in 0..outer {
        y[o * y_inner + offset..][..inner].copy_from_slice(&x[o * inner..(o + 1) * inner]);
    }
}
