//! What lets a Winograd conv hold no copy of its weights: U packed one transform point at a
//! time (`PackedA::from_groups`, the same panels as `PackedA::new`), and an exact path that
//! reads shared weights scaled per output channel (`ExactWeights`: a batch norm folded
//! after the fact), which must compute what the folded weights would, NaN and ±Inf
//! included.

use kestrel_kernels::conv2d::cpu::winograd::{Tile, Winograd};
use kestrel_kernels::conv2d::cpu::CpuConv;
use kestrel_kernels::conv2d::shapes::RESNET18;
use kestrel_kernels::conv2d::{reference, Conv2dParams, ExactWeights};
use kestrel_kernels::gemm::{self, PackedA};
use kestrel_kernels::testing::Rng;
use kestrel_kernels::{Activation, Isa};
use std::sync::Arc;

#[test]
fn packing_group_by_group_gives_the_panels_of_packing_at_once() {
    let mut rng = Rng::new(3);
    let tiles = gemm::tiles(Isa::best());
    // m with an mr tail, k past a kc-block and below one, 1 and 36 groups.
    for (groups, m, k) in [(1, 1, 1), (2, 17, 9), (36, 33, 700), (3, 64, 5)] {
        let a = rng.vec(groups * m * k);
        let whole = PackedA::new(&a, groups, m, k, &tiles);
        let mut made = Vec::new();
        let by_group = PackedA::from_groups(groups, m, k, &tiles, |g, a_g| {
            made.push(g);
            assert!(a_g.iter().all(|&v| v == 0.0), "group {g} starts zeroed");
            a_g.copy_from_slice(&a[g * m * k..][..m * k]);
        });
        assert_eq!(
            made,
            (0..groups).collect::<Vec<_>>(),
            "groups made in order"
        );
        for g in 0..groups {
            assert_eq!(
                by_group.group(g),
                whole.group(g),
                "{groups}×{m}×{k} group {g}"
            );
        }
    }
}

/// conv 3×3 pad 1, batch 2: image 1 holds a NaN, +Inf and −Inf, image 0 is finite.
fn case(rng: &mut Rng, c_in: usize, c_out: usize, hw: usize) -> (Conv2dParams, Vec<f32>) {
    // ResNet-18's 64@56² conv is 3×3, stride 1, pad 1: resized.
    let p = Conv2dParams {
        n: 2,
        c_in,
        h: hw,
        w: hw,
        c_out,
        ..RESNET18[1].0
    };
    let mut x = rng.vec(2 * c_in * hw * hw);
    let image1 = c_in * hw * hw;
    x[image1 + 2 * hw + 3] = f32::NAN;
    x[image1 + hw * hw + 5 * hw + 6] = f32::INFINITY;
    x[image1 + (c_in - 1) * hw * hw + hw + 1] = f32::NEG_INFINITY;
    (p, x)
}

#[test]
fn shared_scaled_weights_compute_what_the_folded_ones_do() {
    let mut rng = Rng::new(0x5ca1e);
    for (tile, hw, c_in, c_out) in [(Tile::F4x4, 13, 5, 7), (Tile::F2x2, 9, 3, 4)] {
        let (p, x) = case(&mut rng, c_in, c_out, hw);
        let w = rng.vec(c_out * c_in * 9);
        // Factors of either sign, one 0 (a channel whose batch norm zeroes it: 0 · Inf is
        // NaN either way) and one exact 1.
        let mut scale = rng.vec(c_out);
        scale[1] = 0.0;
        scale[2] = 1.0;
        let folded: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(k, &v)| v * scale[k / (c_in * 9)])
            .collect();
        let bias = rng.vec(c_out);
        let mut want = vec![0.0; p.output_shape().iter().product()];
        reference::conv2d(&p, &x, &folded, Some(&bias), &mut want);
        let finite = want.iter().filter(|v| v.is_finite()).count();
        assert!(finite < want.len() && finite > want.len() / 2, "{finite}");
        let exact = ExactWeights {
            weight: Arc::new(w.clone()),
            out_scale: Some(Arc::from(scale.clone())),
        };
        for isa in Isa::available() {
            let conv = Winograd::with_exact(&p, &folded, Some(&bias), isa, tile, exact.clone());
            let mut y = vec![0.0; want.len()];
            let mut scratch = vec![0.0; conv.scratch_len(2)];
            conv.run(&x, None, Activation::None, &mut y, &mut scratch, 2);
            for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                // Scaling after the sum rounds twice where folding rounded once, and
                // Winograd's own rounding (image 0): 1e-4 relative, as its tolerance.
                let ok = match w.is_finite() {
                    true => (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    false => g.is_nan() == w.is_nan() && (w.is_nan() || g == w),
                };
                assert!(ok, "{tile:?} {isa} [{i}]: {g} vs {w}");
            }
        }
    }
}

#[test]
fn cpu_conv_hands_its_winograd_the_shared_weights() {
    // 64→64 on 16×16: Winograd F(4×4). Shared weights of the wrong values would show on
    // the image holding a NaN, the one that takes the exact path.
    let mut rng = Rng::new(0x5a4ed);
    let (p, x) = case(&mut rng, 64, 64, 16);
    let w = rng.vec(64 * 64 * 9);
    let twice: Vec<f32> = w.iter().map(|v| 2.0 * v).collect();
    let exact = ExactWeights {
        weight: Arc::new(w.clone()),
        out_scale: Some(Arc::from(vec![2.0; 64])),
    };
    let conv = CpuConv::with_exact(&p, &twice, None, Isa::best(), false, Some(exact));
    assert_eq!(conv.name(), "winograd4x4");
    let mut want = vec![0.0; p.output_shape().iter().product()];
    reference::conv2d(&p, &x, &twice, None, &mut want);
    let mut y = vec![0.0; want.len()];
    let mut scratch = vec![0.0; conv.scratch_len(1)];
    conv.run(&x, None, Activation::None, &mut y, &mut scratch, 1);
    let image1 = &y[y.len() / 2..];
    // × 2 is exact: the exact path's outputs are the reference's, bit for bit.
    for (i, (g, w)) in image1.iter().zip(&want[want.len() / 2..]).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan(),
            "[{i}]: {g} vs {w}"
        );
    }
}
