use super::reference::linear;
use super::*;
use crate::testing::assert_near;

#[test]
fn two_rows_by_hand() {
    // x: (2, 3) = [1 2 3; 4 5 6]  w: (2, 3) = [1 0 -1; 0.5 0.5 0.5]  bias [1, -1]
    // Row 0: 1 - 3 = -2, 0.5 * 6 = 3;  row 1: 4 - 6 = -2, 0.5 * 15 = 7.5.
    let p = LinearParams {
        rows: 2,
        in_features: 3,
        out_features: 2,
    };
    p.validate().unwrap();
    assert_eq!(p.flops(), 24);
    let x = [1., 2., 3., 4., 5., 6.];
    let w = [1., 0., -1., 0.5, 0.5, 0.5];
    let mut y = [f32::NAN; 4];
    linear(&p, &x, &w, None, &mut y);
    assert_near(&y, &[-2., 3., -2., 7.5]);
    linear(&p, &x, &w, Some(&[1., -1.]), &mut y);
    assert_near(&y, &[-1., 2., -1., 6.5]);
}

#[test]
fn sums_in_f64() {
    // 1e8 + 1 - 1e8 is 0 in f32 but 1 in f64.
    let p = LinearParams {
        rows: 1,
        in_features: 3,
        out_features: 1,
    };
    let mut y = [0.0];
    linear(&p, &[1e8, 1., -1e8], &[1., 1., 1.], None, &mut y);
    assert_near(&y, &[1.]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = LinearParams {
        rows: 1,
        in_features: 0,
        out_features: 10,
    };
    assert_eq!(
        p.validate().unwrap_err().0,
        "in_features must be at least 1, got 0"
    );
}
