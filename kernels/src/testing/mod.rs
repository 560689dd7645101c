//! The test kit: what the tests of every crate share (behind the `testing` feature).

/// Asserts `got` and `want` have equal lengths and agree element-wise within
/// `rel * |want| + abs`; NaN must match NaN, infinities must match exactly.
#[track_caller]
pub fn assert_close(got: &[f32], want: &[f32], rel: f32, abs: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "lengths differ: got {got:?}, want {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() || w.is_infinite() {
            g.is_nan() == w.is_nan() && (w.is_nan() || g == w)
        } else {
            (g - w).abs() <= rel * w.abs() + abs
        };
        assert!(
            ok,
            "element {i}: got {g}, want {w}\n got: {got:?}\nwant: {want:?}"
        );
    }
}

/// Hand-derived values are exact in f32 or within a rounding: rel 1e-6.
#[track_caller]
pub fn assert_near(got: &[f32], want: &[f32]) {
    assert_close(got, want, 1e-6, 1e-7);
}

pub use crate::rng::Rng;
