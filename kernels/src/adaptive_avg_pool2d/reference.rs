use std::ops::Range;

use super::AdaptiveAvgPool2dParams;

/// Slow on purpose: the test oracle.
///
/// Each output averages its own window (f64 sum); windows may overlap, and when the output
/// is larger than the input several outputs share one input.
pub fn adaptive_avg_pool2d(p: &AdaptiveAvgPool2dParams, x: &[f32], y: &mut [f32]) {
    // x: (n, c, h, w)  y: (n, c, oh, ow)
    let [oh, ow] = p.out;
    assert_eq!(
        x.len(),
        p.n * p.c * p.h * p.w,
        "adaptive_avg_pool2d: x length"
    );
    assert_eq!(
        y.len(),
        p.n * p.c * oh * ow,
        "adaptive_avg_pool2d: y length"
    );

    for (x_c, y_c) in x.chunks_exact(p.h * p.w).zip(y.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            let rows = window(oy, p.h, oh);
            for ox in 0..ow {
                let cols = window(ox, p.w, ow);
                let mut sum = 0.0f64;
                for iy in rows.clone() {
                    for v in &x_c[iy * p.w..][cols.clone()] {
                        sum += f64::from(*v);
                    }
                }
                y_c[oy * ow + ox] = (sum / (rows.len() * cols.len()) as f64) as f32;
            }
        }
    }
}

/// PyTorch's rule for output `i` of `out` on an axis of length `len`:
/// `[floor(i*len/out), ceil((i+1)*len/out))`, never empty.
fn window(i: usize, len: usize, out: usize) -> Range<usize> {
    (i * len / out)..((i + 1) * len).div_ceil(out)
}
