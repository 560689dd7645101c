use super::reference::batch_norm;
use super::*;
use crate::conv2d::{reference::conv2d, Conv2dParams};
use crate::testing::{assert_close, assert_near, Rng, Tol};

// Two channels: mean [1, 2], var [3, 0], eps 1 -> std [2, 1]; weight [2, -1], bias [0.5, 0].
const MEAN: [f32; 2] = [1., 2.];
const VAR: [f32; 2] = [3., 0.];
const WEIGHT: [f32; 2] = [2., -1.];
const BIAS: [f32; 2] = [0.5, 0.];

#[test]
fn normalises_per_channel() {
    // x: (2, 2, 2): image 0 = channel 0 [1 2], channel 1 [3 4]; image 1 = [5 1], [2 0].
    // Channel 0: (x - 1) / 2 * 2 + 0.5 = x - 0.5;  channel 1: (x - 2) / 1 * -1 = 2 - x.
    let p = BatchNormParams {
        n: 2,
        c: 2,
        spatial: 2,
        eps: 1.0,
    };
    p.validate().unwrap();
    let x = [1., 2., 3., 4., 5., 1., 2., 0.];
    let mut y = [f32::NAN; 8];
    batch_norm(&p, &x, Some(&WEIGHT), Some(&BIAS), &MEAN, &VAR, &mut y);
    assert_near(&y, &[0.5, 1.5, -1., -2., 4.5, 0.5, 0., 2.]);
    // No weight or bias: (x - mean) / std alone.
    batch_norm(&p, &x, None, None, &MEAN, &VAR, &mut y);
    assert_near(&y, &[0., 0.5, 1., 2., 2., 0., 0., -2.]);
}

#[test]
fn spatial_one_is_batch_norm_1d() {
    // x: (3, 2) rows of features, as after a linear layer.
    let p = BatchNormParams {
        n: 3,
        c: 2,
        spatial: 1,
        eps: 1.0,
    };
    let mut y = [0.0; 6];
    batch_norm(
        &p,
        &[1., 3., 3., 2., -1., 0.],
        Some(&WEIGHT),
        Some(&BIAS),
        &MEAN,
        &VAR,
        &mut y,
    );
    assert_near(&y, &[0.5, -1., 2.5, 0., -1.5, 2.]);
}

#[test]
fn scale_shift_by_hand() {
    // scale = weight / std = [2/2, -1/1] = [1, -1]; shift = bias - mean * scale = [0.5 - 1, 0 + 2].
    let (scale, shift) = scale_shift(Some(&WEIGHT), Some(&BIAS), &MEAN, &VAR, 1.0);
    assert_near(&scale, &[1., -1.]);
    assert_near(&shift, &[-0.5, 2.]);
    // Defaults: weight 1, bias 0: scale = [1/2, 1], shift = [-1/2, -2].
    let (scale, shift) = scale_shift(None, None, &MEAN, &VAR, 1.0);
    assert_near(&scale, &[0.5, 1.]);
    assert_near(&shift, &[-0.5, -2.]);
}

#[test]
fn conv_then_batch_norm_equals_conv_with_folded_weights() {
    let mut rng = Rng::new(7);
    let p = Conv2dParams {
        n: 2,
        c_in: 3,
        h: 6,
        w: 5,
        c_out: 4,
        kh: 3,
        kw: 3,
        stride: [1, 2],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let [n, c_out, oh, ow] = p.output_shape();
    let x = rng.vec(p.n * p.c_in * p.h * p.w);
    let w = rng.vec(p.weight_shape().iter().product());
    let (weight, bias, mean) = (rng.vec(c_out), rng.vec(c_out), rng.vec(c_out));
    let var: Vec<f32> = rng.vec(c_out).iter().map(|v| v.abs() + 0.1).collect();
    let bn = BatchNormParams {
        n,
        c: c_out,
        spatial: oh * ow,
        eps: 1e-5,
    };
    let (scale, shift) = scale_shift(Some(&weight), Some(&bias), &mean, &var, bn.eps);

    for conv_bias in [None, Some(rng.vec(c_out))] {
        // Unfolded: conv, then batch norm.
        let mut conv_out = vec![0.0; n * c_out * oh * ow];
        conv2d(&p, &x, &w, conv_bias.as_deref(), &mut conv_out);
        let mut want = vec![0.0; conv_out.len()];
        batch_norm(
            &bn,
            &conv_out,
            Some(&weight),
            Some(&bias),
            &mean,
            &var,
            &mut want,
        );

        // Folded: w' = w * scale[oc], b' = b * scale + shift.
        let per_oc = w.len() / c_out;
        let w_folded: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale[i / per_oc])
            .collect();
        let b0 = conv_bias.clone().unwrap_or_else(|| vec![0.0; c_out]);
        let b_folded: Vec<f32> = (0..c_out)
            .map(|oc| b0[oc] * scale[oc] + shift[oc])
            .collect();
        let mut got = vec![0.0; want.len()];
        conv2d(&p, &x, &w_folded, Some(&b_folded), &mut got);

        // The folded weights are rounded to f32 once more; outputs are O(1): 1e-5 of the
        // largest output, as the design's compare tolerance does with 1e-4.
        assert_close(&got, &want, Tol::max(1e-5, 0.0), "folded batch norm");
    }
}

#[test]
fn validate_names_the_attribute_and_values() {
    let p = BatchNormParams {
        n: 1,
        c: 2,
        spatial: 4,
        eps: 1e-5,
    };
    assert!(p.validate().is_ok());
    assert!(BatchNormParams { eps: 0.0, ..p }.validate().is_ok());
    let err = |p: BatchNormParams| p.validate().unwrap_err().0;
    assert_eq!(
        err(BatchNormParams { eps: -1.0, ..p }),
        "eps must be finite and at least 0, got -1"
    );
    assert_eq!(
        err(BatchNormParams { eps: f32::NAN, ..p }),
        "eps must be finite and at least 0, got NaN"
    );
    assert_eq!(
        err(BatchNormParams {
            eps: f32::INFINITY,
            ..p
        }),
        "eps must be finite and at least 0, got inf"
    );
    assert_eq!(
        err(BatchNormParams { c: 0, ..p }),
        "c must be at least 1, got 0"
    );
}
