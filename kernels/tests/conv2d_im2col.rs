//! conv2d's reference against an independent, even simpler formulation: build the full
//! im2col matrix (every tap of every output, with explicit zeros for padding, using signed
//! indices and a branch per tap), then multiply by the weights. Both share only
//! `Conv2dParams`' shape arithmetic.

use kestrel_kernels::conv2d::{reference::conv2d, Conv2dParams};
use kestrel_kernels::testing::{assert_close, Rng, Tol};

/// conv2d by im2col + matrix multiply, f64 sums.
fn conv2d_im2col(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    // x: (n, c_in, h, w)  w: (c_out, cg_in, kh, kw)  y: (n, c_out, oh, ow)
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    let [n, _, oh, ow] = p.output_shape();
    let cg_out = c_out / p.groups;
    let k = cg_in * kh * kw;
    let mut y = vec![0.0; n * c_out * oh * ow];
    for img in 0..n {
        for g in 0..p.groups {
            // cols: (oh*ow, cg_in*kh*kw), row = output pixel, column = (ic, ky, kx)
            let mut cols = vec![0.0f32; oh * ow * k];
            for pix in 0..oh * ow {
                let (oy, ox) = (pix / ow, pix % ow);
                for col in 0..k {
                    let (ic, ky, kx) = (col / (kh * kw), col / kw % kh, col % kw);
                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize - p.pad[0] as isize;
                    let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize - p.pad[1] as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                        let c = g * cg_in + ic;
                        cols[pix * k + col] =
                            x[((img * p.c_in + c) * p.h + iy as usize) * p.w + ix as usize];
                    }
                }
            }
            // y[oc, pix] = sum over col of w[oc, col] * cols[pix, col]
            for oc in g * cg_out..(g + 1) * cg_out {
                for pix in 0..oh * ow {
                    let dot: f64 = (0..k)
                        .map(|col| f64::from(w[oc * k + col]) * f64::from(cols[pix * k + col]))
                        .sum();
                    let b = bias.map_or(0.0, |b| f64::from(b[oc]));
                    y[(img * c_out + oc) * oh * ow + pix] = (dot + b) as f32;
                }
            }
        }
    }
    y
}

/// Checks one shape; returns false (and checks nothing) when the shape is invalid.
fn check(p: &Conv2dParams, rng: &mut Rng, with_bias: bool) -> bool {
    if p.validate().is_err() {
        return false;
    }
    let x = rng.vec(p.n * p.c_in * p.h * p.w);
    let w = rng.vec(p.weight_shape().iter().product());
    let b = rng.vec(p.c_out);
    let bias = with_bias.then_some(&b[..]);
    let mut y = vec![f32::NAN; p.output_shape().iter().product()];
    conv2d(p, &x, &w, bias, &mut y);
    let want = conv2d_im2col(p, &x, &w, bias);
    // Both sum in f64 and round once to f32; only the summation order differs: rel 1e-5 of
    // each value, plus 1e-6 absolute for sums that cancel to near zero.
    assert_close(
        &y,
        &want,
        Tol::each(1e-5, 1e-6),
        &format!("{p:?} bias={with_bias}"),
    );
    true
}

#[test]
fn matches_im2col_over_a_seeded_sweep() {
    let mut rng = Rng::new(0x5eed_c0de);
    // (c_in, c_out, groups): plain, single channel, grouped, depthwise, depthwise with multiplier.
    let channel_cases = [
        (3, 4, 1),
        (1, 1, 1),
        (4, 6, 2),
        (4, 4, 4),
        (3, 3, 3),
        (2, 4, 2),
    ];
    let mut checked = 0;
    let mut total = 0;
    for n in [1, 2] {
        for stride in 1..=3 {
            for pad in 0..=2 {
                for dilation in 1..=2 {
                    for (c_in, c_out, groups) in channel_cases {
                        for with_bias in [false, true] {
                            let p = Conv2dParams {
                                n,
                                c_in,
                                h: rng.pick(&[1, 2, 5, 7, 8, 11]),
                                w: rng.pick(&[1, 3, 5, 6, 9, 13]),
                                c_out,
                                kh: rng.pick(&[1, 2, 3]),
                                kw: rng.pick(&[1, 3, 5]),
                                // Mostly the loop's values on both axes, sometimes mixed.
                                stride: [stride, rng.pick(&[stride, stride, 1, 2])],
                                pad: [pad, rng.pick(&[pad, pad, 0, 1])],
                                dilation: [dilation, rng.pick(&[dilation, dilation, 1, 2])],
                                groups,
                            };
                            total += 1;
                            checked += usize::from(check(&p, &mut rng, with_bias));
                        }
                    }
                }
            }
        }
    }
    // Some random shapes are invalid (kernel larger than padded input): 315 of 432 are valid.
    assert!(
        checked * 3 > total * 2,
        "only {checked} of {total} shapes were valid"
    );
}

#[test]
fn matches_im2col_on_rows_wider_than_a_chunk() {
    // The reference sums up to 64 outputs of a row at once: cross 64 and 128 with tails.
    let mut rng = Rng::new(42);
    for (w, kw, stride, pad) in [
        (64, 3, 1, 1),
        (65, 3, 1, 1),
        (70, 5, 1, 2),
        (131, 3, 1, 0),
        (150, 7, 2, 3),
        (200, 3, 3, 1),
    ] {
        let p = Conv2dParams {
            n: 1,
            c_in: 2,
            h: 3,
            w,
            c_out: 2,
            kh: 3,
            kw,
            stride: [1, stride],
            pad: [1, pad],
            dilation: [1, 1],
            groups: 1,
        };
        assert!(check(&p, &mut rng, true), "{p:?} should be valid");
    }
}
