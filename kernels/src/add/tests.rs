use super::reference::add;
use crate::testing::assert_near;

#[test]
fn adds_element_wise() {
    let mut y = [0.0; 4];
    add(
        &[1.0, 2.0, 3.0, f32::INFINITY],
        &[0.5, -2.0, f32::NAN, 1.0],
        &mut y,
    );
    assert_near(&y, &[1.5, 0.0, f32::NAN, f32::INFINITY]);
}
