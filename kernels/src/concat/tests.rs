use super::reference::concat;
use crate::testing::assert_near;

#[test]
fn interleaves_rows() {
    // a: (2, 2) = [1 2; 3 4]  b: (2, 3) = [5 6 7; 8 9 10]  empty: (2, 0)  ->  (2, 5)
    let (a, b) = ([1., 2., 3., 4.], [5., 6., 7., 8., 9., 10.]);
    let mut y = [f32::NAN; 10];
    concat(2, &[&a, &[], &b], &[2, 0, 3], &mut y);
    assert_near(&y, &[1., 2., 5., 6., 7., 3., 4., 8., 9., 10.]);
}

#[test]
fn channels_of_nchw() {
    // torch.cat([a, b], dim=1) with a: (2, 1, 1, 2), b: (2, 2, 1, 2): outer = n = 2,
    // inner = c_i * h * w = [2, 4]. Output per image: a's channel, then b's two.
    let a = [1., 2., 3., 4.];
    let b = [10., 11., 12., 13., 20., 21., 22., 23.];
    let mut y = [f32::NAN; 12];
    concat(2, &[&a, &b], &[2, 4], &mut y);
    assert_near(
        &y,
        &[1., 2., 10., 11., 12., 13., 3., 4., 20., 21., 22., 23.],
    );
}
