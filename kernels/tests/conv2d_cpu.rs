//! `CpuConv`'s algorithms against the reference conv (f64 sums), on every ISA this CPU
//! has and on 1 and 2 threads: long k and wide n across its blocks, every conv of ResNet-18
//! and MobileNetV2, Winograd, stride-2 phase planes, pointwise in place, column tails, 1×1
//! planes as a linear layer and the direct kernel (first layers and banded), each with bias / activation /
//! residual combinations. The seeded sweep over odd and SIMD-tail shapes runs on every
//! backend with the other conv cases (kernels/src/conv2d/backend_tests.rs).
//!
//! Tolerance: |got − want| ≤ 1e-5 · max|want| for every output. The GEMM sums k in f32, in
//! kc-blocks and with FMA, in another order than the reference's f64 sum: the rounding
//! error grows like √k · ε · |partial sums|, about 1e-6 of max|want| at k = 4608.
//!
//! Winograd F(4×4, 3×3) gets `REL_WINOGRAD` = 1e-4 instead: its transforms multiply
//! rounding errors by their entries (Bᵀ up to 5, Aᵀ up to 8, G down to 1/24, so up to
//! ~8 · 5 per axis before cancellation). Measured max|err| / max|y| against the f64
//! reference on the full-size ResNet-18 3×3 stride-1 layers with realistic data (x ~
//! relu(N(0,1)), w ~ N(0, 2/fan_in)): 4.6e-6 (64@56²), 7.0e-6 (128@28²), 9.0e-6 (256@14²),
//! 6.0e-6 (512@7²); im2col-gemm: ~3e-7. On the uniform [-1, 1) data below it stays under
//! 2e-5 (`winograd_error_is_measured`). 1e-4 leaves 5× headroom and is still the
//! end-to-end budget of the fixtures, which pass with Winograd on. F(2×2, 3×3) gets
//! `REL_WINOGRAD2` = 1e-5, im2col's: its transforms only add and halve, measured ~1e-6
//! on the same layers and data.

use kestrel_kernels::conv2d::cpu::direct::DirectCpu;
use kestrel_kernels::conv2d::cpu::winograd::{Tile, Winograd};
use kestrel_kernels::conv2d::cpu::{ConvAlgorithm, CpuConv};
use kestrel_kernels::conv2d::shapes::{MOBILENET_V2, RESNET18};
use kestrel_kernels::conv2d::{reference, Conv2dParams};
use kestrel_kernels::testing::{compare, Rng, Tol};
use kestrel_kernels::{Activation, Isa};

/// SIMD reorders the k-sum: rel 1e-5 of the largest output.
const REL: f64 = 1e-5;
/// Winograd's transforms amplify f32 rounding (see the module doc): rel 1e-4.
const REL_WINOGRAD: f64 = 1e-4;
/// F(2×2, 3×3)'s transforms hold only 0, ±1 and ±½, so they add a few roundings per
/// output, not an amplification: rel 1e-5, as im2col (see the module doc).
const REL_WINOGRAD2: f64 = 1e-5;

/// One conv's inputs and its reference output without bias.
struct Case {
    p: Conv2dParams,
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    residual: Vec<f32>,
    /// conv(x, w) without bias, f64 sums rounded once.
    y0: Vec<f32>,
}

impl Case {
    fn new(p: Conv2dParams, rng: &mut Rng) -> Case {
        p.validate().unwrap();
        let y_len: usize = p.output_shape().iter().product();
        let x = rng.vec(p.n * p.c_in * p.h * p.w);
        let w = rng.vec(p.weight_shape().iter().product());
        let mut y0 = vec![0.0; y_len];
        reference::conv2d(&p, &x, &w, None, &mut y0);
        Case {
            bias: rng.vec(p.c_out),
            residual: rng.vec(y_len),
            p,
            x,
            w,
            y0,
        }
    }

    /// act(y0 + bias + residual), in f64.
    fn want(&self, bias: bool, act: Activation, residual: bool) -> Vec<f32> {
        let plane = self.y0.len() / self.p.n / self.p.c_out;
        (0..self.y0.len())
            .map(|i| {
                let c = i / plane % self.p.c_out;
                let mut v = f64::from(self.y0[i]);
                if bias {
                    v += f64::from(self.bias[c]);
                }
                if residual {
                    v += f64::from(self.residual[i]);
                }
                act.apply(v as f32)
            })
            .collect()
    }

    /// max|pre-activation| / max|want|: the error scales with the sums before relu6
    /// clips them (uniform data over 2304 taps gives |sums| ~ 50, clipped to 6), so the
    /// tolerance is relative to the sums.
    fn clip_ratio(&self, bias: bool, act: Activation, residual: bool) -> f64 {
        let max = |v: &[f32]| v.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        let (pre, post) = (
            max(&self.want(bias, Activation::None, residual)),
            max(&self.want(bias, act, residual)),
        );
        if post > 0.0 {
            pre / post
        } else {
            1.0
        }
    }

    /// Runs `CpuConv` on `isa` with `threads` and checks it; NaN-filled y and scratch
    /// catch outputs never written and scratch read before it is packed.
    fn check(&self, isa: Isa, threads: usize, bias: bool, act: Activation, residual: bool) {
        let conv = CpuConv::new(&self.p, &self.w, bias.then_some(&self.bias[..]), isa, false);
        let mut y = vec![f32::NAN; self.y0.len()];
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let res = residual.then_some(&self.residual[..]);
        conv.run(&self.x, res, act, &mut y, &mut scratch, threads);
        let want = self.want(bias, act, residual);
        let rel = match conv.algorithm() {
            ConvAlgorithm::Winograd(Tile::F4x4) => REL_WINOGRAD,
            ConvAlgorithm::Winograd(Tile::F2x2) => REL_WINOGRAD2,
            _ => REL,
        };
        let tol = Tol::max(rel * self.clip_ratio(bias, act, residual), 0.0);
        if let Err(e) = compare(&y, &want, tol) {
            panic!(
                "{:?} {isa} threads {threads} bias {bias} {act:?} residual {residual} ({}): {e}",
                self.p,
                conv.name()
            );
        }
    }

    /// As `check`, on `Winograd` with `tile` whatever `CpuConv` would choose.
    #[allow(clippy::too_many_arguments)]
    fn check_winograd(
        &self,
        tile: Tile,
        isa: Isa,
        threads: usize,
        bias: bool,
        act: Activation,
        res: bool,
    ) {
        let conv = Winograd::new(&self.p, &self.w, bias.then_some(&self.bias[..]), isa, tile);
        let mut y = vec![f32::NAN; self.y0.len()];
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let residual = res.then_some(&self.residual[..]);
        conv.run(&self.x, residual, act, &mut y, &mut scratch, threads);
        let want = self.want(bias, act, res);
        let rel = match tile {
            Tile::F4x4 => REL_WINOGRAD,
            Tile::F2x2 => REL_WINOGRAD2,
        };
        let tol = Tol::max(rel * self.clip_ratio(bias, act, res), 0.0);
        if let Err(e) = compare(&y, &want, tol) {
            panic!(
                "{:?} {isa} threads {threads} bias {bias} {act:?} residual {res} ({tile:?}): {e}",
                self.p
            );
        }
    }
}

impl Case {
    /// As `check`, on `DirectCpu` cut into bands of `band_rows` output rows.
    fn check_direct(&self, band_rows: usize, isa: Isa, threads: usize, act: Activation, res: bool) {
        let conv = DirectCpu::with_band_rows(&self.p, &self.w, Some(&self.bias), isa, band_rows);
        let mut y = vec![f32::NAN; self.y0.len()];
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let residual = res.then_some(&self.residual[..]);
        conv.run(&self.x, residual, act, &mut y, &mut scratch, threads);
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

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

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

/// A model conv at most `cap` pixels on a side (channels, kernel, stride kept), so the
/// 224×224 and 112×112 layers run in the reference at test speed.
fn capped(p: &Conv2dParams, cap: usize) -> Conv2dParams {
    Conv2dParams {
        h: p.h.min(cap),
        w: p.w.min(cap),
        ..*p
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

fn conv3x3(n: usize, c_in: usize, c_out: usize, h: usize, w: usize, pad: usize) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h,
        w,
        c_out,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [pad, pad],
        dilation: [1, 1],
        groups: 1,
    }
}

#[test]
fn winograd_odd_sizes_tails_and_epilogues() {
    // h, w not multiples of 4 (partial tiles at the right/bottom), tile counts around the
    // 16-lane transform width, channels with SIMD and mr tails, pad 0 and 1, batch 2.
    let isas = Isa::available();
    eprintln!("ISAs tested: {isas:?}");
    let mut rng = Rng::new(0x3a3);
    let hws = [3, 4, 5, 7, 9, 13, 17];
    let chans = [1, 3, 8, 9, 17, 33];
    for (i, &h) in hws.iter().enumerate() {
        for pad in [0, 1] {
            let w = hws[(i * 3 + pad + 1) % hws.len()];
            let c_in = chans[(i + pad) % chans.len()];
            let c_out = chans[(i * 5 + 2 * pad + 3) % chans.len()];
            let p = conv3x3(1 + (i + pad) % 2, c_in, c_out, h, w, pad);
            if p.validate().is_err() {
                continue;
            }
            let case = Case::new(p, &mut rng);
            for &isa in &isas {
                for threads in [1, 2] {
                    for (j, act) in ACTS.into_iter().enumerate() {
                        for bias in [false, true] {
                            let res = (j + usize::from(bias)) % 2 == 0;
                            for tile in [Tile::F4x4, Tile::F2x2] {
                                case.check_winograd(tile, isa, threads, bias, act, res);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn winograd_wide_and_deep() {
    // 61 × 45 output tiles (> the GEMM's nc-block), k = 300 > kc: the GEMM's blocking
    // under Winograd, and CpuConv choosing it (so its tolerance is the Winograd one).
    let mut rng = Rng::new(11);
    let p = conv3x3(1, 300, 40, 243, 179, 1);
    let case = Case::new(p, &mut rng);
    let winograd = ConvAlgorithm::Winograd(Tile::F4x4);
    assert_eq!(ConvAlgorithm::choose(&p, false), winograd);
    for isa in Isa::available() {
        for threads in [1, 2] {
            case.check(isa, threads, true, Activation::Relu, true);
        }
    }
}

#[test]
fn winograd_error_is_measured() {
    // The error the tolerances are set from, on the ResNet-18 layers (capped at 29 pixels)
    // for both tiles: printed with --nocapture, and bounded well inside their tolerance.
    let mut rng = Rng::new(5);
    for (p, _) in RESNET18
        .iter()
        .filter(|(p, _)| p.kh == 3 && p.stride == [1, 1])
    {
        let case = Case::new(capped(p, 29), &mut rng);
        for (tile, rel) in [(Tile::F4x4, REL_WINOGRAD), (Tile::F2x2, REL_WINOGRAD2)] {
            let conv = Winograd::new(&case.p, &case.w, None, Isa::best(), tile);
            let mut y = vec![0.0; case.y0.len()];
            let mut scratch = vec![0.0; conv.scratch_len(1)];
            conv.run(&case.x, None, Activation::None, &mut y, &mut scratch, 1);
            let max = case.y0.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = y
                .iter()
                .zip(&case.y0)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                / max;
            eprintln!(
                "winograd {tile:?} {:?}: max|err| / max|y| = {err:.2e}",
                case.p
            );
            assert!(f64::from(err) < rel / 5.0, "{tile:?}: {err}");
        }
    }
}

#[test]
fn winograd_2x2_on_small_planes() {
    // 7×7 outputs have 4 F(4×4) tiles and 16 F(2×2) ones: CpuConv picks F(2×2) (as
    // for ResNet's 512@7²), so its tolerance is REL_WINOGRAD2; 5×5 has too few tiles for
    // either and keeps im2col.
    let mut rng = Rng::new(77);
    let f2 = ConvAlgorithm::Winograd(Tile::F2x2);
    for (hw, want) in [(7, f2), (9, f2), (5, ConvAlgorithm::Gemm)] {
        let p = conv3x3(2, 40, 33, hw, hw, 1);
        let case = Case::new(p, &mut rng);
        assert_eq!(ConvAlgorithm::choose(&p, false), want, "{p:?}");
        for isa in Isa::available() {
            for threads in [1, 2] {
                for (i, act) in ACTS.into_iter().enumerate() {
                    case.check(isa, threads, i != 1, act, i != 0);
                }
            }
        }
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

/// NaN and ±Inf reach exactly the outputs whose windows read them, as in PyTorch, although
/// Winograd's transforms mix a whole tile: an image holding one takes the exact path,
/// the finite image beside it in the batch still Winograd's.
#[test]
fn winograd_keeps_nan_and_inf_to_their_windows() {
    let mut rng = Rng::new(0x7a9);
    for (tile, hw) in [(Tile::F4x4, 13), (Tile::F2x2, 9)] {
        let p = conv3x3(2, 5, 6, hw, hw, 1);
        let mut case = Case::new(p, &mut rng);
        let plane = hw * hw;
        let image1 = 5 * plane;
        case.x[image1 + 2 * hw + 3] = f32::NAN;
        case.x[image1 + plane + 7 * hw + 8] = f32::INFINITY;
        case.x[image1 + 3 * plane + 10 * hw + 1] = f32::NEG_INFINITY;
        reference::conv2d(&case.p, &case.x, &case.w, None, &mut case.y0);
        for &isa in &Isa::available() {
            for res in [false, true] {
                let conv = Winograd::new(&case.p, &case.w, Some(&case.bias), isa, tile);
                let mut y = vec![0.0; case.y0.len()];
                let mut scratch = vec![0.0; conv.scratch_len(1)];
                let residual = res.then_some(&case.residual[..]);
                conv.run(&case.x, residual, Activation::Relu, &mut y, &mut scratch, 1);
                let want = case.want(true, Activation::Relu, res);
                let finite = want.iter().filter(|v| v.is_finite()).count();
                assert!(finite < want.len() && finite > want.len() / 2, "{finite}");
                for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                    let ok = match w.is_finite() {
                        true => (g - w).abs() <= 1e-3 * w.abs().max(1.0),
                        false => g.is_nan() == w.is_nan() && (w.is_nan() || g == w),
                    };
                    assert!(ok, "{tile:?} {isa} residual {res} [{i}]: {g} vs {w}");
                }
            }
        }
    }
}
