//! max and average pooling on every backend (`testing::everywhere`): the SIMD kernels on
//! every instruction set and 1 and 2 threads, and `max_pool2d_f32`/`avg_pool2d_f32` on
//! CUDA, against the reference loops.
//!
//! Every attribute combination PyTorch allows is swept (kernel 1, 2, 3, 3×2 and 4×3;
//! stride 1–3; pad 0..=kernel/2 per axis; dilation 1–2 for max; ceil_mode;
//! count_include_pad for avg). Batch, channels and spatial size rotate with the combination
//! rather than multiplying it: each combination is its own CUDA specialisation to compile.
//! The sizes give the SIMD kernels their tails (widths 7, 13, 17, 40) and one plane too
//! wide for max pool's separable row buffer.

use super::{cpu, cuda, reference, Pool2dParams};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;

const KERNELS: [[usize; 2]; 5] = [[1, 1], [2, 2], [3, 3], [3, 2], [4, 3]];
const SIZES: [[usize; 2]; 5] = [[1, 1], [5, 7], [9, 13], [4, 17], [7, 40]];

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

/// Random x (with `poison` written over it: (index, value)) and the reference's max pool:
/// a max is one of its inputs, so bit-identical everywhere.
fn max_case(p: &Pool2dParams, poison: &[(usize, f32)], seed: u64) -> Case {
    let mut x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let len = x.len();
    for &(i, v) in poison {
        x[i % len] = v;
    }
    let mut expected = vec![0.0; p.output_shape().iter().product()];
    reference::max_pool2d(p, &x, &mut expected);
    let q = *p;
    Case::new(name("max_pool2d", p), vec![x], expected, Allow::Bits)
        .cuda(cuda::max_pool2d(p).unwrap())
        .cpu(move |isa, threads, x, y| cpu::max_pool2d(isa, &q, x[0], y, threads))
}

/// Random x and the reference's average pool: an f32 sum of at most 12 values where the
/// reference sums in f64, within rel 1e-5 of the sum of the window's |x|.
fn avg_case(p: &Pool2dParams, seed: u64) -> Case {
    let x = Rng::new(seed).vec(p.n * p.c * p.h * p.w);
    let len = p.output_shape().iter().product();
    let (mut expected, mut mags) = (vec![0.0; len], vec![0.0; len]);
    reference::avg_pool2d(p, &x, &mut expected);
    let abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    reference::avg_pool2d(p, &abs, &mut mags);
    let q = *p;
    Case::new(
        name("avg_pool2d", p),
        vec![x],
        expected,
        Allow::Given(1e-5, mags),
    )
    .cuda(cuda::avg_pool2d(p).unwrap())
    .cpu(move |isa, threads, x, y| cpu::avg_pool2d(isa, &q, x[0], y, threads))
}

/// ResNet's stem pool on a tail-sized width, and rows too wide for max pool's separable
/// row buffer (2048 floats), which take the direct path.
fn wide(ceil_mode: bool, count_include_pad: bool) -> [Pool2dParams; 2] {
    let p = |h, w, kernel, stride| Pool2dParams {
        n: 1,
        c: 2,
        h,
        w,
        kernel,
        stride,
        pad: [1, 1],
        dilation: [1, 1],
        ceil_mode,
        count_include_pad,
    };
    [p(24, 37, [3, 3], [2, 2]), p(5, 2100, [3, 2], [2, 3])]
}

/// The sweep at each of `dilations`, in both ceil modes, and the wide planes.
fn every(dilations: &[usize], count_include_pad: bool) -> Vec<Pool2dParams> {
    let mut all = Vec::new();
    for ceil_mode in [false, true] {
        for &d in dilations {
            all.extend(sweep(d, ceil_mode, count_include_pad));
        }
        all.extend(wide(ceil_mode, count_include_pad));
    }
    all
}

#[test]
fn max_pool2d_matches_reference() {
    let cases: Vec<Case> = every(&[1, 2], false)
        .iter()
        .enumerate()
        .map(|(i, p)| max_case(p, &[], i as u64 + 1))
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
    let mut cases: Vec<Case> = [
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
    cases.push(nan_before_a_larger_value());
    check("max_pool2d", &cases);
}

/// A NaN with a larger value after it in scan order, on a SIMD-wide row: the 3 windows
/// that hold the NaN are NaN (the 5 must not replace it), every other window is finite.
fn nan_before_a_larger_value() -> Case {
    let p = Pool2dParams {
        c: 1,
        h: 3,
        w: 40,
        stride: [1, 1],
        ..wide(false, true)[0]
    };
    let poison = [(60, f32::NAN), (61, 5.0), (0, 9.0)];
    let case = max_case(&p, &poison, 250);
    for (i, v) in case.expected.iter().enumerate() {
        assert_eq!(
            v.is_nan(),
            (19..=21).contains(&(i % 40)),
            "reference at {i}: {v}"
        );
    }
    case
}

#[test]
fn avg_pool2d_matches_reference() {
    let cases: Vec<Case> = [false, true]
        .into_iter()
        .flat_map(|count_include_pad| every(&[1], count_include_pad))
        .enumerate()
        .map(|(i, p)| avg_case(&p, i as u64 + 300))
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
    cuda::max_pool2d(&long_axis()).unwrap();
}

/// avg_pool2d's last window end, o * STRIDE - PAD + K, and its clip h + pad are 2^31,
/// which an int cannot hold: refused.
#[test]
fn avg_pool2d_refuses_h_plus_pad_past_int_max() {
    let msg = cuda::avg_pool2d(&long_axis()).unwrap_err().to_string();
    let want = "avg_pool2d on CUDA: window coordinates along h reach 2147483648";
    assert!(msg.contains(want), "{msg}");
}
