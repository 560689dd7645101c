use super::reference::adaptive_avg_pool2d;
use super::*;
use crate::testing::assert_near;

fn run(p: &AdaptiveAvgPool2dParams, x: &[f32]) -> Vec<f32> {
    p.validate().unwrap();
    let mut y = vec![f32::NAN; p.output_shape().iter().product()];
    adaptive_avg_pool2d(p, x, &mut y);
    y
}

fn row(w: usize, out: usize) -> AdaptiveAvgPool2dParams {
    AdaptiveAvgPool2dParams {
        n: 1,
        c: 1,
        h: 1,
        w,
        out: [1, out],
    }
}

#[test]
fn five_to_three_overlaps() {
    // Windows [floor(i*5/3), ceil((i+1)*5/3)) = [0, 2), [1, 4), [3, 5) on [1 2 3 4 5]:
    // (1+2)/2, (2+3+4)/3, (4+5)/2.
    assert_near(&run(&row(5, 3), &[1., 2., 3., 4., 5.]), &[1.5, 3., 4.5]);
}

#[test]
fn three_to_five_repeats() {
    // Windows [floor(i*3/5), ceil((i+1)*3/5)) = [0,1), [0,2), [1,2), [1,3), [2,3) on [1 2 3]:
    // 1, (1+2)/2, 2, (2+3)/2, 3.
    assert_near(&run(&row(3, 5), &[1., 2., 3.]), &[1., 1.5, 2., 2.5, 3.]);
}

#[test]
fn two_d_and_global() {
    // x: (1, 2, 4, 4): channel 0 = 0..16, channel 1 = 16..32. To 2x2 it is a 2x2 avg pool:
    // (0+1+4+5)/4 = 2.5, then +2 across, +8 down; channel 1 adds 16.
    let x: Vec<f32> = (0..32).map(|v| v as f32).collect();
    let p = AdaptiveAvgPool2dParams {
        n: 1,
        c: 2,
        h: 4,
        w: 4,
        out: [2, 2],
    };
    assert_near(
        &run(&p, &x),
        &[2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5],
    );
    // To 1x1 it is the mean of each channel: 7.5 and 23.5.
    let p = AdaptiveAvgPool2dParams { out: [1, 1], ..p };
    assert_eq!(p.output_shape(), [1, 2, 1, 1]);
    assert_near(&run(&p, &x), &[7.5, 23.5]);
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = AdaptiveAvgPool2dParams {
        n: 1,
        c: 1,
        h: 3,
        w: 3,
        out: [0, 2],
    };
    assert_eq!(
        p.validate().unwrap_err().0,
        "output size must be at least 1, got [0, 2]"
    );
    let p = AdaptiveAvgPool2dParams {
        w: 0,
        out: [1, 1],
        ..p
    };
    assert_eq!(p.validate().unwrap_err().0, "w must be at least 1, got 0");
}
