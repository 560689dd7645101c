use super::{lerp, UpsampleMode, UpsampleParams};

/// Slow on purpose: the test oracle.
///
/// Every output recomputes its source indices and weights with the params' own rule
/// (`UpsampleParams::source_index_h` / `taps_h` and their w twins), then reads x.
pub fn upsample(p: &UpsampleParams, x: &[f32], y: &mut [f32]) {
    // x: (n, c, ih, iw)  y: (n, c, oh, ow)
    assert_eq!(x.len(), p.in_len(), "upsample: x length");
    assert_eq!(y.len(), p.out_len(), "upsample: y length");
    let (iw, ow) = (p.iw, p.ow);
    for (x_c, y_c) in x.chunks_exact(p.ih * iw).zip(y.chunks_exact_mut(p.oh * ow)) {
        for (oy, y_row) in y_c.chunks_exact_mut(ow).enumerate() {
            for (ox, yv) in y_row.iter_mut().enumerate() {
                *yv = match p.mode {
                    UpsampleMode::Nearest => x_c[p.source_index_h(oy) * iw + p.source_index_w(ox)],
                    UpsampleMode::Bilinear { .. } => {
                        let (th, tw) = (p.taps_h(oy), p.taps_w(ox));
                        let row = |iy: usize| {
                            let r = &x_c[iy * iw..][..iw];
                            lerp(r[tw.i0], r[tw.i1], tw.l0, tw.l1)
                        };
                        lerp(row(th.i0), row(th.i1), th.l0, th.l1)
                    }
                };
            }
        }
    }
}
