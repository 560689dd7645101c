//! Every distinct conv2d of torchvision's ResNet-18, ResNet-50, MobileNetV2, MobileNetV3-Large and
//! EfficientNet-B0 at batch 1, 224×224, and a YOLOv8n-sized detector at 640×640:
//! the shapes the CPU kernels are tested and benchmarked on.

use super::Conv2dParams;

/// A conv with square kernel, stride and pad `k / 2`, dilation 1: (c_in, c_out, hw, k, stride, groups).
pub(crate) const fn conv(
    c_in: usize,
    c_out: usize,
    hw: usize,
    k: usize,
    s: usize,
    groups: usize,
) -> Conv2dParams {
    Conv2dParams {
        n: 1,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        stride: [s, s],
        pad: [k / 2, k / 2],
        dilation: [1, 1],
        groups,
    }
}

/// ResNet-18's convs with how many times each runs per image (sum: 3.63 GFLOP with fc).
pub const RESNET18: [(Conv2dParams, usize); 11] = [
    (conv(3, 64, 224, 7, 2, 1), 1),
    (conv(64, 64, 56, 3, 1, 1), 4),
    (conv(64, 128, 56, 3, 2, 1), 1),
    (conv(64, 128, 56, 1, 2, 1), 1),
    (conv(128, 128, 28, 3, 1, 1), 3),
    (conv(128, 256, 28, 3, 2, 1), 1),
    (conv(128, 256, 28, 1, 2, 1), 1),
    (conv(256, 256, 14, 3, 1, 1), 3),
    (conv(256, 512, 14, 3, 2, 1), 1),
    (conv(256, 512, 14, 1, 2, 1), 1),
    (conv(512, 512, 7, 3, 1, 1), 3),
];

/// ResNet-50's (torchvision, stride on the 3×3) distinct convs with how many times each
/// runs per image (53 convs, 8.17 GFLOP).
pub const RESNET50: [(Conv2dParams, usize); 23] = [
    (conv(3, 64, 224, 7, 2, 1), 1),
    (conv(64, 64, 56, 1, 1, 1), 1),
    (conv(64, 64, 56, 3, 1, 1), 3),
    (conv(64, 256, 56, 1, 1, 1), 4),
    (conv(256, 64, 56, 1, 1, 1), 2),
    (conv(256, 128, 56, 1, 1, 1), 1),
    (conv(128, 128, 56, 3, 2, 1), 1),
    (conv(128, 512, 28, 1, 1, 1), 4),
    (conv(256, 512, 56, 1, 2, 1), 1),
    (conv(512, 128, 28, 1, 1, 1), 3),
    (conv(128, 128, 28, 3, 1, 1), 3),
    (conv(512, 256, 28, 1, 1, 1), 1),
    (conv(256, 256, 28, 3, 2, 1), 1),
    (conv(256, 1024, 14, 1, 1, 1), 6),
    (conv(512, 1024, 28, 1, 2, 1), 1),
    (conv(1024, 256, 14, 1, 1, 1), 5),
    (conv(256, 256, 14, 3, 1, 1), 5),
    (conv(1024, 512, 14, 1, 1, 1), 1),
    (conv(512, 512, 14, 3, 2, 1), 1),
    (conv(512, 2048, 7, 1, 1, 1), 3),
    (conv(1024, 2048, 14, 1, 2, 1), 1),
    (conv(2048, 512, 7, 1, 1, 1), 2),
    (conv(512, 512, 7, 3, 1, 1), 2),
];

/// MobileNetV2's distinct convs (expand 1×1, depthwise 3×3, project 1×1 per block).
pub const MOBILENET_V2: [Conv2dParams; 30] = [
    conv(3, 32, 224, 3, 2, 1),
    conv(32, 32, 112, 3, 1, 32),
    conv(32, 16, 112, 1, 1, 1),
    conv(16, 96, 112, 1, 1, 1),
    conv(96, 96, 112, 3, 2, 96),
    conv(96, 24, 56, 1, 1, 1),
    conv(24, 144, 56, 1, 1, 1),
    conv(144, 144, 56, 3, 1, 144),
    conv(144, 24, 56, 1, 1, 1),
    conv(144, 144, 56, 3, 2, 144),
    conv(144, 32, 28, 1, 1, 1),
    conv(32, 192, 28, 1, 1, 1),
    conv(192, 192, 28, 3, 1, 192),
    conv(192, 32, 28, 1, 1, 1),
    conv(192, 192, 28, 3, 2, 192),
    conv(192, 64, 14, 1, 1, 1),
    conv(64, 384, 14, 1, 1, 1),
    conv(384, 384, 14, 3, 1, 384),
    conv(384, 64, 14, 1, 1, 1),
    conv(384, 96, 14, 1, 1, 1),
    conv(96, 576, 14, 1, 1, 1),
    conv(576, 576, 14, 3, 1, 576),
    conv(576, 96, 14, 1, 1, 1),
    conv(576, 576, 14, 3, 2, 576),
    conv(576, 160, 7, 1, 1, 1),
    conv(160, 960, 7, 1, 1, 1),
    conv(960, 960, 7, 3, 1, 960),
    conv(960, 160, 7, 1, 1, 1),
    conv(960, 320, 7, 1, 1, 1),
    conv(320, 1280, 7, 1, 1, 1),
];

/// MobileNetV3-Large's distinct convs with more than one output pixel, with how many
/// times each runs per image (the squeeze-excite 1×1s on 1×1 planes are left out).
pub const MOBILENET_V3_LARGE: [(Conv2dParams, usize); 34] = [
    (conv(3, 16, 224, 3, 2, 1), 1),
    (conv(16, 16, 112, 3, 1, 16), 1),
    (conv(16, 16, 112, 1, 1, 1), 1),
    (conv(16, 64, 112, 1, 1, 1), 1),
    (conv(64, 64, 112, 3, 2, 64), 1),
    (conv(64, 24, 56, 1, 1, 1), 1),
    (conv(24, 72, 56, 1, 1, 1), 2),
    (conv(72, 72, 56, 3, 1, 72), 1),
    (conv(72, 24, 56, 1, 1, 1), 1),
    (conv(72, 72, 56, 5, 2, 72), 1),
    (conv(72, 40, 28, 1, 1, 1), 1),
    (conv(40, 120, 28, 1, 1, 1), 2),
    (conv(120, 120, 28, 5, 1, 120), 2),
    (conv(120, 40, 28, 1, 1, 1), 2),
    (conv(40, 240, 28, 1, 1, 1), 1),
    (conv(240, 240, 28, 3, 2, 240), 1),
    (conv(240, 80, 14, 1, 1, 1), 1),
    (conv(80, 200, 14, 1, 1, 1), 1),
    (conv(200, 200, 14, 3, 1, 200), 1),
    (conv(200, 80, 14, 1, 1, 1), 1),
    (conv(80, 184, 14, 1, 1, 1), 2),
    (conv(184, 184, 14, 3, 1, 184), 2),
    (conv(184, 80, 14, 1, 1, 1), 2),
    (conv(80, 480, 14, 1, 1, 1), 1),
    (conv(480, 480, 14, 3, 1, 480), 1),
    (conv(480, 112, 14, 1, 1, 1), 1),
    (conv(112, 672, 14, 1, 1, 1), 2),
    (conv(672, 672, 14, 3, 1, 672), 1),
    (conv(672, 112, 14, 1, 1, 1), 1),
    (conv(672, 672, 14, 5, 2, 672), 1),
    (conv(672, 160, 7, 1, 1, 1), 1),
    (conv(160, 960, 7, 1, 1, 1), 3),
    (conv(960, 960, 7, 5, 1, 960), 2),
    (conv(960, 160, 7, 1, 1, 1), 2),
];

/// EfficientNet-B0's distinct convs with more than one output pixel, with how many times
/// each runs per image (the squeeze-excite 1×1s on 1×1 planes are left out).
pub const EFFICIENTNET_B0: [(Conv2dParams, usize); 32] = [
    (conv(3, 32, 224, 3, 2, 1), 1),
    (conv(32, 32, 112, 3, 1, 32), 1),
    (conv(32, 16, 112, 1, 1, 1), 1),
    (conv(16, 96, 112, 1, 1, 1), 1),
    (conv(96, 96, 112, 3, 2, 96), 1),
    (conv(96, 24, 56, 1, 1, 1), 1),
    (conv(24, 144, 56, 1, 1, 1), 2),
    (conv(144, 144, 56, 3, 1, 144), 1),
    (conv(144, 24, 56, 1, 1, 1), 1),
    (conv(144, 144, 56, 5, 2, 144), 1),
    (conv(144, 40, 28, 1, 1, 1), 1),
    (conv(40, 240, 28, 1, 1, 1), 2),
    (conv(240, 240, 28, 5, 1, 240), 1),
    (conv(240, 40, 28, 1, 1, 1), 1),
    (conv(240, 240, 28, 3, 2, 240), 1),
    (conv(240, 80, 14, 1, 1, 1), 1),
    (conv(80, 480, 14, 1, 1, 1), 3),
    (conv(480, 480, 14, 3, 1, 480), 2),
    (conv(480, 80, 14, 1, 1, 1), 2),
    (conv(480, 480, 14, 5, 1, 480), 1),
    (conv(480, 112, 14, 1, 1, 1), 1),
    (conv(112, 672, 14, 1, 1, 1), 3),
    (conv(672, 672, 14, 5, 1, 672), 2),
    (conv(672, 112, 14, 1, 1, 1), 2),
    (conv(672, 672, 14, 5, 2, 672), 1),
    (conv(672, 192, 7, 1, 1, 1), 1),
    (conv(192, 1152, 7, 1, 1, 1), 4),
    (conv(1152, 1152, 7, 5, 1, 1152), 3),
    (conv(1152, 192, 7, 1, 1, 1), 3),
    (conv(1152, 1152, 7, 3, 1, 1152), 1),
    (conv(1152, 320, 7, 1, 1, 1), 1),
    (conv(320, 1280, 7, 1, 1, 1), 1),
];

/// The YOLOv8n-sized detector of `benches/side_by_side` (`yolov8n()` of
/// `tests/fixtures/fixture_models.py`) at 640×640: its distinct convs, every one with SiLU
/// but the three 1×1 heads.
pub const YOLOV8N_640: [(Conv2dParams, usize); 30] = [
    (conv(3, 16, 640, 3, 2, 1), 1),
    (conv(16, 32, 320, 3, 2, 1), 1),
    (conv(32, 32, 160, 1, 1, 1), 1),
    (conv(16, 16, 160, 3, 1, 1), 2),
    (conv(48, 32, 160, 1, 1, 1), 1),
    (conv(32, 64, 160, 3, 2, 1), 1),
    (conv(64, 64, 80, 1, 1, 1), 1),
    (conv(32, 32, 80, 3, 1, 1), 6),
    (conv(128, 64, 80, 1, 1, 1), 1),
    (conv(64, 128, 80, 3, 2, 1), 1),
    (conv(128, 128, 40, 1, 1, 1), 1),
    (conv(64, 64, 40, 3, 1, 1), 8),
    (conv(256, 128, 40, 1, 1, 1), 1),
    (conv(128, 256, 40, 3, 2, 1), 1),
    (conv(256, 256, 20, 1, 1, 1), 1),
    (conv(128, 128, 20, 3, 1, 1), 4),
    (conv(384, 256, 20, 1, 1, 1), 3),
    (conv(256, 128, 20, 1, 1, 1), 1),
    (conv(512, 256, 20, 1, 1, 1), 1),
    (conv(384, 128, 40, 1, 1, 1), 1),
    (conv(192, 128, 40, 1, 1, 1), 3),
    (conv(192, 64, 80, 1, 1, 1), 1),
    (conv(96, 64, 80, 1, 1, 1), 1),
    (conv(64, 64, 80, 3, 2, 1), 1),
    (conv(128, 128, 40, 3, 2, 1), 1),
    (conv(64, 64, 80, 3, 1, 1), 1),
    (conv(64, 255, 80, 1, 1, 1), 1),
    (conv(128, 255, 40, 1, 1, 1), 1),
    (conv(256, 256, 20, 3, 1, 1), 1),
    (conv(256, 255, 20, 1, 1, 1), 1),
];

/// `<n>x<c_in>x<h>x<w>k<kh>s<stride>o<c_out>[g<groups>]`, the shape part of bench ids:
/// c_out and groups are appended because MobileNetV2 has convs the first part does not
/// tell apart (384→64 and 384→96 1×1 at 14×14; a depthwise and a dense 3×3).
pub fn shape_id(p: &Conv2dParams) -> String {
    let g = if p.groups > 1 {
        format!("g{}", p.groups)
    } else {
        String::new()
    };
    let [n, c_in, h, w, c_out] = [p.n, p.c_in, p.h, p.w, p.c_out];
    format!("{n}x{c_in}x{h}x{w}k{}s{}o{c_out}{g}", p.kh, p.stride[0])
}
