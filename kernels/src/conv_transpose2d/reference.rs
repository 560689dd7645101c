use super::ConvTranspose2dParams;
use crate::Activation;

/// Slow on purpose: the test oracle.
///
/// Gathers each output from the output side: for every tap (ky, kx) whose source
/// `((oy + p - ky·d) / s, (ox + p - kx·d) / s)` divides exactly and lies inside the input,
/// add `x · w` over the group's input channels, in f64; then the bias, one rounding to
/// f32, and `act`.
pub fn conv_transpose2d(
    p: &ConvTranspose2dParams,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    // x: (n, c_in, h, w)  weight: (c_in, c_out/groups, kh, kw)  bias: (c_out)
    // y: (n, c_out, oh, ow)
    let [c_in, cg_out, kh, kw] = p.weight_shape();
    let [_, c_out, oh, ow] = p.output_shape();
    assert_eq!(x.len(), p.in_len(), "conv_transpose2d: x length");
    assert_eq!(
        weight.len(),
        c_in * cg_out * kh * kw,
        "conv_transpose2d: weight length"
    );
    assert_eq!(y.len(), p.out_len(), "conv_transpose2d: y length");
    bias.inspect(|b| assert_eq!(b.len(), c_out, "conv_transpose2d: bias length"));
    let cg_in = c_in / p.groups;
    let plane = p.h * p.w;

    for (img, y_img) in y.chunks_exact_mut(c_out * oh * ow).enumerate() {
        for (co, y_co) in y_img.chunks_exact_mut(oh * ow).enumerate() {
            let (g, col) = (co / cg_out, co % cg_out);
            // x_g: (cg_in, h, w), the input channels group g reads
            let x_g = &x[(img * c_in + g * cg_in) * plane..][..cg_in * plane];
            let b = bias.map_or(0.0, |b| f64::from(b[co]));
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = 0.0f64;
                    for ky in 0..kh {
                        let Some(iy) = source(oy, ky, p.stride[0], p.pad[0], p.dilation[0], p.h)
                        else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) =
                                source(ox, kx, p.stride[1], p.pad[1], p.dilation[1], p.w)
                            else {
                                continue;
                            };
                            for ci in 0..cg_in {
                                let xv = x_g[ci * plane + iy * p.w + ix];
                                let wv =
                                    weight[(((g * cg_in + ci) * cg_out + col) * kh + ky) * kw + kx];
                                sum += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    y_co[oy * ow + ox] = act.apply((sum + b) as f32);
                }
            }
        }
    }
}

/// The input index output `o` takes through tap `t` along one axis: `(o + p - t·d) / s`
/// when that divides exactly and lies in `0..len`.
fn source(o: usize, t: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
    let at = (o + p).checked_sub(t * d)?;
    (at % s == 0 && at / s < len).then_some(at / s)
}
