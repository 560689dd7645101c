/// Slow on purpose: the test oracle.
///
/// y = a + b, in f32 as PyTorch does (one rounding either way).
pub fn add(a: &[f32], b: &[f32], y: &mut [f32]) {
    // a, b, y: (len)
    assert_eq!(a.len(), y.len(), "add: a and y lengths");
    assert_eq!(b.len(), y.len(), "add: b and y lengths");
    for ((av, bv), yv) in a.iter().zip(b).zip(y.iter_mut()) {
        *yv = av + bv;
    }
}
