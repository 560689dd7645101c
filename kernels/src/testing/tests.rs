//! The test kit's own tests: the comparison must be able to fail.

use super::{compare, Tol};

#[test]
fn max_scale_flags_nan_position_and_tolerance() {
    let tol = |rtol| Tol::max(rtol, 1e-6);
    assert!(compare(&[1.0, 2.0], &[1.0, 2.0], tol(0.0)).is_ok());
    assert!(compare(&[1.0, f32::NAN], &[1.0, f32::NAN], tol(0.0)).is_ok());
    assert!(compare(&[1.0, 2.0], &[1.0, f32::NAN], tol(0.0)).is_err());
    assert!(compare(&[f32::NAN, 2.0], &[1.0, 2.0], tol(0.5)).is_err());
    assert!(compare(&[1.0, 2.001], &[1.0, 2.0], tol(1e-3)).is_ok());
    let e = compare(&[1.0, 2.01, 3.0], &[1.0, 2.0, 3.0], tol(1e-3)).unwrap_err();
    assert!(e.contains("index 1"), "{e}");
    assert!(compare(&[f32::INFINITY], &[f32::INFINITY], tol(0.0)).is_ok());
    assert!(compare(&[f32::INFINITY], &[f32::NEG_INFINITY], tol(0.0)).is_err());
    assert!(compare(&[f32::INFINITY], &[1.0], tol(1e9)).is_err());
    assert!(compare(&[1.0], &[1.0, 2.0], tol(0.0)).is_err());
}

#[test]
fn max_scale_is_the_largest_finite_expected_value() {
    // 3e-5 off at 1.0 is within 1e-5 of max |expected| = 4, not of 1.
    let want = [1.0, -4.0, f32::INFINITY];
    assert!(compare(&[1.00003, -4.0, f32::INFINITY], &want, Tol::max(1e-5, 0.0)).is_ok());
    assert!(compare(&[1.00005, -4.0, f32::INFINITY], &want, Tol::max(1e-5, 0.0)).is_err());
    // All zero: only exact zeros pass without an atol.
    assert!(compare(&[1e-30], &[0.0], Tol::max(1e-5, 0.0)).is_err());
    assert!(compare(&[1e-30], &[0.0], Tol::max(1e-5, 1e-29)).is_ok());
}

#[test]
fn each_scale_is_per_element() {
    // 4e-5 off at 1.0 fails rel 1e-5 of |1.0| though 4 is in the tensor.
    let want = [1.0, -4.0];
    assert!(compare(&[1.00004, -4.0], &want, Tol::each(1e-5, 0.0)).is_err());
    assert!(compare(&[1.000004, -4.0], &want, Tol::each(1e-5, 0.0)).is_ok());
    assert!(compare(&[f32::NAN], &[f32::INFINITY], Tol::each(1.0, 1.0)).is_err());
    assert!(compare(&[1e30], &[f32::INFINITY], Tol::each(1.0, 1.0)).is_err());
    assert!(compare(&[f32::INFINITY], &[f32::INFINITY], Tol::each(0.0, 0.0)).is_ok());
}

#[test]
fn given_scale_uses_each_magnitude_and_no_infinite_allowance() {
    let want = [1.0, 1.0];
    let mags = [10.0, 1.0];
    assert!(compare(&[1.00009, 1.000009], &want, Tol::given(1e-5, &mags)).is_ok());
    assert!(compare(&[1.00009, 1.00009], &want, Tol::given(1e-5, &mags)).is_err());
    let inf = [f32::INFINITY];
    assert!(compare(&[f32::INFINITY], &[1.0], Tol::given(1e-5, &inf)).is_err());
    assert!(compare(&[1.5], &[1.0], Tol::given(1e-5, &[f32::NAN])).is_err());
    assert!(compare(&[1.0], &[1.0], Tol::given(1e-5, &[f32::NAN])).is_ok());
}

#[test]
fn bits_tells_signed_zeros_apart() {
    assert!(compare(&[0.0, f32::NAN], &[0.0, f32::NAN], Tol::BITS).is_ok());
    assert!(compare(&[-0.0], &[0.0], Tol::BITS).is_err());
    assert!(compare(&[1.0 + f32::EPSILON], &[1.0], Tol::BITS).is_err());
    assert!(compare(&[f32::NAN], &[1.0], Tol::BITS).is_err());
}
