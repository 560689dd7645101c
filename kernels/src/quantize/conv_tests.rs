//! `QConv2d::reference` against PyTorch's reference form of a quantized conv (dequantize,
//! float conv, relu, quantize): every output within one quantization step, nearly all
//! equal, over grouped, depthwise, strided, dilated and padded convs with int8 and uint8
//! inputs; and one case worked by hand.

use super::conv::QConv2d;
use super::{reference, QuantDtype, QuantParams};
use crate::conv2d::{self, Conv2dParams};
use crate::testing::Rng;

fn params(scale: f64, zp: i64, dtype: QuantDtype) -> QuantParams {
    let (lo, hi) = dtype.range();
    QuantParams::new(scale, zp, lo.into(), hi.into(), dtype).unwrap()
}

#[test]
fn a_case_worked_by_hand() {
    // One pixel, one channel: (7 − 5) · 3 = 6 in i32, 6 · (0.5 · 0.25) + 0.25 = 1.0,
    // quantized at scale 0.25 around 0: 4.
    let c = QConv2d {
        p: Conv2dParams {
            n: 1,
            c_in: 1,
            h: 1,
            w: 1,
            c_out: 1,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        x: params(0.5, 5, QuantDtype::Int8),
        w_scale: vec![0.25],
        y: params(0.25, 0, QuantDtype::Int8),
        relu: false,
        clamp: None,
    };
    assert_eq!(c.reference(&[7], &[3], Some(&[0.25])), vec![4]);
}

#[test]
fn the_integer_conv_is_pytorchs_within_one_step() {
    let mut rng = Rng::new(0x18c);
    // (c_in, c_out, h, w, k, stride, pad, dilation, groups)
    let shapes = [
        (8, 16, 9, 7, 3, 1, 1, 1, 1),
        (6, 9, 11, 10, 3, 2, 1, 1, 3),
        (12, 12, 8, 9, 3, 1, 2, 2, 12),
        (16, 24, 5, 6, 1, 1, 0, 1, 1),
        (5, 7, 13, 12, 5, 2, 2, 1, 1),
    ];
    let (mut equal, mut total) = (0, 0);
    for (i, &(c_in, c_out, h, w, k, s, pad, d, groups)) in shapes.iter().enumerate() {
        let p = Conv2dParams {
            n: 2,
            c_in,
            h,
            w,
            c_out,
            kh: k,
            kw: k,
            stride: [s, s],
            pad: [pad, pad],
            dilation: [d, d],
            groups,
        };
        let dtype = [QuantDtype::Int8, QuantDtype::Uint8][i % 2];
        let (lo, hi) = dtype.range();
        let x = params(0.03, i64::from((lo + hi) / 2 + 3), dtype);
        let c = QConv2d {
            p,
            x,
            w_scale: (0..c_out).map(|o| 0.004 + 0.001 * (o % 5) as f32).collect(),
            y: params(0.02, -7, QuantDtype::Int8),
            relu: i % 3 != 0,
            clamp: None,
        };
        let pick = |rng: &mut Rng, lo: i32, hi: i32| lo + (rng.f32() * (hi - lo + 1) as f32) as i32;
        let x_q: Vec<i32> = (0..p.n * c_in * h * w)
            .map(|_| pick(&mut rng, lo, hi).min(hi))
            .collect();
        let [_, cg_in, _, _] = p.weight_shape();
        let w_q: Vec<i32> = (0..c_out * cg_in * k * k)
            .map(|_| pick(&mut rng, -127, 127).min(127))
            .collect();
        let bias: Vec<f32> = (0..c_out).map(|o| 0.05 * (o as f32 - 3.0)).collect();
        let got = c.reference(&x_q, &w_q, Some(&bias));
        // PyTorch's reference form: dequantize, float conv (f64 sums here), relu, quantize.
        let xf: Vec<f32> = x_q
            .iter()
            .map(|&q| reference::dequantize(&c.x, q))
            .collect();
        let cg = cg_in * k * k;
        let wf: Vec<f32> = w_q
            .iter()
            .enumerate()
            .map(|(j, &q)| q as f32 * c.w_scale[j / cg])
            .collect();
        let mut yf = vec![0.0; got.len()];
        conv2d::reference::conv2d(&p, &xf, &wf, Some(&bias), &mut yf);
        for (j, (&g, &v)) in got.iter().zip(&yf).enumerate() {
            let v = if c.relu { v.max(0.0) } else { v };
            let want = reference::quantize(&c.y, v);
            assert!(
                (g - want).abs() <= 1,
                "shape {i} [{j}]: {g} vs {want} (y {v})"
            );
            equal += usize::from(g == want);
            total += 1;
        }
    }
    eprintln!("integer conv vs PyTorch's reference form: {equal} of {total} equal");
    assert!(equal * 100 >= total * 99, "{equal} of {total} equal");
}
