use super::*;

fn data(len: usize) -> Data {
    vec![0.5; len].into()
}

#[test]
fn weight_len_counts_weights_bias_and_folded_batch_norm() {
    // conv 3→8 3x3, groups 1: weight (8, 3, 3, 3) = 216 floats, bias 8.
    let p = Conv2dParams {
        n: 2,
        c_in: 3,
        h: 9,
        w: 9,
        c_out: 8,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let conv = |bias: Option<Data>| Kernel::Conv2d {
        p,
        weight: data(p.weight_shape().iter().product()),
        bias,
        residual: true,
        act: Activation::Relu,
        in_scale: false,
    };
    assert_eq!(conv(Some(data(8))).weight_len(), 216 + 8);
    assert_eq!(conv(None).weight_len(), 216);
    // depthwise 16 channels 3x3: weight (16, 1, 3, 3) = 144.
    let dw = Conv2dParams {
        c_in: 16,
        c_out: 16,
        groups: 16,
        ..p
    };
    let dwconv = Kernel::Conv2d {
        p: dw,
        weight: data(dw.weight_shape().iter().product()),
        bias: None,
        residual: false,
        act: Activation::None,
        in_scale: false,
    };
    assert_eq!(dwconv.weight_len(), 144);
    // linear 100→10: weight (10, 100), bias 10.
    let linear = Kernel::Linear {
        p: LinearParams {
            rows: 4,
            in_features: 100,
            out_features: 10,
        },
        weight: data(1000),
        bias: Some(data(10)),
        act: Activation::None,
    };
    assert_eq!(linear.weight_len(), 1010);
    // batch norm on 6 channels: scale and shift, whatever of its four vectors it has.
    let bn = Kernel::BatchNorm {
        p: BatchNormParams {
            n: 1,
            c: 6,
            spatial: 49,
            eps: 1e-5,
        },
        weight: None,
        bias: Some(data(6)),
        mean: data(6),
        var: data(6),
    };
    assert_eq!(bn.weight_len(), 12);
    for k in [
        Kernel::Act(Activation::Relu),
        Kernel::Alias,
        Kernel::Add {
            act: Activation::None,
        },
    ] {
        assert_eq!(k.weight_len(), 0, "{k:?}");
    }
}
