use std::ops::Range;

use super::Conv2dParams;

/// How many output pixels of a row are summed together, in f64 on the stack: 64
/// independent sums instead of one f64 chain per pixel, with no allocation. On
/// 1x64x56x56k3 (one core of this 2-core EPYC): 0.9 → 2.0 GFLOP/s at opt-level 1 (the
/// workspace's dev profile for member crates), 1.5 → 3.1 at opt-level 3; a 1x1 conv
/// 256→64 goes 0.5 → 1.9 at opt-level 1.
const CHUNK: usize = 64;

/// Slow on purpose: the test oracle.
///
/// Loop order: (image, output channel, output row, chunk of up to 64 output pixels) then,
/// for each tap (input channel of the group, ky, kx), add w * x into the chunk's f64 sums.
/// Each tap's range of rows and pixels is clipped once to where it reads inside the input,
/// so padding costs nothing and no tap branches.
pub fn conv2d(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    conv2d_scaled(p, x, None, w, bias, y)
}

/// `conv2d` of x · s, where in_scale s: (n, c_in) scales each image's input channels: each
/// input is multiplied by its scale in f32 as it is read, the product a separate `x · s`
/// would store (so 0 · Inf is NaN, and padding, which is not read, stays 0). Any conv;
/// the fast kernels take the convs `Conv2dParams::in_scale_applies` names.
///
/// Slow on purpose: the test oracle.
pub fn conv2d_scaled(
    p: &Conv2dParams,
    x: &[f32],
    in_scale: Option<&[f32]>,
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    // x: (n, c_in, h, w)  in_scale: (n, c_in)  w: (c_out, c_in/groups, kh, kw)  bias: (c_out)
    // y: (n, c_out, oh, ow)
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    let [n, _, oh, ow] = p.output_shape();
    assert_eq!(x.len(), n * p.c_in * p.h * p.w, "conv2d: x length");
    assert_eq!(w.len(), c_out * cg_in * kh * kw, "conv2d: w length");
    assert_eq!(y.len(), n * c_out * oh * ow, "conv2d: y length");
    bias.inspect(|b| assert_eq!(b.len(), c_out, "conv2d: bias length"));
    in_scale.inspect(|s| assert_eq!(s.len(), n * p.c_in, "conv2d: in_scale length"));
    let cg_out = c_out / p.groups;
    let plane = p.h * p.w;
    let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);

    for (img, y_img) in y.chunks_exact_mut(c_out * oh * ow).enumerate() {
        for (oc, y_oc) in y_img.chunks_exact_mut(oh * ow).enumerate() {
            let g = oc / cg_out;
            // x_g: (cg_in, h, w), the input channels group g reads
            let x_g = &x[(img * p.c_in + g * cg_in) * plane..][..cg_in * plane];
            // s_g: (cg_in), their scales; x · 1 is x, bit for bit (NaN included).
            let s_g = in_scale.map(|s| &s[img * p.c_in + g * cg_in..][..cg_in]);
            // w_oc: (cg_in, kh, kw)
            let w_oc = &w[oc * cg_in * kh * kw..][..cg_in * kh * kw];
            let b = bias.map_or(0.0, |b| f64::from(b[oc]));
            for (oy, y_row) in y_oc.chunks_exact_mut(ow).enumerate() {
                let taps_y = valid_taps(oy, sh, ph, dh, kh, p.h);
                for (ox0, y_chunk) in (0..ow).step_by(CHUNK).zip(y_row.chunks_mut(CHUNK)) {
                    // acc[j]: the sum for output pixel (oy, ox0 + j)
                    let mut acc = [0.0f64; CHUNK];
                    let channels = x_g.chunks_exact(plane).zip(w_oc.chunks_exact(kh * kw));
                    for (ci, (x_c, w_c)) in channels.enumerate() {
                        let s = s_g.map_or(1.0, |s| s[ci]);
                        for ky in taps_y.clone() {
                            let x_row = &x_c[(oy * sh + ky * dh - ph) * p.w..][..p.w];
                            for (kx, wv) in w_c[ky * kw..][..kw].iter().enumerate() {
                                let wv = f64::from(*wv);
                                let chunk = ox0..ox0 + y_chunk.len();
                                let outs = valid_outputs(kx, sw, pw, dw, p.w, chunk);
                                // ix: the input column output ox reads through tap kx
                                let mut ix = outs.start * sw + kx * dw - pw;
                                for a in &mut acc[outs.start - ox0..outs.end - ox0] {
                                    *a += wv * f64::from(x_row[ix] * s);
                                    ix += sw;
                                }
                            }
                        }
                    }
                    for (yv, a) in y_chunk.iter_mut().zip(acc) {
                        *yv = (a + b) as f32;
                    }
                }
            }
        }
    }
}

/// The taps `t` in `0..k` that output `o` reads inside the input:
/// `o*stride + t*dilation - pad` in `0..len`.
fn valid_taps(
    o: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    k: usize,
    len: usize,
) -> Range<usize> {
    let start = o * stride; // input index of tap 0, plus pad
    let lo = pad.saturating_sub(start).div_ceil(dilation);
    let hi = (len + pad).saturating_sub(start).div_ceil(dilation).min(k);
    lo..hi.max(lo)
}

/// The outputs `o` in `within` whose tap `t` reads inside the input:
/// `o*stride + t*dilation - pad` in `0..len`.
fn valid_outputs(
    t: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    len: usize,
    within: Range<usize>,
) -> Range<usize> {
    let off = t * dilation; // input index of output 0's tap t, plus pad
    let lo = pad.saturating_sub(off).div_ceil(stride).max(within.start);
    let hi = (len + pad)
        .saturating_sub(off)
        .div_ceil(stride)
        .min(within.end);
    lo..hi.max(lo)
}
