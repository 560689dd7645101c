//! `CpuConv`'s algorithms other than Winograd (kernels/tests/conv2d_winograd.rs) against
//! the reference conv (f64 sums), on every ISA this CPU has and on 1 and 2 threads: long k
//! and wide n across the GEMM's blocks, every conv of ResNet-18 and MobileNetV2,
//! stride-2 phase planes, pointwise in place, column tails, 1×1 planes as a GEMV and the
//! direct kernel (first layers and banded), each with bias / activation / residual
//! combinations; tolerances in kernels/tests/conv2d_case/mod.rs. The seeded sweep over odd
//! and SIMD-tail shapes runs on every backend with the other conv cases
//! (kernels/src/conv2d/backend_tests.rs).

mod conv2d_case;

use conv2d_case::{capped, Case, ACTS, REL, REL_WINOGRAD};
use kestrel_kernels::conv2d::cpu::direct::DirectCpu;
use kestrel_kernels::conv2d::cpu::ConvAlgorithm;
use kestrel_kernels::conv2d::shapes::{MOBILENET_V2, RESNET18};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::testing::{compare, Rng, Tol};
use kestrel_kernels::{Activation, Isa};

impl Case {
    /// As `check`, on `DirectCpu` cut into bands of `band_rows` output rows.
    fn check_direct(&self, band_rows: usize, isa: Isa, threads: usize, act: Activation, res: bool) {
        let conv = DirectCpu::with_band_rows(&self.p, &self.w, Some(&self.bias), isa, band_rows);
        let mut y = vec![f32::NAN; self.y0.len()];
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let residual = res.then_some(&self.residual[..]);
        conv.run_scaled(&self.x, None, residual, act, &mut y, &mut scratch, threads);
        let want = self.want(true, act, res);
        let tol = Tol::max(REL * self.clip_ratio(true, act, res), 0.0);
        if let Err(e) = compare(&y, &want, tol) {
            panic!(
                "{:?} {isa} threads {threads} {act:?} residual {res} bands of {band_rows}: {e}",
                self.p
            );
        }
    }
}

#[test]
fn compare_rejects_a_small_error() {
    // The checker itself: one output off by 2·REL·max must fail, so a kernel that drops a
    // tap, a k-block or a tail column cannot pass.
    let want = [1.0, -2.0, 0.5];
    let tol = |rel| Tol::max(rel, 0.0);
    assert!(compare(&want, &want, tol(REL)).is_ok());
    assert!(compare(&[1.0, -2.0 + 4e-5, 0.5], &want, tol(REL)).is_err());
    assert!(compare(&[1.0, f32::NAN, 0.5], &want, tol(REL)).is_err());
    assert!(compare(&[1.0, -2.0 + 4e-4, 0.5], &want, tol(REL_WINOGRAD)).is_err());
}

#[test]
fn long_k_and_wide_n_cross_block_boundaries() {
    // k = 600 · 9 = 5400 spans several kc-blocks (partial sums reloaded from y) and
    // n = 37 · 41 = 1517 several nc-blocks and every tail width.
    let mut rng = Rng::new(7);
    let p = Conv2dParams {
        n: 1,
        c_in: 600,
        h: 37,
        w: 41,
        c_out: 19,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let case = Case::new(p, &mut rng);
    for isa in Isa::available() {
        for threads in [1, 2] {
            case.check(isa, threads, true, Activation::Relu, true);
        }
    }
}

fn check_model(shapes: &[Conv2dParams], seed: u64) {
    let mut rng = Rng::new(seed);
    for (i, p) in shapes.iter().enumerate() {
        // 29: odd, so stride-2 layers get odd outputs and every panel tail shows up.
        let case = Case::new(capped(p, 29), &mut rng);
        for (j, isa) in Isa::available().into_iter().enumerate() {
            for threads in [1, 2] {
                case.check(isa, threads, true, Activation::Relu6, true);
                let r = i + j + threads;
                case.check(isa, threads, r % 2 == 0, ACTS[r % 3], false);
            }
        }
    }
}

#[test]
fn resnet18_convs() {
    let shapes: Vec<Conv2dParams> = RESNET18.iter().map(|(p, _)| *p).collect();
    check_model(&shapes, 18);
}

#[test]
fn mobilenet_v2_convs() {
    check_model(&MOBILENET_V2, 2);
}

#[test]
fn full_size_7x7_and_14x14_layers() {
    // The deep ResNet layers run uncapped: 7×7 outputs split m across threads.
    let mut rng = Rng::new(9);
    for (p, _) in RESNET18.iter().filter(|(p, _)| p.h <= 14) {
        let case = Case::new(*p, &mut rng);
        for isa in Isa::available() {
            for threads in [1, 2] {
                case.check(isa, threads, true, Activation::Relu, true);
            }
        }
    }
}

/// A 1×1 conv, no padding, stride s.
fn pointwise([n, c_in, c_out, h, w]: [usize; 5], s: usize, groups: usize) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh: 1,
        kw: 1,
        stride: [s, s],
        pad: [0, 0],
        dilation: [1, 1],
        groups,
    }
}

#[test]
fn stride_2_phase_planes_every_kernel_pad_and_parity() {
    // Stride-2 convs pack from x's phase planes: every kernel size up to the 7×7 stem,
    // every pad up to kernel/2 (so taps reach both padded borders), odd and even sides
    // (a last odd row/column that no tap reads), grouped and batched.
    let mut rng = Rng::new(22);
    for (kh, kw) in [(1, 1), (2, 3), (3, 3), (5, 4), (7, 7)] {
        for pad in 0..=kh.max(kw) / 2 {
            for (h, w, groups, n) in [(9, 12, 1, 1), (16, 11, 2, 2), (kh, kw + 1, 1, 1)] {
                let p = Conv2dParams {
                    n,
                    c_in: 3 * groups,
                    h,
                    w,
                    c_out: 17 * groups,
                    kh,
                    kw,
                    stride: [2, 2],
                    pad: [pad.min(kh / 2), pad.min(kw / 2)],
                    dilation: [1, 1],
                    groups,
                };
                if p.validate().is_err() {
                    continue;
                }
                let case = Case::new(p, &mut rng);
                for isa in Isa::available() {
                    for threads in [1, 2] {
                        case.check(isa, threads, true, Activation::Relu, true);
                    }
                }
            }
        }
    }
}

#[test]
fn pointwise_reads_x_in_place_across_blocks_and_groups() {
    // 1×1 stride-1 convs let the microkernel read x where it is: k = 600 spans several
    // kc-blocks (row offsets k0 · npix), n = 37 · 41 several nc-blocks and a tail panel
    // that is packed instead; groups offset x per group.
    let mut rng = Rng::new(11);
    for (c_in, c_out, groups) in [(600, 19, 1), (40, 24, 2)] {
        let p = pointwise([2, c_in, c_out, 37, 41], 1, groups);
        let case = Case::new(p, &mut rng);
        for isa in Isa::available() {
            for threads in [1, 2] {
                case.check(isa, threads, true, Activation::Relu6, true);
            }
        }
    }
}

#[test]
fn column_tails_of_every_width() {
    // n mod 8 = 1..=7 columns left after the 32/16/8 (avx2: 16/8) panels go to the column
    // tail kernels: each width, alone and after whole panels (7×7 = 49 = 32 + 16 + 1), with
    // k across kc-blocks (600: the tail adds to C's partial sums) and m off the 8/6-row panels.
    let mut rng = Rng::new(13);
    for (n, c_in, c_out) in [
        (1, 600, 19),
        (3, 5, 8),
        (5, 40, 13),
        (7, 600, 6),
        (49, 33, 17),
        (13, 9, 24),
        (302, 64, 7),
    ] {
        let p = pointwise([1, c_in, c_out, 1, n], 1, 1);
        let case = Case::new(p, &mut rng);
        for isa in Isa::available() {
            for threads in [1, 2] {
                case.check(isa, threads, true, Activation::Silu, true);
                case.check(isa, threads, false, Activation::None, false);
            }
        }
    }
}

#[test]
fn one_by_one_planes_run_as_a_linear_layer() {
    // Squeeze-excite's 1×1 convs of 1×1 planes go to the GEMV: output counts across its
    // 8- and 16-lane panels, batch 1 and 3, stride 2 (still a 1×1 output), and every
    // bias / activation / residual combination (the residual comes before the activation).
    let mut rng = Rng::new(12);
    for (n, c_in, c_out, s) in [
        (1, 7, 1, 1),
        (3, 33, 17, 1),
        (1, 240, 960, 1),
        (2, 9, 31, 2),
    ] {
        let p = pointwise([n, c_in, c_out, 1, 1], s, 1);
        let case = Case::new(p, &mut rng);
        assert_eq!(ConvAlgorithm::choose(&p, false), ConvAlgorithm::Gemv);
        for isa in Isa::available() {
            for threads in [1, 2] {
                for (i, act) in [Activation::Silu, Activation::HardSigmoid, Activation::Relu]
                    .into_iter()
                    .enumerate()
                {
                    case.check(isa, threads, i != 1, act, i != 2);
                    case.check(isa, threads, i == 1, act, i == 2);
                }
            }
        }
    }
}

/// A dense conv, dilation 1: [n, c_in, h, w, c_out], kernel, stride on both axes, pad.
fn dense(
    [n, c_in, h, w, c_out]: [usize; 5],
    [kh, kw]: [usize; 2],
    s: usize,
    pad: [usize; 2],
) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride: [s, s],
        pad,
        dilation: [1, 1],
        groups: 1,
    }
}

#[test]
fn direct_first_layer_every_kernel_pad_and_stride() {
    // Image-input convs (c_in ≤ 4) take the direct kernel: every kernel
    // size to the 7×7 stem, pads to k/2, strides 1 and 2, odd sides, c_out off the
    // 8-channel blocks, batch 2 (each image's planes), on every ISA and thread count.
    let mut rng = Rng::new(33);
    let mut seen = 0;
    for (kh, kw) in [(1, 1), (3, 3), (2, 5), (7, 7)] {
        for s in [1, 2] {
            for pad in [0, 1, 3] {
                for (c_in, c_out, h, w) in [(3, 13, 17, 22), (1, 8, 9, 40), (4, 33, 31, 7)] {
                    let pad = [pad.min(kh / 2), pad.min(kw / 2)];
                    let p = dense([2, c_in, h, w, c_out], [kh, kw], s, pad);
                    if p.validate().is_err() {
                        continue;
                    }
                    let case = Case::new(p, &mut rng);
                    let alg = ConvAlgorithm::choose(&p, false);
                    assert_eq!(alg, ConvAlgorithm::Direct, "{p:?}");
                    seen += 1;
                    for isa in Isa::available() {
                        for threads in [1, 2] {
                            case.check(isa, threads, true, Activation::Relu6, true);
                            case.check(isa, threads, false, Activation::None, false);
                        }
                    }
                }
            }
        }
    }
    assert!(seen > 50, "only {seen} shapes");
}

#[test]
fn direct_banded_every_kernel_stride_and_band() {
    // The direct kernel past first layers, cut into bands of 1, 2 and 3 output rows (the
    // last band short, its staged rows past the image zero) and one band: channels off
    // the 8-channel blocks, rows of 1–2 chunks with single-vector tails (7, 16, 20, 33
    // and 40 wide), pads to k/2, batch 2, on every ISA and thread count.
    let mut rng = Rng::new(35);
    for (kh, kw) in [(3, 3), (1, 1), (5, 5), (2, 3)] {
        for s in [1, 2] {
            for (c_in, c_out, h, w) in [(5, 8, 11, 40), (16, 13, 9, 33), (33, 17, 7, 80)] {
                let p = dense([2, c_in, h, w, c_out], [kh, kw], s, [kh / 2, kw / 2]);
                let case = Case::new(p, &mut rng);
                for band_rows in [1, 2, 3, 64] {
                    for isa in Isa::available() {
                        for threads in [1, 2] {
                            case.check_direct(band_rows, isa, threads, Activation::Relu6, true);
                        }
                    }
                }
                case.check_direct(2, Isa::best(), 2, Activation::Silu, false);
            }
        }
    }
}
