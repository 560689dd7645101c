use super::reference::conv2d;
use super::*;
use crate::testing::assert_near;

/// A 1-image, 1-channel conv with a square kernel; the other fields are set per test.
fn single(h: usize, w: usize, k: usize) -> Conv2dParams {
    Conv2dParams {
        n: 1,
        c_in: 1,
        h,
        w,
        c_out: 1,
        kh: k,
        kw: k,
        stride: [1, 1],
        pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
    }
}

fn run(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    p.validate().unwrap();
    // NaN first, so an output the kernel forgets to write shows up.
    let mut y = vec![f32::NAN; p.output_shape().iter().product()];
    conv2d(p, x, w, bias, &mut y);
    y
}

// x: (1, 1, 3, 3) = [1 2 3; 4 5 6; 7 8 9], used by the hand-checked cases below.
const X3: [f32; 9] = [1., 2., 3., 4., 5., 6., 7., 8., 9.];

#[test]
fn kernel_2x2_no_pad() {
    // w = [1 2; 3 4]; y(0,0) = 1*1 + 2*2 + 3*4 + 4*5 = 37, then each step right adds
    // 1+2+3+4 = 10 and each step down adds 3*10 = 30: [37 47; 67 77], plus bias 0.5.
    let p = single(3, 3, 2);
    let y = run(&p, &X3, &[1., 2., 3., 4.], Some(&[0.5]));
    assert_near(&y, &[37.5, 47.5, 67.5, 77.5]);
}

#[test]
fn kernel_3x3_pad_1_stride_2() {
    // All-ones 3x3 kernel: each output sums the in-bounds part of its window.
    // Windows start at -1 and 1 on each axis: (0,0) = 1+2+4+5 = 12, (0,1) = 2+3+5+6 = 16,
    // (1,0) = 4+5+7+8 = 24, (1,1) = 5+6+8+9 = 28.
    let p = Conv2dParams {
        stride: [2, 2],
        pad: [1, 1],
        ..single(3, 3, 3)
    };
    assert_eq!(p.output_hw(), (2, 2));
    assert_near(&run(&p, &X3, &[1.0; 9], None), &[12., 16., 24., 28.]);
}

#[test]
fn kernel_2x2_dilation_2() {
    // Taps at (0,0), (0,2), (2,0), (2,2): 1*1 + 2*3 + 3*7 + 4*9 = 64.
    let p = Conv2dParams {
        dilation: [2, 2],
        ..single(3, 3, 2)
    };
    assert_eq!(p.output_hw(), (1, 1));
    assert_near(&run(&p, &X3, &[1., 2., 3., 4.], None), &[64.]);
}

#[test]
fn groups_and_channel_sums() {
    // x: (1, 2, 1, 2) = channel 0 [1 2], channel 1 [10 20]
    let x = [1., 2., 10., 20.];
    let base = Conv2dParams {
        c_in: 2,
        c_out: 2,
        ..single(1, 2, 1)
    };
    // groups = 2: each output channel sees only its own input channel: [2*1 2*2], [3*10 3*20].
    let p = Conv2dParams { groups: 2, ..base };
    assert_eq!(p.weight_shape(), [2, 1, 1, 1]);
    assert_near(&run(&p, &x, &[2., 3.], None), &[2., 4., 30., 60.]);
    // groups = 1: w (2, 2, 1, 1) = [[1, 1], [1, -1]]: sum and difference of the channels.
    assert_near(
        &run(&base, &x, &[1., 1., 1., -1.], None),
        &[11., 22., -9., -18.],
    );
}

#[test]
fn batch_of_two_uses_each_image() {
    // x: (2, 1, 1, 2); a 1x1 kernel of 2 with bias 1 maps each value v to 2v + 1.
    let p = Conv2dParams {
        n: 2,
        ..single(1, 2, 1)
    };
    assert_near(
        &run(&p, &[1., 2., 3., 4.], &[2.], Some(&[1.])),
        &[3., 5., 7., 9.],
    );
}

#[test]
fn output_sizes_match_pytorch() {
    // ResNet conv1: 7x7 / 2, pad 3 on 224 -> 112.
    let conv1 = Conv2dParams {
        c_in: 3,
        c_out: 64,
        stride: [2, 2],
        pad: [3, 3],
        ..single(224, 224, 7)
    };
    conv1.validate().unwrap();
    assert_eq!(conv1.output_shape(), [1, 64, 112, 112]);
    // 64 * 112 * 112 outputs of 3 * 7 * 7 MACs = 118,013,952 MACs (torchvision's 118M).
    assert_eq!(conv1.flops(), 2 * 118_013_952);
    // 3x3 pad 1 keeps the size; a 1x1 / 2 downsample halves it; dilation 2 with pad 2 keeps it.
    let same = Conv2dParams {
        pad: [1, 1],
        ..single(56, 56, 3)
    };
    assert_eq!(same.output_hw(), (56, 56));
    let down = Conv2dParams {
        stride: [2, 2],
        ..single(56, 56, 1)
    };
    assert_eq!(down.output_hw(), (28, 28));
    let dilated = Conv2dParams {
        pad: [2, 2],
        dilation: [2, 2],
        ..single(28, 28, 3)
    };
    assert_eq!(dilated.output_hw(), (28, 28));
    // Odd size, stride 2, no pad: (7 - 3) / 2 + 1 = 3; non-square: (5 + 2 - 3) / 3 + 1 = 2.
    assert_eq!(
        Conv2dParams {
            stride: [2, 2],
            ..single(7, 7, 3)
        }
        .output_hw(),
        (3, 3)
    );
    let rect = Conv2dParams {
        kh: 1,
        pad: [0, 1],
        stride: [1, 3],
        ..single(4, 5, 3)
    };
    assert_eq!(rect.output_hw(), (4, 2));
}

#[test]
fn validate_names_the_attribute_and_values() {
    let err = |p: Conv2dParams| p.validate().unwrap_err().0;
    let p = Conv2dParams {
        c_in: 4,
        c_out: 4,
        ..single(5, 5, 3)
    };
    assert_eq!(
        err(Conv2dParams {
            stride: [0, 1],
            ..p
        }),
        "stride must be at least 1, got [0, 1]"
    );
    assert_eq!(
        err(Conv2dParams {
            dilation: [1, 0],
            ..p
        }),
        "dilation must be at least 1, got [1, 0]"
    );
    assert_eq!(
        err(Conv2dParams { groups: 0, ..p }),
        "groups must be at least 1, got 0"
    );
    assert_eq!(
        err(Conv2dParams { c_in: 0, ..p }),
        "c_in must be at least 1, got 0"
    );
    assert_eq!(
        err(Conv2dParams {
            c_in: 3,
            groups: 2,
            ..p
        }),
        "c_in 3 is not divisible by groups 2"
    );
    assert_eq!(
        err(Conv2dParams {
            c_out: 6,
            groups: 4,
            ..p
        }),
        "c_out 6 is not divisible by groups 4"
    );
    assert_eq!(
        err(Conv2dParams { kh: 7, kw: 7, ..p }),
        "kernel 7x7 (dilated) is larger than the padded input 5x5"
    );
    // 3x3 dilated by 3 reaches 7; pad 1 makes the input 7x7 (fits), on 4x5 it is 6x7.
    assert!(Conv2dParams {
        dilation: [3, 3],
        pad: [1, 1],
        ..p
    }
    .validate()
    .is_ok());
    assert_eq!(
        err(Conv2dParams {
            h: 4,
            dilation: [3, 3],
            pad: [1, 1],
            ..p
        }),
        "kernel 7x7 (dilated) is larger than the padded input 6x7"
    );
    assert!(err(Conv2dParams {
        pad: [usize::MAX, 0],
        ..p
    })
    .contains("overflows usize"));
    assert!(err(Conv2dParams { n: usize::MAX, ..p }).contains("too many elements"));
}
