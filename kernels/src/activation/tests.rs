use super::reference::{relu, relu6};
use crate::testing::assert_near;

const INF: f32 = f32::INFINITY;

#[test]
fn relu_clamps_below_and_keeps_nan() {
    let x = [-1.0, 0.0, 2.5, f32::NAN, -INF, INF, -1e-30];
    let mut y = [1.0; 7];
    relu(&x, &mut y);
    assert_near(&y, &[0.0, 0.0, 2.5, f32::NAN, 0.0, INF, 0.0]);
}

#[test]
fn relu6_clamps_both_sides_and_keeps_nan() {
    let x = [-1.0, 3.0, 6.0, 7.0, f32::NAN, INF, -INF];
    let mut y = [1.0; 7];
    relu6(&x, &mut y);
    assert_near(&y, &[0.0, 3.0, 6.0, 6.0, f32::NAN, 6.0, 0.0]);
}
