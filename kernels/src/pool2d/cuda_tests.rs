//! `max_pool2d_f32` and `avg_pool2d_f32` against the reference loops, through the CUDA
//! test harness (NVRTC compile, CPU emulation, and the GPU when there is one).
//!
//! Every attribute combination PyTorch allows is swept (kernel 1, 2, 3 and 3×2; stride
//! 1–3; pad 0..=kernel/2 per axis; dilation 1–2 for max; ceil_mode; count_include_pad for
//! avg). Batch, channels and spatial size (1×1, 5×7, 9×13) rotate with the combination
//! rather than multiplying it: each combination is its own specialisation to compile, and
//! each test fn stays around 10^4 outputs.

use super::cuda::{avg_pool2d, max_pool2d};
use super::{reference, Pool2dParams};
use crate::cuda::testing::{check, Case};
use crate::testing::Rng;

// A max is one of its inputs: exact.
const MAX_RTOL: f64 = 0.0;
// An f32 sum of at most 9 values where the reference sums in f64: rel 1e-5.
const AVG_RTOL: f64 = 1e-5;

const KERNELS: [[usize; 2]; 4] = [[1, 1], [2, 2], [3, 3], [3, 2]];
const SIZES: [[usize; 2]; 3] = [[1, 1], [5, 7], [9, 13]];

/// Every (kernel, stride, pad) PyTorch allows, stride and pad the same on both axes or
/// not, for one ceil_mode, dilation and count_include_pad: the rotation picks batch,
/// channels and the first size (from `rotate`) where the output is at least 1×1.
fn sweep(dilation: usize, ceil_mode: bool, count_include_pad: bool) -> Vec<Pool2dParams> {
    let mut all = Vec::new();
    let mut rotate = 0;
    for kernel in KERNELS {
        for stride in [[1, 1], [2, 2], [3, 3], [1, 2]] {
            for ph in 0..=kernel[0] / 2 {
                for pw in 0..=kernel[1] / 2 {
                    rotate += 1;
                    let params = |[h, w]: [usize; 2]| Pool2dParams {
                        n: 1 + rotate % 2,
                        c: [1, 3, 2][rotate % 3],
                        h,
                        w,
                        kernel,
                        stride,
                        pad: [ph, pw],
                        dilation: [dilation; 2],
                        ceil_mode,
                        count_include_pad,
                    };
                    let fits = (0..SIZES.len())
                        .map(|s| params(SIZES[(rotate + s) % SIZES.len()]))
                        .find(|p| p.validate().is_ok());
                    all.extend(fits);
                }
            }
        }
    }
    all
}

fn name(op: &str, p: &Pool2dParams) -> String {
    format!(
        "{op} n{} c{} {}x{} k{:?} s{:?} p{:?} d{:?} ceil {} include_pad {}",
        p.n, p.c, p.h, p.w, p.kernel, p.stride, p.pad, p.dilation, p.ceil_mode, p.count_include_pad
    )
}

/// Random x (with `poison` written over it: (index, value)) and the reference's max pool.
fn max_case(p: &Pool2dParams, poison: &[(usize, f32)], seed: u64) -> Case {
    let mut x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let len = x.len();
    for &(i, v) in poison {
        x[i % len] = v;
    }
    let mut expected = vec![0.0; p.output_shape().iter().product()];
    reference::max_pool2d(p, &x, &mut expected);
    Case {
        name: name("max_pool2d", p),
        op: max_pool2d(p).unwrap(),
        inputs: vec![x],
        expected,
        rtol: MAX_RTOL,
    }
}

fn avg_case(p: &Pool2dParams, seed: u64) -> Case {
    let x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let mut expected = vec![0.0; p.output_shape().iter().product()];
    reference::avg_pool2d(p, &x, &mut expected);
    Case {
        name: name("avg_pool2d", p),
        op: avg_pool2d(p).unwrap(),
        inputs: vec![x],
        expected,
        rtol: AVG_RTOL,
    }
}

#[test]
fn max_pool2d_floor_mode_matches_reference() {
    let cases: Vec<Case> = [1, 2]
        .into_iter()
        .flat_map(|d| sweep(d, false, false))
        .enumerate()
        .map(|(i, p)| max_case(&p, &[], i as u64 + 1))
        .collect();
    check("max_pool2d", &cases);
}

#[test]
fn max_pool2d_ceil_mode_matches_reference() {
    let cases: Vec<Case> = [1, 2]
        .into_iter()
        .flat_map(|d| sweep(d, true, false))
        .enumerate()
        .map(|(i, p)| max_case(&p, &[], i as u64 + 100))
        .collect();
    check("max_pool2d", &cases);
}

#[test]
fn max_pool2d_propagates_nan_and_infinities() {
    // 9×13 planes, NaN, +inf and -inf scattered: windows with a NaN are NaN (even next to
    // +inf), windows with +inf and no NaN are +inf, -inf only loses.
    let poison = [
        (3, f32::NAN),
        (4, f32::INFINITY),
        (20, f32::NEG_INFINITY),
        (40, f32::INFINITY),
        (41, f32::NAN),
        (77, f32::NEG_INFINITY),
        (130, f32::NAN),
        (200, f32::INFINITY),
    ];
    let cases: Vec<Case> = [
        ([2, 2], [2, 2], [0, 0]),
        ([3, 3], [1, 1], [1, 1]),
        ([3, 2], [2, 1], [1, 0]),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (kernel, stride, pad))| {
        let p = Pool2dParams {
            n: 2,
            c: 2,
            h: 9,
            w: 13,
            kernel,
            stride,
            pad,
            dilation: [1, 1 + i % 2],
            ceil_mode: i == 0,
            count_include_pad: false,
        };
        p.validate().unwrap();
        max_case(&p, &poison, i as u64 + 200)
    })
    .collect();
    check("max_pool2d", &cases);
}

#[test]
fn avg_pool2d_excluding_pad_matches_reference() {
    let cases: Vec<Case> = [false, true]
        .into_iter()
        .flat_map(|ceil| sweep(1, ceil, false))
        .enumerate()
        .map(|(i, p)| avg_case(&p, i as u64 + 300))
        .collect();
    check("avg_pool2d", &cases);
}

#[test]
fn avg_pool2d_including_pad_matches_reference() {
    let cases: Vec<Case> = [false, true]
        .into_iter()
        .flat_map(|ceil| sweep(1, ceil, true))
        .enumerate()
        .map(|(i, p)| avg_case(&p, i as u64 + 400))
        .collect();
    check("avg_pool2d", &cases);
}

/// A 3-tap pool with pad 1 along an axis 2^31 - 1 long: input and output within the
/// executor's 2^31 - 1 elements.
fn long_axis() -> Pool2dParams {
    let p = Pool2dParams {
        n: 1,
        c: 1,
        h: i32::MAX as usize,
        w: 1,
        kernel: [3, 1],
        stride: [1, 1],
        pad: [1, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    p.validate().unwrap();
    p
}

/// max_pool2d's window coordinates stop at 2^31 - 1: it builds.
#[test]
fn max_pool2d_builds_up_to_int_max() {
    max_pool2d(&long_axis()).unwrap();
}

/// avg_pool2d's last window end, o * STRIDE - PAD + K, and its clip h + pad are 2^31,
/// which an int cannot hold: refused.
#[test]
fn avg_pool2d_refuses_h_plus_pad_past_int_max() {
    let msg = avg_pool2d(&long_axis()).unwrap_err().to_string();
    let want = "avg_pool2d on CUDA: window coordinates along h reach 2147483648";
    assert!(msg.contains(want), "{msg}");
}
