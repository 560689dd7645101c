//! Winograd (`conv2d/cpu/winograd/`) against the reference conv (f64 sums), on every ISA
//! this CPU has and on 1 and 2 threads: both tiles on odd sizes, SIMD tails and every
//! epilogue, a GEMM past its blocks, small planes, the error its tolerance is set from
//! (kernels/tests/conv2d_case/mod.rs), and NaN and ±Inf kept to their windows.

mod conv2d_case;

use conv2d_case::{capped, Case, ACTS, REL_WINOGRAD, REL_WINOGRAD2};
use kestrel_kernels::conv2d::cpu::winograd::{Tile, Winograd};
use kestrel_kernels::conv2d::cpu::ConvAlgorithm;
use kestrel_kernels::conv2d::shapes::RESNET18;
use kestrel_kernels::conv2d::{reference, Conv2dParams};
use kestrel_kernels::testing::{compare, Rng, Tol};
use kestrel_kernels::{Activation, Isa};

impl Case {
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
        // On 2 threads each takes an image of its own (`Winograd::run`).
        for (&isa, threads) in Isa::available().iter().flat_map(|i| [(i, 1), (i, 2)]) {
            for res in [false, true] {
                let conv = Winograd::new(&case.p, &case.w, Some(&case.bias), isa, tile);
                let mut y = vec![0.0; case.y0.len()];
                let mut scratch = vec![0.0; conv.scratch_len(threads)];
                let residual = res.then_some(&case.residual[..]);
                conv.run(
                    &case.x,
                    residual,
                    Activation::Relu,
                    &mut y,
                    &mut scratch,
                    threads,
                );
                let want = case.want(true, Activation::Relu, res);
                let finite = want.iter().filter(|v| v.is_finite()).count();
                assert!(finite < want.len() && finite > want.len() / 2, "{finite}");
                for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                    let ok = match w.is_finite() {
                        true => (g - w).abs() <= 1e-3 * w.abs().max(1.0),
                        false => g.is_nan() == w.is_nan() && (w.is_nan() || g == w),
                    };
                    assert!(
                        ok,
                        "{tile:?} {isa} threads {threads} residual {res} [{i}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}

/// Batches of 3 and 5 on 2 threads: each thread takes whole images, in shares of unequal
/// size, with every epilogue.
#[test]
fn threads_take_whole_images_of_a_batch() {
    let mut rng = Rng::new(0x5f1);
    for n in [3, 5] {
        let case = Case::new(conv3x3(n, 19, 21, 14, 11, 1), &mut rng);
        for &isa in &Isa::available() {
            for (j, act) in ACTS.into_iter().enumerate() {
                case.check_winograd(Tile::F4x4, isa, 2, j % 2 == 0, act, j % 3 == 0);
                case.check_winograd(Tile::F2x2, isa, 2, j % 2 == 1, act, j % 3 == 1);
            }
        }
    }
}
