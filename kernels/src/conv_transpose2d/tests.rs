//! The reference against PyTorch's own outputs (`pytorch_values.rs`, printed by
//! `pytorch_values.py`), PyTorch's output-size rule, and the params' checks.

use super::pytorch_values::CASES;
use super::reference::conv_transpose2d;
use super::*;
use crate::testing::assert_near;
use crate::Activation;

/// Element i is ((i·a) mod 17) / 8 - 1, as pytorch_values.py fills its tensors.
fn fill(len: usize, a: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * a) % 17) as f32 / 8.0 - 1.0)
        .collect()
}

fn params(dims: [usize; 7], attrs: [[usize; 2]; 4], groups: usize) -> ConvTranspose2dParams {
    let [n, c_in, h, w, c_out, kh, kw] = dims;
    let [stride, pad, output_padding, dilation] = attrs;
    ConvTranspose2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride,
        pad,
        output_padding,
        dilation,
        groups,
    }
}

#[test]
fn reference_matches_pytorch() {
    // k3 s2 p1 op1; grouped with dilation 2 along w and stride 2 only along h; a batch of
    // 2 through k2 s2 (U-Net). The inputs are multiples of 1/8, so every sum is exact.
    for &(dims, attrs, groups, want) in CASES {
        let p = params(dims, attrs, groups);
        p.validate().unwrap();
        let x = fill(p.in_len(), 5);
        let w = fill(p.weight_shape().iter().product(), 7);
        let b = fill(p.c_out, 3);
        let mut y = vec![f32::NAN; p.out_len()];
        conv_transpose2d(&p, &x, &w, Some(&b), Activation::None, &mut y);
        assert_near(&y, want);
    }
}

fn base() -> ConvTranspose2dParams {
    params([1, 4, 5, 7, 6, 3, 3], [[2, 2], [1, 1], [1, 1], [1, 1]], 2)
}

#[test]
fn output_size_is_pytorchs() {
    // (h - 1)·s - 2p + d·(k - 1) + output_padding + 1: (5-1)·2 - 2 + 2 + 1 + 1 = 10.
    assert_eq!(base().output_hw(), [10, 14]);
    // U-Net's k2 s2 doubles; k4 s2 p1 doubles; k3 s1 p1 keeps the size.
    let p = |k: usize, s: usize, pad: usize| {
        params(
            [1, 1, 7, 9, 1, k, k],
            [[s, s], [pad, pad], [0, 0], [1, 1]],
            1,
        )
    };
    assert_eq!(p(2, 2, 0).output_hw(), [14, 18]);
    assert_eq!(p(4, 2, 1).output_hw(), [14, 18]);
    assert_eq!(p(3, 1, 1).output_hw(), [7, 9]);
    assert_eq!(base().weight_shape(), [4, 3, 3, 3]);
}

#[test]
fn validate_names_what_is_wrong() {
    let err = |p: ConvTranspose2dParams| p.validate().unwrap_err().0;
    assert_eq!(
        err(ConvTranspose2dParams { c_out: 5, ..base() }),
        "c_out 5 is not divisible by groups 2"
    );
    assert_eq!(
        err(ConvTranspose2dParams {
            stride: [2, 0],
            ..base()
        }),
        "stride must be at least 1, got [2, 0]"
    );
    // output_padding must stay below stride or dilation: 2 is neither below 2 nor 1.
    let msg = err(ConvTranspose2dParams {
        output_padding: [2, 0],
        ..base()
    });
    assert!(
        msg.starts_with("output_padding must be smaller than stride or dilation"),
        "{msg}"
    );
    // ... but below a dilation of 3 it is allowed.
    ConvTranspose2dParams {
        output_padding: [2, 0],
        dilation: [3, 1],
        ..base()
    }
    .validate()
    .unwrap();
    // 1x1 input, k1, pad 1: (1-1)·1 - 2 + 1·0 + 0 + 1 = -1 rows.
    let msg = err(params(
        [1, 1, 1, 1, 1, 1, 1],
        [[1, 1], [1, 1], [0, 0], [1, 1]],
        1,
    ));
    assert!(msg.starts_with("output size -1x-1 is too small"), "{msg}");
}
