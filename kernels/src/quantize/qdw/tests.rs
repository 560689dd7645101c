//! `QDepthwiseCpu` on every int8 path this CPU has (the grid, the blocked path and the
//! byte sums where this CPU has them) against `QConv2d::reference`, bit for bit: swept kernels, strides, pads (past the kernel's half too), dilations, plane sizes
//! (every width 1..=37, for the vector tails and the grid's rows packed into a vector),
//! channel counts, batches, 1–3 threads, int8 and uint8 in and out, relu and the output
//! clamp, f32 and byte inputs and outputs, values past the range, NaN and infinities, and
//! the largest sums f32 holds exactly.

use super::{QDepthwiseCpu, MAX_TAPS};
use crate::conv2d::Conv2dParams;
use crate::quantize::conv::QConv2d;
use crate::quantize::test_util::{input, int8_conv, quant, weights, Want};
use crate::quantize::{QIsa, QuantDtype};
use crate::testing::Rng;

/// (c, h, w, [kh, kw], [sh, sw], [ph, pw], [dh, dw])
type Shape = (
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 2],
);

const SHAPES: [Shape; 22] = [
    // MobileNet's: 3×3 and 5×5, stride 1 and 2, same padding, planes 7 to 56 wide.
    (4, 56, 56, [3, 3], [1, 1], [1, 1], [1, 1]),
    (3, 29, 30, [3, 3], [2, 2], [1, 1], [1, 1]),
    (17, 7, 7, [3, 3], [1, 1], [1, 1], [1, 1]),
    (5, 14, 14, [3, 3], [2, 2], [1, 1], [1, 1]),
    (3, 28, 28, [5, 5], [1, 1], [2, 2], [1, 1]),
    (4, 27, 28, [5, 5], [2, 2], [2, 2], [1, 1]),
    (20, 7, 7, [5, 5], [1, 1], [2, 2], [1, 1]),
    // Other kernels: 7×7, 1×1, rectangular.
    (3, 19, 21, [7, 7], [1, 1], [3, 3], [1, 1]),
    (2, 23, 17, [7, 7], [2, 2], [3, 3], [1, 1]),
    (6, 9, 11, [1, 1], [1, 1], [0, 0], [1, 1]),
    (5, 10, 13, [1, 1], [2, 2], [0, 0], [1, 1]),
    (4, 11, 9, [1, 3], [1, 2], [0, 1], [1, 1]),
    (3, 12, 10, [3, 1], [2, 1], [1, 0], [1, 2]),
    (3, 13, 15, [2, 5], [1, 1], [0, 2], [1, 1]),
    // Stride 3; dilation 2; pads past the kernel's half (and unpadded).
    (3, 20, 19, [3, 3], [3, 3], [1, 1], [1, 1]),
    (2, 17, 16, [5, 5], [3, 2], [2, 3], [1, 1]),
    (4, 15, 17, [3, 3], [1, 1], [2, 2], [2, 2]),
    (3, 16, 13, [5, 5], [2, 2], [4, 4], [2, 2]),
    (3, 9, 9, [3, 3], [1, 1], [3, 2], [1, 1]),
    (2, 8, 11, [3, 3], [2, 2], [3, 3], [1, 1]),
    (5, 12, 12, [3, 3], [1, 1], [0, 0], [1, 1]),
    // Rows past a 64-float chunk and wider than the vectors many times.
    (2, 5, 151, [3, 3], [2, 2], [1, 1], [1, 1]),
];

/// A depthwise conv of shape `s`, batch n; `i` varies the dtypes, zero points, scales,
/// relu and clamp.
fn conv(i: usize, s: &Shape, n: usize) -> QConv2d {
    let &(c, h, w, k, stride, pad, dilation) = s;
    let p = Conv2dParams {
        n,
        c_in: c,
        h,
        w,
        c_out: c,
        kh: k[0],
        kw: k[1],
        stride,
        pad,
        dilation,
        groups: c,
    };
    int8_conv(p, i)
}

/// Every path (each ISA's, on the grid, blocked and by byte sums where the CPU has
/// them), 1–3 threads, f32 and bytes in and out in all four pairings, against the
/// reference.
fn check(q: &QConv2d, w: &[i8], bias: Option<&[f32]>, x: &[f32], what: &str) {
    let want = Want::new(q, w, bias, x);
    let paths = QIsa::available()
        .into_iter()
        .flat_map(|qisa| ["grid", "blocked", "bytes"].map(|path| (qisa, path)));
    for (qisa, path) in paths {
        let kernel = QDepthwiseCpu::new(q, w, bias, qisa);
        let kernel = match path {
            "bytes" => kernel.with_byte_sums(true),
            _ => kernel.with_blocked(path == "blocked"),
        };
        if path == "bytes" && !kernel.sums_bytes() {
            continue;
        }
        for threads in 1..=3 {
            let at = format!("{what}, {qisa} {path}, {threads} threads");
            want.check(x, kernel.scratch_len(threads), &at, |x, y, scratch| {
                kernel.run_io(x, y, scratch, threads)
            });
        }
    }
}

/// Weights, a bias (none where i % 4 == 1) and inputs for conv `q`.
fn run_case(rng: &mut Rng, q: &QConv2d, i: usize, what: &str) {
    let p = &q.p;
    let w = weights(rng, p.c_in * p.kh * p.kw);
    let bias: Vec<f32> = (0..p.c_in).map(|o| 0.05 * (o as f32 - 3.0)).collect();
    let x = input(rng, p.n * p.c_in * p.h * p.w);
    let b = (i % 4 != 1).then_some(&bias[..]);
    check(q, &w, b, &x, what);
}

#[test]
fn every_path_is_the_integer_reference_bit_for_bit() {
    let mut rng = Rng::new(0xd3c0);
    for (i, s) in SHAPES.iter().enumerate() {
        let q = conv(i, s, 1 + i % 2);
        assert!(QDepthwiseCpu::applies(&q), "shape {i}");
        run_case(&mut rng, &q, i, &format!("shape {i} {s:?}"));
    }
}

#[test]
fn every_width_and_odd_height_is_the_reference() {
    // Each width 1..=37 under a kernel, stride, pad and dilation taken in turn: the
    // vectors' tails, and grids whose short rows share a vector.
    let kinds: [[[usize; 2]; 4]; 6] = [
        [[3, 3], [1, 1], [1, 1], [1, 1]],
        [[3, 3], [2, 2], [1, 1], [1, 1]],
        [[5, 5], [1, 1], [2, 2], [1, 1]],
        [[5, 5], [2, 2], [2, 2], [1, 1]],
        [[1, 1], [1, 1], [0, 0], [1, 1]],
        [[3, 2], [3, 1], [2, 0], [2, 1]],
    ];
    let mut rng = Rng::new(0x0dd5);
    for w in 1..=37 {
        for (j, &[k, stride, pad, dilation]) in kinds.iter().enumerate() {
            let i = w * kinds.len() + j;
            let h = 2 * (i % 6) + 1;
            let s: Shape = (1 + i % 3, h, w, k, stride, pad, dilation);
            let q = conv(i, &s, 1 + i % 2);
            if q.p.validate().is_err() {
                continue;
            }
            run_case(&mut rng, &q, i, &format!("width {w}: {s:?}"));
        }
    }
}

#[test]
fn the_largest_sums_stay_exact() {
    // 2×257 = 514 taps (MAX_TAPS), every input at the dtype's far end and every weight
    // −128: the sum reaches −514 · 255 · 128, just inside 2^24, for one output. Then
    // weights 127 and −128 by turns against inputs at either end.
    assert_eq!(MAX_TAPS, 514);
    for (dtype, v) in [(QuantDtype::Int8, 1e6f32), (QuantDtype::Uint8, 1e6)] {
        let zp = dtype.range().0;
        let mut q = conv(0, &(2, 2, 257, [2, 257], [1, 1], [0, 0], [1, 1]), 1);
        q.x = quant(0.5, zp.into(), dtype);
        q.w_scale = vec![0.001; 2];
        q.y = quant(100.0, 0, QuantDtype::Int8);
        q.relu = false;
        check(&q, &[-128; 2 * 514], None, &[v; 2 * 514], dtype.name());
        let w: Vec<i8> = (0..2 * 514).map(|j| [127, -128][j % 2]).collect();
        let x: Vec<f32> = (0..2 * 514).map(|j| [-1e6, 1e6][j / 3 % 2]).collect();
        check(&q, &w, None, &x, dtype.name());
    }
}

#[test]
fn a_nan_bias_quantizes_as_the_reference_casts_it() {
    // v = acc·m + NaN is NaN: the reference's quantize makes it 0 (relu: max makes it 0.0
    // first).
    let mut rng = Rng::new(0xb1a5);
    for i in 0..4 {
        let q = conv(i, &(3, 9, 10, [3, 3], [1, 1], [1, 1], [1, 1]), 1);
        let w = weights(&mut rng, 27);
        let bias = [0.5, f32::NAN, -0.25];
        let x = input(&mut rng, 3 * 90);
        check(&q, &w, Some(&bias), &x, &format!("NaN bias {i}"));
    }
}

#[test]
fn applies_to_depthwise_convs_of_at_most_max_taps() {
    let dw = |c_out, groups, k: [usize; 2]| {
        let mut q = conv(0, &(4, 300, 300, k, [1, 1], [0, 0], [1, 1]), 1);
        (q.p.c_out, q.p.groups) = (c_out, groups);
        QDepthwiseCpu::applies(&q)
    };
    assert!(dw(4, 4, [3, 3]));
    assert!(dw(4, 4, [2, 257]) && !dw(4, 4, [2, 258]) && !dw(4, 4, [23, 23]));
    // A channel multiplier of 2, groups of 2 channels, one group: not depthwise.
    assert!(!dw(8, 4, [3, 3]) && !dw(4, 2, [3, 3]) && !dw(4, 1, [3, 3]));
}
