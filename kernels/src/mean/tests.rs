use super::reference::mean_hw;
use super::*;
use crate::testing::assert_near;

#[test]
fn means_each_plane() {
    // x: (2, 2, 2, 2): planes [1 2 3 4], [10 20 30 40], [-1 1 -1 1], [0 0 0 1].
    let p = MeanParams {
        n: 2,
        c: 2,
        h: 2,
        w: 2,
    };
    p.validate().unwrap();
    let x = [
        1., 2., 3., 4., 10., 20., 30., 40., -1., 1., -1., 1., 0., 0., 0., 1.,
    ];
    let mut y = [f32::NAN; 4];
    mean_hw(&p, &x, &mut y);
    assert_near(&y, &[2.5, 25., 0., 0.25]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = MeanParams {
        n: 1,
        c: 3,
        h: 0,
        w: 2,
    };
    assert_eq!(p.validate().unwrap_err().0, "h must be at least 1, got 0");
}
