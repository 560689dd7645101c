//! conv_transpose2d on every backend (`testing::everywhere`), against the reference
//! loops: `ConvTranspose2dCpu` on every instruction set and 1 and 2 threads (1 image and
//! 1 group split each GEMM and col2im over the threads; more images or groups give each
//! thread whole ones), and `conv_transpose2d_f32` on CUDA.
//!
//! Tolerance: each output is an f32 sum of up to (c_in/groups)·kh·kw products (≤ 136
//! here) in an order the f64 reference does not share: within rel 1e-5 of the sum of the
//! terms' magnitudes (Σ|x·w| + |bias|), plus 1e-6 absolute for the activations through
//! e^x, where CUDA's expf and the CPU's polynomial differ near 0.

use super::{cpu::ConvTranspose2dCpu, cuda, reference, ConvTranspose2dParams};
use crate::activation::backend_tests::{ACTS, ALL_ACTS};
use crate::testing::everywhere::{abs, check, Allow, Case};
use crate::testing::Rng;
use crate::Activation;

/// x: (n, c[0], hw[0], hw[1])  weight: (c[0], c[1]/groups, k[0], k[1]); per-axis
/// attributes [stride, pad, output_padding, dilation], each [along h, along w].
fn params(
    n: usize,
    c: [usize; 2],
    hw: [usize; 2],
    k: [usize; 2],
    attrs: [[usize; 2]; 4],
    groups: usize,
) -> ConvTranspose2dParams {
    let [stride, pad, output_padding, dilation] = attrs;
    let p = ConvTranspose2dParams {
        n,
        c_in: c[0],
        h: hw[0],
        w: hw[1],
        c_out: c[1],
        kh: k[0],
        kw: k[1],
        stride,
        pad,
        output_padding,
        dilation,
        groups,
    };
    p.validate().unwrap();
    p
}

/// Stride, pad, output_padding and dilation the same along both axes.
const fn same(s: usize, p: usize, op: usize, d: usize) -> [[usize; 2]; 4] {
    [[s, s], [p, p], [op, op], [d, d]]
}

/// Random x (with `poison` written over it: (index, value)), weight and bias, the
/// reference's output and the term magnitudes; on CUDA only when `cuda`.
fn case(
    p: &ConvTranspose2dParams,
    bias: bool,
    act: Activation,
    poison: &[(usize, f32)],
    cuda: bool,
    seed: u64,
) -> Case {
    let mut rng = Rng::new(seed);
    let mut x = rng.vec(p.in_len());
    for &(i, v) in poison {
        x[i] = v;
    }
    let w = rng.vec(p.weight_shape().iter().product());
    let b = bias.then(|| rng.vec(p.c_out));
    let mut expected = vec![0.0; p.out_len()];
    reference::conv_transpose2d(p, &x, &w, b.as_deref(), act, &mut expected);
    let mut mags = vec![0.0; p.out_len()];
    let b_abs = b.as_deref().map(abs);
    reference::conv_transpose2d(
        p,
        &abs(&x),
        &abs(&w),
        b_abs.as_deref(),
        Activation::None,
        &mut mags,
    );
    // 1e-6 absolute, as a magnitude at rtol 1e-5.
    mags.iter_mut().for_each(|m| *m += 0.1);
    let name = format!(
        "conv_transpose2d n{} c{}x{} {}x{} k{}x{} s{:?} p{:?} op{:?} d{:?} g{} bias{} {:?}",
        p.n,
        p.c_in,
        p.c_out,
        p.h,
        p.w,
        p.kh,
        p.kw,
        p.stride,
        p.pad,
        p.output_padding,
        p.dilation,
        p.groups,
        bias as u8,
        act
    );
    let op = cuda.then(|| cuda::conv_transpose2d(p, &w, b.as_deref(), act).unwrap());
    let q = *p;
    let case = Case::new(name, vec![x], expected, Allow::Given(1e-5, mags)).cpu(
        move |isa, threads, x, y| {
            let op = ConvTranspose2dCpu::new(&q, &w, b.as_deref(), isa);
            // NaN scratch: a kernel that reads scratch before writing it fails.
            let mut scratch = vec![f32::NAN; op.scratch_len(threads)];
            op.run(x[0], act, y, &mut scratch, threads);
        },
    );
    match op {
        Some(op) => case.cuda(op),
        None => case,
    }
}

/// One case per shape, bias on every other one, no activation.
fn sweep(shapes: &[ConvTranspose2dParams]) -> Vec<Case> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, p)| case(p, i % 2 == 0, Activation::None, &[], true, i as u64 + 1))
        .collect()
}

#[test]
fn kernels_strides_pads_and_dilations() {
    let shapes = [
        // U-Net's up-convolution: k2 s2, exactly doubling.
        params(1, [16, 8], [7, 9], [2, 2], same(2, 0, 0, 1), 1),
        params(3, [5, 3], [5, 7], [2, 2], same(2, 0, 0, 1), 1),
        // k3 s2 p1 output_padding 1: doubling too.
        params(1, [9, 17], [5, 7], [3, 3], same(2, 1, 1, 1), 1),
        // DCGAN's and FCN's k4 s2 p1.
        params(1, [17, 9], [6, 5], [4, 4], same(2, 1, 0, 1), 1),
        params(3, [3, 5], [4, 3], [4, 4], same(2, 1, 0, 1), 1),
        // Stride 1 (a plain conv of the flipped kernel), dilation 2, stride 3.
        params(1, [7, 5], [5, 7], [3, 3], same(1, 1, 0, 1), 1),
        params(1, [5, 7], [5, 7], [3, 3], same(1, 2, 0, 2), 1),
        params(1, [5, 3], [5, 4], [3, 3], same(2, 1, 1, 2), 1),
        params(1, [4, 6], [3, 5], [3, 3], same(3, 0, 2, 1), 1),
        // Stride past the kernel: outputs no tap reaches hold act(bias).
        params(1, [3, 4], [4, 5], [1, 1], same(2, 0, 1, 1), 1),
        // Per axis: k3x2, stride 2x1, pad 1x0, output_padding 1x0, dilation 1x2.
        params(
            3,
            [5, 6],
            [5, 7],
            [3, 2],
            [[2, 1], [1, 0], [1, 0], [1, 2]],
            1,
        ),
        // 1x1 inputs; a 1x1 output.
        params(1, [33, 17], [1, 1], [4, 4], same(2, 1, 0, 1), 1),
        params(1, [4, 3], [1, 1], [3, 3], same(1, 1, 0, 1), 1),
    ];
    check("conv_transpose2d", &sweep(&shapes));
}

#[test]
fn channels_off_the_tile_and_groups() {
    let shapes = [
        // c_in (GEMM k) and c_out·kh·kw (GEMM m) below, between and above the tiles.
        params(1, [1, 1], [9, 13], [3, 3], same(2, 1, 1, 1), 1),
        params(1, [33, 3], [5, 7], [2, 2], same(2, 0, 0, 1), 1),
        params(1, [3, 33], [5, 7], [2, 2], same(2, 0, 0, 1), 1),
        params(3, [17, 17], [3, 5], [3, 3], same(2, 1, 1, 1), 1),
        params(1, [130, 7], [3, 3], [2, 2], same(2, 0, 0, 1), 1),
        // Groups 2 and 4; depthwise-like (groups = c_in = c_out) and with 2 outputs each.
        params(1, [4, 6], [5, 7], [3, 3], same(2, 1, 1, 1), 2),
        params(3, [8, 4], [5, 4], [4, 4], same(2, 1, 0, 1), 4),
        params(1, [8, 8], [5, 7], [4, 4], same(2, 1, 0, 1), 8),
        params(1, [5, 10], [4, 5], [3, 3], same(2, 1, 1, 1), 5),
    ];
    check("conv_transpose2d", &sweep(&shapes));
}

#[test]
fn bias_and_activations() {
    // Every activation on one image (the GEMM split over threads) and on a grouped batch
    // (whole groups per thread), with and without a bias.
    let one = params(1, [6, 5], [5, 7], [3, 3], same(2, 1, 1, 1), 1);
    let grouped = params(2, [6, 4], [4, 5], [4, 4], same(2, 1, 0, 1), 2);
    let mut cases = Vec::new();
    for act in ALL_ACTS {
        cases.push(case(&one, true, act, &[], true, 100 + cases.len() as u64));
    }
    for p in [one, grouped] {
        for act in ACTS {
            cases.push(case(&p, false, act, &[], true, 100 + cases.len() as u64));
        }
    }
    check("conv_transpose2d", &cases);
}

#[test]
fn nan_and_infinities_reach_every_output_they_touch() {
    // k3 s2: each input reaches up to 9 outputs; a NaN makes them NaN, an infinity ±inf
    // (or NaN where +inf meets -inf).
    let p = params(1, [2, 3], [5, 7], [3, 3], same(2, 1, 1, 1), 1);
    let poison = [(3, f32::NAN), (17, f32::INFINITY), (40, f32::NEG_INFINITY)];
    let c = case(&p, true, Activation::Relu, &poison, true, 300);
    assert!(c.expected.iter().any(|v| v.is_nan()));
    assert!(c.expected.iter().any(|v| v.is_infinite()));
    check("conv_transpose2d", &[c]);
}

#[test]
fn many_pixels_go_through_in_chunks() {
    // m = 64·2·2 = 256 rows: 1024 pixels a chunk, so 40x40 inputs take two chunks, the
    // second a partial one (and so does each image of the batch). CPU only: 409,600
    // outputs are more than the emulator's budget.
    let one = params(1, [8, 64], [40, 40], [2, 2], same(2, 0, 0, 1), 1);
    let batch = params(2, [4, 64], [33, 35], [2, 2], same(2, 0, 0, 1), 1);
    let cases = [
        case(&one, true, Activation::Relu, &[], false, 400),
        case(&batch, false, Activation::None, &[], false, 401),
    ];
    check("conv_transpose2d", &cases);
}
