use super::reference::softmax;
use super::*;
use crate::testing::assert_near;

fn run(p: SoftmaxParams, x: &[f32]) -> Vec<f32> {
    p.validate().unwrap();
    let mut y = vec![f32::NAN; x.len()];
    softmax(&p, x, &mut y);
    y
}

#[test]
fn one_row() {
    // [1 2 3] -> [e^-2, e^-1, 1] / (e^-2 + e^-1 + 1) = [0.1353353, 0.3678794, 1] / 1.5032147.
    let y = run(
        SoftmaxParams {
            outer: 1,
            axis: 3,
            inner: 1,
        },
        &[1., 2., 3.],
    );
    assert_near(&y, &[0.090_030_57, 0.244_728_47, 0.665_240_96]);
}

#[test]
fn large_and_infinite_values() {
    // Subtracting the max: [1000 1000] does not overflow; -inf gets probability 0.
    let p = SoftmaxParams {
        outer: 3,
        axis: 2,
        inner: 1,
    };
    let x = [1000., 1000., f32::NEG_INFINITY, 0., 5., f32::NAN];
    assert_near(&run(p, &x), &[0.5, 0.5, 0., 1., f32::NAN, f32::NAN]);
}

#[test]
fn strided_axis() {
    // x: (outer 2, axis 2, inner 2). Lines run over the axis, inner apart:
    // image 0: line i=0 = [0, ln 3] -> [1/4, 3/4], line i=1 = [0, 0] -> [1/2, 1/2];
    // image 1: line i=0 = [ln 4, 0] -> [4/5, 1/5], line i=1 = [-1, -1] -> [1/2, 1/2].
    let (ln3, ln4) = (3f32.ln(), 4f32.ln());
    let x = [0., 0., ln3, 0., ln4, -1., 0., -1.];
    let y = run(
        SoftmaxParams {
            outer: 2,
            axis: 2,
            inner: 2,
        },
        &x,
    );
    assert_near(&y, &[0.25, 0.5, 0.75, 0.5, 0.8, 0.5, 0.2, 0.5]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = SoftmaxParams {
        outer: 1,
        axis: 0,
        inner: 4,
    };
    assert_eq!(
        p.validate().unwrap_err().0,
        "axis must be at least 1, got 0"
    );
}
