//! The selector on representative model convs: which algorithm each gets, as measured
//! (the rules and their numbers are in `ConvAlgorithm::choose`), and `CpuConv` preparing
//! that algorithm, or refusing one that cannot compute a conv.

use super::winograd::Tile;
use super::{ConvAlgorithm as A, CpuConv};
use crate::conv2d::shapes::conv;
use crate::Isa;

/// [c_in, c_out, hw, k, stride, groups] (pad k / 2), with or without an input scale, and
/// the algorithm `choose` picks.
const CASES: [([usize; 6], bool, A); 26] = [
    // First layers (c_in ≤ 4): MobileNetV3's 3→16 3×3 s2 stem and ResNet's 7×7 s2 one.
    ([3, 16, 224, 3, 2, 1], false, A::Direct),
    ([3, 64, 224, 7, 2, 1], false, A::Direct),
    // ResNet's 3×3 stride-1 convs: 196 F(4×4) tiles on 56², 49 on 28²; 512@7² has 4
    // F(4×4) tiles but 16 F(2×2) ones; a 5×5 output has too few for either.
    ([64, 64, 56, 3, 1, 1], false, A::Winograd(Tile::F4x4)),
    ([128, 128, 28, 3, 1, 1], false, A::Winograd(Tile::F4x4)),
    ([512, 512, 7, 3, 1, 1], false, A::Winograd(Tile::F2x2)),
    ([40, 33, 5, 3, 1, 1], false, A::Gemm),
    // ResNet's stride-2 3×3 and 1×1 downsampling convs: more than 32 input channels.
    ([64, 128, 56, 3, 2, 1], false, A::Gemm),
    ([64, 128, 56, 1, 2, 1], false, A::Gemm),
    // Narrow convs on rows that fill 16 lanes: YOLO's 16→32 3×3 s2 on 320² (160 wide) and
    // 16→16 3×3 on 160², and on 32-wide rows; but not 32→64 s2 on 40² (20 wide) nor
    // 64→128 s2 on 80² or 64² (64 channels), and Winograd keeps 32→32 3×3 on 32².
    ([16, 32, 320, 3, 2, 1], false, A::Direct),
    ([16, 16, 160, 3, 1, 1], false, A::Direct),
    ([16, 32, 64, 3, 2, 1], false, A::Direct),
    ([16, 16, 32, 3, 1, 1], false, A::Direct),
    ([32, 64, 40, 3, 2, 1], false, A::Gemm),
    ([64, 128, 80, 3, 2, 1], false, A::Gemm),
    ([64, 128, 64, 3, 2, 1], false, A::Gemm),
    ([32, 32, 32, 3, 1, 1], false, A::Winograd(Tile::F4x4)),
    // Pointwise on 56²: the GEMM reads x in place.
    ([64, 256, 56, 1, 1, 1], false, A::Gemm),
    // 1×1 on 1×1 planes (squeeze-excite's 960→240), scaled or not: the GEMV; with an
    // image's 3 channels it is a first layer, the direct kernel's.
    ([960, 240, 1, 1, 1, 1], false, A::Gemv),
    ([960, 240, 1, 1, 1, 1], true, A::Gemv),
    ([3, 8, 1, 1, 1, 1], false, A::Direct),
    // Depthwise 3×3 and 5×5 s2; scaled (the engine never asks) the GEMM's, as any
    // grouped conv, and so is a depthwise multiplier of 2.
    ([144, 144, 56, 3, 1, 144], false, A::Depthwise),
    ([240, 240, 28, 5, 2, 240], false, A::Depthwise),
    ([144, 144, 56, 3, 1, 144], true, A::Gemm),
    ([16, 32, 56, 3, 1, 16], false, A::Gemm),
    // A 1-channel 1×1 conv is "depthwise"; scaled, it is a first layer.
    ([1, 1, 56, 1, 1, 1], false, A::Depthwise),
    ([1, 1, 56, 1, 1, 1], true, A::Direct),
];

#[test]
fn choose_picks_the_measured_algorithm() {
    for ([c_in, c_out, hw, k, s, g], in_scale, want) in CASES {
        let p = conv(c_in, c_out, hw, k, s, g);
        p.validate().unwrap();
        assert_eq!(A::choose(&p, in_scale), want, "{p:?} in_scale {in_scale}");
    }
}

#[test]
fn cpu_conv_prepares_the_choice_with_its_name() {
    // Small planes of the same kinds, so that preparing stays quick.
    let names = [
        ([8, 8, 17, 3, 2, 1], false, "im2col-gemm"),
        ([8, 8, 17, 1, 1, 2], false, "gemm1x1"),
        ([40, 33, 17, 3, 1, 1], false, "winograd4x4"),
        ([40, 33, 7, 3, 1, 1], false, "winograd2x2"),
        ([3, 8, 17, 3, 2, 1], false, "direct"),
        ([8, 8, 17, 3, 1, 8], false, "depthwise"),
        ([8, 8, 17, 1, 1, 1], true, "gemm1x1"),
        ([40, 8, 1, 1, 1, 1], true, "gemv"),
    ];
    for ([c_in, c_out, hw, k, s, g], in_scale, name) in names {
        let p = conv(c_in, c_out, hw, k, s, g);
        let w = vec![0.5; p.weight_shape().iter().product()];
        let conv = CpuConv::new(&p, &w, None, Isa::Scalar, in_scale);
        assert_eq!(conv.algorithm(), A::choose(&p, in_scale), "{p:?}");
        assert_eq!(conv.name(), name, "{p:?}");
    }
}

#[test]
fn with_algorithm_forces_one_or_refuses_it() {
    // A dense 3×3 stride-2 conv: the GEMM and the direct kernel compute it, Winograd
    // (stride 1 only), the depthwise kernel and the GEMV do not.
    let p = conv(8, 8, 17, 3, 2, 1);
    let w = vec![0.5; p.weight_shape().iter().product()];
    let forced = |alg| CpuConv::with_algorithm(&p, &w, None, Isa::Scalar, alg);
    for alg in [A::Gemm, A::Direct] {
        assert_eq!(forced(alg).map(|c| c.algorithm()), Some(alg));
    }
    for alg in [A::Winograd(Tile::F2x2), A::Depthwise, A::Gemv] {
        assert!(forced(alg).is_none(), "{alg:?}");
        assert!(!alg.applies(&p), "{alg:?}");
    }
}
