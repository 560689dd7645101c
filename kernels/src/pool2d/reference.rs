use std::ops::Range;

use super::Pool2dParams;

/// Slow on purpose: the test oracle.
///
/// Padding acts as -inf. A NaN anywhere in a window makes its output NaN, as PyTorch's
/// `val > max || isnan(val)` does. Windows are PyTorch's: start at `o*s - p`, clipped to the
/// input by stepping whole dilations.
pub fn max_pool2d(p: &Pool2dParams, x: &[f32], y: &mut [f32]) {
    // x: (n, c, h, w)  y: (n, c, oh, ow)
    let (oh, ow) = p.output_hw();
    assert_eq!(x.len(), p.n * p.c * p.h * p.w, "max_pool2d: x length");
    assert_eq!(y.len(), p.n * p.c * oh * ow, "max_pool2d: y length");
    let ([kh, kw], [sh, sw], [ph, pw], [dh, dw]) = (p.kernel, p.stride, p.pad, p.dilation);

    for (x_c, y_c) in x.chunks_exact(p.h * p.w).zip(y.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            let rows = max_window(oy, sh, ph, dh, kh, p.h);
            for ox in 0..ow {
                let cols = max_window(ox, sw, pw, dw, kw, p.w);
                let mut max = f32::NEG_INFINITY;
                for iy in rows.clone().step_by(dh) {
                    for ix in cols.clone().step_by(dw) {
                        let v = x_c[iy * p.w + ix];
                        if v > max || v.is_nan() {
                            max = v;
                        }
                    }
                }
                y_c[oy * ow + ox] = max;
            }
        }
    }
}

/// The input indices a max-pool window covers on one axis, to be stepped by `dilation`:
/// from `o*s - p` up to `o*s - p + d(k-1)`, with the start moved up by whole dilations
/// until it is inside the input and the end cut at `len`.
fn max_window(o: usize, s: usize, p: usize, d: usize, k: usize, len: usize) -> Range<usize> {
    let start = o * s; // window start, before subtracting pad
    let end = (start + d * (k - 1) + 1).saturating_sub(p).min(len);
    let first = start + p.saturating_sub(start).div_ceil(d) * d - p;
    first..end.max(first)
}

/// Slow on purpose: the test oracle.
///
/// PyTorch's divisor rule exactly: the window `[o*s - p, min(o*s - p + k, len + p))` is
/// measured (pool_size) BEFORE clipping to the input, then clipped and summed in f64.
/// The divisor is pool_size with count_include_pad, else the number of taps inside the
/// input. A window wholly outside the input (only possible in ceil mode) gives 0.
pub fn avg_pool2d(p: &Pool2dParams, x: &[f32], y: &mut [f32]) {
    // x: (n, c, h, w)  y: (n, c, oh, ow)
    assert_eq!(p.dilation, [1, 1], "avg_pool2d: dilation must be [1, 1]");
    let (oh, ow) = p.output_hw();
    assert_eq!(x.len(), p.n * p.c * p.h * p.w, "avg_pool2d: x length");
    assert_eq!(y.len(), p.n * p.c * oh * ow, "avg_pool2d: y length");
    let ([kh, kw], [sh, sw], [ph, pw]) = (p.kernel, p.stride, p.pad);

    for (x_c, y_c) in x.chunks_exact(p.h * p.w).zip(y.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            let (rows, pool_h) = avg_window(oy, sh, ph, kh, p.h);
            for ox in 0..ow {
                let (cols, pool_w) = avg_window(ox, sw, pw, kw, p.w);
                if rows.is_empty() || cols.is_empty() {
                    y_c[oy * ow + ox] = 0.0;
                    continue;
                }
                let mut sum = 0.0f64;
                for iy in rows.clone() {
                    for v in &x_c[iy * p.w..][cols.clone()] {
                        sum += f64::from(*v);
                    }
                }
                let divisor = if p.count_include_pad {
                    pool_h * pool_w
                } else {
                    rows.len() * cols.len()
                };
                y_c[oy * ow + ox] = (sum / divisor as f64) as f32;
            }
        }
    }
}

/// One axis of an avg-pool window: the in-input indices, and the window's length before
/// clipping (padding counted, but not past the right padding).
fn avg_window(o: usize, s: usize, p: usize, k: usize, len: usize) -> (Range<usize>, usize) {
    // In padded coordinates (input index + p) the window is [o*s, min(o*s + k, len + 2p)).
    let start = o * s;
    let end = (start + k).min(len + 2 * p);
    let pool = end.saturating_sub(start);
    let first = start.max(p) - p;
    let last = end.min(len + p).saturating_sub(p);
    (first..last.max(first), pool)
}
