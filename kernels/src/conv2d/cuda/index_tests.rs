//! conv2d's CUDA kernels at the top of the 32-bit index range: the last blocks
//! of a depthwise conv whose output has 2^31 - 2 elements, run by the CPU emulator on
//! windows of the tensors (`emu::run_tail`) against the same sums computed here; and the
//! builder refusing window coordinates past 2^31 - 1.

use super::{conv2d_with, Gemm};
use crate::conv2d::Conv2dParams;
use crate::cuda::emu::{self, Window};
use crate::cuda::{blocks, CudaError, Launch, Source};
use crate::testing::{require_or_skip, Need, Rng};
use crate::{Activation, Precision};

/// Depthwise 3×3, pad 1, channel multiplier 3, with bias, residual and relu6:
/// y (2, 693, 49981, 31) holds 2 · 693 · 49981 · 31 = 2^31 - 2 elements, x 715,827,882.
/// Rows of 31 put several rows and the bottom padding in one block.
const P: Conv2dParams = Conv2dParams {
    n: 2,
    c_in: 231,
    h: 49981,
    w: 31,
    c_out: 693,
    kh: 3,
    kw: 3,
    stride: [1, 1],
    pad: [1, 1],
    dilation: [1, 1],
    groups: 231,
};

/// The element of y at `idx`, as the kernel computes it: the taps in order through fmaf,
/// then bias, residual, relu6. `x(i)` reads element i of x.
fn output(
    idx: usize,
    weight: &[f32],
    bias: &[f32],
    residual: f32,
    mut x: impl FnMut(usize) -> f32,
) -> f32 {
    let (oh, ow) = P.output_hw();
    let (ox, oy) = (idx % ow, idx / ow % oh);
    let (oc, img) = (idx / (oh * ow) % P.c_out, idx / (P.c_out * oh * ow));
    let ic = oc / (P.c_out / P.c_in);
    let mut acc = 0f32;
    for ky in 0..P.kh {
        for kx in 0..P.kw {
            let (iy, ix) = ((oy + ky).wrapping_sub(1), (ox + kx).wrapping_sub(1));
            if iy < P.h && ix < P.w {
                let w = weight[(oc * P.kh + ky) * P.kw + kx];
                acc = w.mul_add(x(((img * P.c_in + ic) * P.h + iy) * P.w + ix), acc);
            }
        }
    }
    (acc + bias[oc] + residual).clamp(0.0, 6.0)
}

/// The input elements the outputs `from..` read: [lo, hi).
fn x_span(from: usize) -> (usize, usize) {
    let total: usize = P.output_shape().iter().product();
    let (mut lo, mut hi) = (usize::MAX, 0);
    for idx in from..total {
        output(idx, &[0.0; 693 * 9], &[0.0; 693], 0.0, |i| {
            (lo, hi) = (lo.min(i), hi.max(i + 1));
            0.0
        });
    }
    (lo, hi)
}

/// `launch` (conv2d_dw_f32 over P) from block `first` on, on windows holding what those
/// blocks touch; Err when the emulator faults or y is wrong.
fn run_last_blocks(launch: &Launch, first: u32) -> Result<(), String> {
    let total: usize = P.output_shape().iter().product();
    let threads = launch.block[0] as usize;
    let from = first as usize * threads;
    let mut rng = Rng::new(13);
    let (weight, bias) = (rng.vec(P.c_out * 9), rng.vec(P.c_out));
    let (lo, hi) = x_span(from);
    let x = rng.vec(hi - lo);
    let residual = rng.vec(total - from);
    let y = vec![0.0; total - from];
    // Arguments: x, weight, bias, residual, y.
    let windows = [
        Window { at: lo, data: &x },
        Window {
            at: 0,
            data: &weight,
        },
        Window { at: 0, data: &bias },
        Window {
            at: from,
            data: &residual,
        },
        Window { at: from, data: &y },
    ];
    let out = emu::run_tail(launch, first as u64, &windows, 4)?;
    for (i, &got) in out.iter().enumerate() {
        let want = output(from + i, &weight, &bias, residual[i], |j| x[j - lo]);
        if got.to_bits() != want.to_bits() {
            return Err(format!("y[{}] = {got}, expected {want}", from + i));
        }
    }
    Ok(())
}

/// The launch the CUDA backend builds for P, with `DW_THREADS` and its grid set to
/// `threads` and `replace` applied to the source.
fn depthwise_launch(threads: usize, replace: Option<(&str, &str)>) -> Launch {
    let weight = vec![0.0; P.c_out * 9];
    let bias = vec![0.0; P.c_out];
    let gemm = Gemm::small(Precision::Fp32); // unused by depthwise convs
    let op = conv2d_with(&P, &weight, Some(&bias), true, Activation::Relu6, gemm).unwrap();
    let mut launch = op.launches[0].clone();
    assert_eq!(launch.entry, "conv2d_dw_f32");
    let define = "#define DW_THREADS 256";
    assert!(launch.source.code.contains(define));
    let mut code = launch
        .source
        .code
        .replace(define, &format!("#define DW_THREADS {threads}"));
    if let Some((from, to)) = replace {
        assert!(code.contains(from), "depthwise.cu no longer has `{from}`");
        code = code.replace(from, to);
    }
    let source = Source {
        name: launch.source.name,
        code: Box::leak(code.into_boxed_str()),
    };
    launch.source = Box::leak(Box::new(source));
    let total: usize = P.output_shape().iter().product();
    launch.grid = [blocks(total, threads), 1, 1];
    launch.block = [threads as u32, 1, 1];
    launch
}

/// The last two blocks of the launch, whose threads reach 2^31 - 1 with the kernel's 256
/// threads a block and 2^31 + 255 with 384. The index is unsigned, so both are right.
/// With the signed index the kernel had (`const int idx = blockIdx.x * DW_THREADS +
/// threadIdx.x`) 384 threads wrap past 2^31 to negative indices that pass the bounds
/// test: the emulator catches the read or write 8 GB below the tensor. (256 threads,
/// dividing 2^31, happen to stop at 2^31 - 1 even with the signed index.)
#[test]
fn depthwise_last_blocks_at_2_pow_31() {
    if let Err(why) = emu::available() {
        let what = "CPU emulation of depthwise_last_blocks_at_2_pow_31";
        return require_or_skip(Need::Emulator, what, &why);
    }
    for threads in [256, 384] {
        let launch = depthwise_launch(threads, None);
        run_last_blocks(&launch, launch.grid[0] - 2)
            .unwrap_or_else(|e| panic!("{threads} threads a block: {e}"));
    }
    let signed = (
        "const unsigned int t = blockIdx.x * DW_THREADS + threadIdx.x;",
        "const int t = blockIdx.x * DW_THREADS + threadIdx.x;",
    );
    let old = depthwise_launch(384, Some(signed));
    let err = run_last_blocks(&old, old.grid[0] - 2).unwrap_err();
    assert!(err.contains("memory fault"), "{err}");
}

/// A depthwise conv over an axis 2^31 - 1 long with `k` taps and `pad` on it: input and
/// output within the executor's 2^31 - 1 elements, built for CUDA.
fn long_axis_conv(k: usize, pad: usize) -> Result<(), CudaError> {
    let p = Conv2dParams {
        n: 1,
        c_in: 1,
        h: i32::MAX as usize,
        w: 1,
        c_out: 1,
        kh: k,
        kw: 1,
        stride: [1, 1],
        pad: [pad, 0],
        dilation: [1, 1],
        groups: 1,
    };
    assert_eq!(p.output_hw(), (i32::MAX as usize, 1));
    let gemm = Gemm::small(Precision::Fp32);
    conv2d_with(&p, &vec![0.0; k], None, false, Activation::None, gemm).map(drop)
}

/// 3 taps, pad 1: the last window's last tap is at 2^31 - 1, which fits.
#[test]
fn window_coordinates_up_to_int_max_build() {
    long_axis_conv(3, 1).unwrap();
}

/// 11 taps, pad 5: the last window reaches 2^31 + 3 before the bounds test skips it.
#[test]
fn window_coordinates_past_int_max_are_refused() {
    let err = long_axis_conv(11, 5).unwrap_err();
    assert!(matches!(err, CudaError::Unsupported { .. }), "{err:?}");
    let msg = err.to_string();
    let want = "conv2d on CUDA: window coordinates along h reach 2147483651";
    assert!(msg.contains(want), "{msg}");
}
