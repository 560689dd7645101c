//! upsample on every backend (`testing::everywhere`): the CPU kernel on every instruction
//! set and 1 and 2 threads, and `upsample_nearest_f32`/`upsample_bilinear_f32` on CUDA,
//! against the reference loops, bit for bit (every backend rounds each product and sum
//! as the reference does).
//!
//! Each resize runs in all three modes (nearest, bilinear with and without align_corners):
//! integer scales 2 and 3 (given as scale factors), 1.5 and 0.6, sizes given (odd, up and
//! down, and mixed), 1x1 up (DeepLabV3's pooled branch), out == in, a scale of 2.05 whose
//! output is still twice the input (no ×2 fast path), and rows wider than the CPU's
//! 512-column chunk. Batch and channels rotate.

use super::{cpu, cuda, reference, scaled_len, UpsampleMode, UpsampleParams};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::Rng;

const MODES: [UpsampleMode; 3] = [
    UpsampleMode::Nearest,
    UpsampleMode::Bilinear {
        align_corners: false,
    },
    UpsampleMode::Bilinear {
        align_corners: true,
    },
];

/// An input size and how the output size is set.
enum Out {
    /// `size=`: (oh, ow).
    Size([usize; 2]),
    /// `scale_factor=`: (along h, along w), the output floor(in · scale).
    Scale([f64; 2]),
}

const RESIZES: [([usize; 2], Out); 14] = [
    ([7, 5], Out::Scale([2.0, 2.0])),
    ([13, 17], Out::Scale([2.0, 2.0])),
    ([5, 7], Out::Scale([3.0, 3.0])),
    ([7, 9], Out::Scale([1.5, 1.5])),
    ([13, 17], Out::Scale([0.6, 0.6])),
    ([6, 10], Out::Scale([2.0, 2.05])),
    ([9, 11], Out::Scale([0.5, 1.7])),
    ([7, 5], Out::Size([12, 9])),
    ([13, 17], Out::Size([5, 6])),
    ([1, 1], Out::Size([9, 7])),
    ([6, 11], Out::Size([6, 11])),
    ([4, 9], Out::Size([3, 20])),
    ([3, 300], Out::Scale([2.0, 2.0])),
    ([2, 700], Out::Size([3, 1100])),
];

fn params(i: usize, [ih, iw]: [usize; 2], out: &Out, mode: UpsampleMode) -> UpsampleParams {
    let (oh, ow, scales) = match *out {
        Out::Size([oh, ow]) => (oh, ow, None),
        Out::Scale(s) => (scaled_len(ih, s[0]), scaled_len(iw, s[1]), Some(s)),
    };
    let p = UpsampleParams {
        n: 1 + i % 2,
        c: [1, 3, 4][i % 3],
        ih,
        iw,
        oh,
        ow,
        mode,
        scales,
    };
    p.validate().unwrap();
    p
}

/// Random x (with `poison` written over it: (index, value)) and the reference's output.
fn case(p: &UpsampleParams, poison: &[(usize, f32)], seed: u64) -> Case {
    let mut x = Rng::new(seed).vec(p.in_len());
    let len = x.len();
    for &(i, v) in poison {
        x[i % len] = v;
    }
    let mut expected = vec![0.0; p.out_len()];
    reference::upsample(p, &x, &mut expected);
    let name = format!(
        "upsample n{} c{} {}x{} -> {}x{} {:?} scales {:?}",
        p.n, p.c, p.ih, p.iw, p.oh, p.ow, p.mode, p.scales
    );
    let q = *p;
    Case::new(name, vec![x], expected, Allow::Bits)
        .cuda(cuda::upsample(p).unwrap())
        .cpu(move |isa, threads, x, y| cpu::upsample(isa, &q, x[0], y, threads))
}

#[test]
fn upsample_matches_reference() {
    let mut cases = Vec::new();
    for (i, (size, out)) in RESIZES.iter().enumerate() {
        for mode in MODES {
            let p = params(i, *size, out, mode);
            cases.push(case(&p, &[], cases.len() as u64 + 1));
        }
    }
    check("upsample", &cases);
}

#[test]
fn upsample_propagates_nan_and_infinities() {
    // NaN, +inf and -inf scattered: nearest copies them; bilinear spreads them to every
    // output with a tap on them, NaN where an infinity meets weight 0 or the other sign.
    let poison = [
        (3, f32::NAN),
        (10, f32::INFINITY),
        (11, f32::NEG_INFINITY),
        (40, f32::INFINITY),
        (77, f32::NAN),
        (100, f32::NEG_INFINITY),
    ];
    let mut cases = Vec::new();
    for (i, (size, out)) in RESIZES[..6].iter().enumerate() {
        for mode in MODES {
            let p = params(i, *size, out, mode);
            cases.push(case(&p, &poison, cases.len() as u64 + 100));
        }
    }
    let nans = cases
        .iter()
        .filter(|c| c.expected.iter().any(|v| v.is_nan()))
        .count();
    assert!(nans >= 12, "only {nans} cases have a NaN output");
    check("upsample", &cases);
}
