//! `QLinearCpu` on every int8 path this CPU has against `QConv2d::reference` (the layer
//! as a 1×1 conv on a 1×1 image), bit for bit: in_features off and on the quads and
//! vectors, out_features off and on the panels and blocks, batches of 1–3, 1–3 threads,
//! int8 and uint8 x and y, relu, output clamps, with and without bias, f32 and byte
//! inputs and outputs, values past the range, NaN and infinities, and the largest sums.

use super::QLinearCpu;
use crate::quantize::conv::QConv2d;
use crate::quantize::test_util::{input, quant, weights, Want};
use crate::quantize::{QIsa, QuantDtype};
use crate::testing::Rng;

/// The layer for case i: dtypes, zero points, relu and clamp varied by i.
fn layer(i: usize, n: usize, k: usize, out: usize) -> QConv2d {
    let dtype = |j: usize| [QuantDtype::Int8, QuantDtype::Uint8][j % 2];
    let (x, y) = (dtype(i), dtype(i / 2));
    let mid = |d: QuantDtype| i64::from((d.range().0 + d.range().1) / 2);
    QConv2d {
        p: QLinearCpu::conv_params(n, k, out),
        x: quant(0.03, mid(x) + (i as i64 % 7) - 3, x),
        w_scale: (0..out).map(|o| 0.004 + 0.001 * (o % 5) as f32).collect(),
        // Scales that put the sums' spread over the output's range at every k.
        y: quant(0.02 * (k as f64).sqrt(), mid(y) + (i as i64 % 5) - 2, y),
        relu: !i.is_multiple_of(3),
        clamp: (i % 5 == 1).then_some([-3, 40]),
    }
}

fn check(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, x: &[f32], what: &str) {
    let want = Want::new(q, w, bias, x);
    for qisa in QIsa::available() {
        let kernel = QLinearCpu::new(q, w, bias, qisa);
        for threads in 1..=3 {
            let at = format!("{what}, {qisa}, {threads} threads");
            want.check(x, kernel.scratch_len(threads), &at, |x, y, scratch| {
                kernel.run_io(x, y, scratch, threads)
            });
        }
    }
}

const INS: [usize; 10] = [1, 3, 4, 5, 63, 64, 65, 960, 1280, 2048 + 3];
const OUTS: [usize; 5] = [1, 7, 16, 17, 1000];

#[test]
fn every_path_is_the_integer_reference_bit_for_bit() {
    let mut rng = Rng::new(0x11ea);
    let mut i = 0;
    for &k in &INS {
        for &out in &OUTS {
            for n in 1..=3 {
                // The widest layers at one batch size each: they cost the most to check.
                if k * out > 100_000 && n != 1 + i % 3 {
                    continue;
                }
                let q = layer(i, n, k, out);
                let w = weights(&mut rng, out * k);
                // Within ±20 output steps.
                let step = 0.02 * (k as f32).sqrt();
                let bias: Vec<f32> = (0..out).map(|o| step * ((o % 41) as f32 - 20.0)).collect();
                let x = input(&mut rng, n * k);
                let b = (i % 7 != 3).then_some(&bias[..]);
                let what = format!(
                    "case {i}: n {n}, in {k}, out {out}, {q:?}, bias {}",
                    b.is_some()
                );
                check(&q, &w, b, &x, &what);
                i += 1;
            }
        }
    }
}

#[test]
fn the_largest_sums_stay_exact() {
    // Every x at the dtype's far end against weights of −128 or 127: the shifted sums
    // reach 2051 · 255 · 128 ≈ 6.7e7, past f32's 2^24, so the conversion's rounding is the
    // reference's too; the compensation is as large.
    let k = 2048 + 3;
    for (i, (dtype, v)) in [
        (QuantDtype::Int8, -1e6f32),
        (QuantDtype::Int8, 1e6),
        (QuantDtype::Uint8, 1e6),
        (QuantDtype::Uint8, -1e6),
    ]
    .into_iter()
    .enumerate()
    {
        for (j, weight) in [-128i8, 127].into_iter().enumerate() {
            for n in 1..=3 {
                let mut q = layer(i + j, n, k, 17);
                // The zero point at the other end: |x − zp| = 255.
                let (lo, hi) = dtype.range();
                q.x = quant(0.5, i64::from(if v > 0.0 { lo } else { hi }), dtype);
                q.y = quant(1e4, 0, QuantDtype::Int8);
                let x = vec![v; n * k];
                let w = vec![weight; 17 * k];
                let what = format!("{} x {v}, w {weight}, n {n}", dtype.name());
                check(&q, &w, None, &x, &what);
            }
        }
    }
}

#[test]
fn only_a_linears_shape_applies() {
    let mut q = layer(0, 2, 8, 3);
    assert!(QLinearCpu::applies(&q));
    q.p.h = 2;
    assert!(!QLinearCpu::applies(&q));
    let mut q = layer(0, 1, crate::quantize::conv::MAX_K + 1, 1);
    assert!(!QLinearCpu::applies(&q));
    q.p.c_in = crate::quantize::conv::MAX_K;
    assert!(QLinearCpu::applies(&q));
}
