//! `QConvCpu` on every int8 path this CPU has against `QConv2d::reference`, bit for bit,
//! over swept shapes: every stride, pad, dilation and group kind, k and channel counts
//! off the quads and panels, grids wider than a panel, 1–3 threads, int8 and uint8
//! inputs, values past the range, NaN and infinities.

use super::{QConvCpu, QIn, QOut};
use crate::conv2d::Conv2dParams;
use crate::quantize::conv::QConv2d;
use crate::quantize::qadd::QAdd;
use crate::quantize::test_util::{input, int8_conv, quant, weights, Want};
use crate::quantize::{reference, QIsa, QuantDtype};
use crate::testing::Rng;

/// (c_in, c_out, h, w, [kh, kw], [sh, sw], [ph, pw], [dh, dw], groups)
type Shape = (
    usize,
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    usize,
);

const SHAPES: [Shape; 20] = [
    (16, 16, 8, 8, [1, 1], [1, 1], [0, 0], [1, 1], 1),
    (13, 11, 9, 7, [1, 1], [1, 1], [0, 0], [1, 1], 1),
    (24, 20, 9, 9, [1, 1], [2, 2], [0, 0], [1, 1], 1),
    (8, 16, 9, 7, [3, 3], [1, 1], [1, 1], [1, 1], 1),
    (3, 17, 15, 13, [3, 3], [2, 2], [1, 1], [1, 1], 1),
    (9, 10, 12, 11, [3, 3], [1, 1], [2, 2], [2, 2], 1),
    (6, 9, 11, 10, [3, 3], [2, 2], [1, 1], [1, 1], 3),
    (12, 12, 8, 9, [3, 3], [1, 1], [1, 1], [1, 1], 12),
    (10, 10, 9, 9, [3, 3], [2, 2], [1, 1], [1, 1], 10),
    (5, 7, 13, 12, [5, 5], [2, 2], [2, 2], [1, 1], 1),
    (3, 8, 20, 21, [7, 7], [2, 2], [3, 3], [1, 1], 1),
    (4, 6, 10, 12, [1, 3], [1, 2], [0, 1], [1, 1], 2),
    (7, 5, 11, 9, [3, 1], [2, 1], [1, 0], [1, 2], 1),
    (32, 40, 7, 7, [3, 3], [1, 1], [1, 1], [1, 1], 1),
    (8, 9, 30, 33, [3, 3], [1, 1], [0, 0], [1, 1], 1),
    (20, 3, 3, 4, [2, 2], [3, 3], [1, 1], [1, 1], 1),
    // Rows past the 64-byte chunks the quantizing fill scatters by.
    (3, 9, 5, 151, [3, 3], [2, 2], [1, 1], [1, 1], 1),
    (2, 5, 7, 140, [3, 3], [3, 3], [1, 1], [1, 1], 1),
    // Last column panels of 17 and 33 columns: one vector past a whole one or two.
    (6, 10, 5, 13, [1, 1], [1, 1], [0, 0], [1, 1], 1),
    (5, 9, 9, 9, [1, 1], [1, 1], [0, 0], [1, 1], 1),
];

fn conv(i: usize, s: &Shape, n: usize) -> QConv2d {
    let &(c_in, c_out, h, w, k, stride, pad, dilation, groups) = s;
    let p = Conv2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh: k[0],
        kw: k[1],
        stride,
        pad,
        dilation,
        groups,
    };
    int8_conv(p, i)
}

fn check(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, x: &[f32], what: &str) {
    let want = Want::new(q, w, bias, x);
    for qisa in QIsa::available() {
        let kernel = QConvCpu::new(q, w, bias, qisa);
        for threads in 1..=3 {
            let at = format!("{what}, {qisa}, {threads} threads");
            want.check(x, kernel.scratch_len(threads), &at, |x, y, scratch| {
                kernel.run_io(x, y, scratch, threads)
            });
        }
    }
}

/// Shape i's conv (batch 1 + i % 2), random weights over all 256 values, a bias and
/// inputs.
fn case(rng: &mut Rng, i: usize) -> (QConv2d, Vec<i8>, Vec<f32>, Vec<f32>) {
    let q = conv(i, &SHAPES[i], 1 + i % 2);
    let p = &q.p;
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    let w = weights(rng, c_out * cg_in * kh * kw);
    let bias: Vec<f32> = (0..c_out).map(|o| 0.05 * (o as f32 - 3.0)).collect();
    let x = input(rng, p.n * p.c_in * p.h * p.w);
    (q, w, bias, x)
}

#[test]
fn every_path_is_the_integer_reference_bit_for_bit() {
    let mut rng = Rng::new(0x17c0);
    for (i, s) in SHAPES.iter().enumerate() {
        let (q, w, bias, x) = case(&mut rng, i);
        let b = (i % 4 != 1).then_some(&bias[..]);
        check(&q, &w, b, &x, &format!("shape {i} {s:?}"));
    }
}

#[test]
fn the_largest_sums_stay_exact() {
    // k = 4608 (512 × 3 × 3), every input at the dtype's far end and every weight −128:
    // the shifted sums reach 4608 · 255 · 128 ≈ 1.5e8, far from i32's end but past f32's
    // 2^24, so the conversion's rounding is the reference's too.
    for (dtype, v) in [(QuantDtype::Int8, -1e6f32), (QuantDtype::Uint8, 1e6)] {
        let mut q = conv(0, &(512, 9, 3, 3, [3, 3], [1, 1], [1, 1], [1, 1], 1), 1);
        q.x = quant(0.5, 0, dtype);
        q.y = quant(1e4, 0, QuantDtype::Int8);
        let x = vec![v; 512 * 9];
        let w = vec![-128i8; 9 * 512 * 9];
        check(&q, &w, None, &x, dtype.name());
    }
}

#[test]
fn sums_at_max_k_stay_exact() {
    // k = MAX_K, the most `applies` takes, at the far ends: each shifted sum reaches
    // MAX_K · 255 · 128, within a few thousand of i32::MAX, and the compensation the
    // accumulators start from is as large; a bound of 255 · 127 would overflow here.
    let k = crate::quantize::conv::MAX_K;
    for (dtype, v, zp) in [
        (QuantDtype::Int8, -1e6f32, 127),
        (QuantDtype::Uint8, 1e6, 0),
    ] {
        let mut q = conv(0, &(k, 2, 1, 1, [1, 1], [1, 1], [0, 0], [1, 1], 1), 1);
        q.x = quant(0.5, zp, dtype);
        q.y = quant(1e5, 0, QuantDtype::Int8);
        let x = vec![v; k];
        let w: Vec<i8> = [-128i8, 127].iter().flat_map(|&w| vec![w; k]).collect();
        // The reference's sums are i32 too, and would wrap as the kernel's do: hold its
        // outputs to the sums taken in i64 (within a step: those round in f64 here).
        let x_q = vec![reference::quantize(&q.x, v); k];
        let w_q: Vec<i32> = w.iter().map(|&v| v.into()).collect();
        let y_q = q.reference(&x_q, &w_q, None);
        for (c, &got) in y_q.iter().enumerate() {
            let sum = (i64::from(x_q[0]) - zp) * i64::from(w[c * k]) * k as i64;
            let want = (sum as f64 * 0.5 * f64::from(q.w_scale[c]) / 1e5).round() as i32;
            assert!(
                (got - want).abs() <= 1,
                "{}: channel {c}: {got} vs {want}",
                dtype.name()
            );
        }
        check(&q, &w, None, &x, dtype.name());
    }
    let mut q = conv(0, &(k + 1, 2, 1, 1, [1, 1], [1, 1], [0, 0], [1, 1], 1), 1);
    assert!(!QConvCpu::applies(&q));
    q.p.c_in = k;
    assert!(QConvCpu::applies(&q));
}

#[test]
fn outputs_that_round_to_the_zero_point_are_plus_zero() {
    // A coarse output grid with no relu: many sums land just below 0 and round to the
    // zero point, which dequantizes to +0.0, never −0.0.
    let mut rng = Rng::new(0x2e0);
    for (i, s) in SHAPES.iter().enumerate().step_by(3) {
        let mut q = conv(i, s, 1);
        (q.relu, q.clamp) = (false, None);
        q.y = quant(40.0, q.y.zero_point.into(), q.y.dtype);
        let p = &q.p;
        let [c_out, cg_in, kh, kw] = p.weight_shape();
        let w = weights(&mut rng, c_out * cg_in * kh * kw);
        let x = input(&mut rng, p.n * p.c_in * p.h * p.w);
        check(&q, &w, None, &x, &format!("shape {i} near zero"));
    }
}

#[test]
fn a_fused_add_is_the_conv_then_qadd_bit_for_bit() {
    let mut rng = Rng::new(0xadd);
    for i in 0..SHAPES.len() {
        let (q, w, bias, x) = case(&mut rng, i);
        let (p, c_out) = (&q.p, q.p.c_out);
        let b = (i % 3 != 1).then_some(&bias[..]);
        let residual_q = [
            quant(0.05, 7, QuantDtype::Int8),
            quant(0.03, 100, QuantDtype::Uint8),
        ];
        let add = QAdd {
            a: q.y,
            b: residual_q[i % 2],
            y: quant(
                0.04 + 0.01 * (i % 3) as f64,
                [-3, 20][i % 2] + i as i64 % 7,
                [QuantDtype::Int8, QuantDtype::Uint8][i % 2],
            ),
            relu: i % 2 == 0,
        };
        let len = p.n * c_out * p.output_hw().0 * p.output_hw().1;
        let residual: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        // The two ops, each by its reference.
        let x_q: Vec<i32> = x.iter().map(|&v| reference::quantize(&q.x, v)).collect();
        let w_q: Vec<i32> = w.iter().map(|&v| i32::from(v)).collect();
        let shift = q.y.dtype.byte_shift();
        let conv_bytes: Vec<u8> = q
            .reference(&x_q, &w_q, b)
            .iter()
            .map(|&v| (v + shift) as u8)
            .collect();
        let (mut want, mut want_f) = (vec![0u8; len], vec![0f32; len]);
        let (cb, rb) = (QIn::U8(&conv_bytes), QIn::U8(&residual));
        add.reference(cb, rb, QOut::U8(&mut want));
        add.reference(cb, rb, QOut::F32(&mut want_f));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for qisa in QIsa::available() {
            let kernel = QConvCpu::new(&q, &w, b, qisa).with_add(add);
            for threads in [1, 3] {
                let mut scratch = vec![0.0; kernel.scratch_len(threads)];
                let mut y8 = vec![0u8; len];
                kernel.run_add(
                    QIn::F32(&x),
                    &residual,
                    QOut::U8(&mut y8),
                    &mut scratch,
                    threads,
                );
                assert_eq!(y8, want, "shape {i}, {qisa}, {threads} threads, bytes out");
                let mut y = vec![f32::NAN; len];
                let x_bytes: Vec<u8> = x_q
                    .iter()
                    .map(|&v| (v + q.x.dtype.byte_shift()) as u8)
                    .collect();
                kernel.run_add(
                    QIn::U8(&x_bytes),
                    &residual,
                    QOut::F32(&mut y),
                    &mut scratch,
                    threads,
                );
                assert_eq!(
                    bits(&y),
                    bits(&want_f),
                    "shape {i}, {qisa}, {threads} threads, f32 out"
                );
            }
        }
    }
}
