//! Standalone inference batch norm on the CPU, `y = act(x * scale[c] + shift[c])`, with
//! scale and shift from `batch_norm::scale_shift` (most batch norms are folded into the
//! conv before them instead).

use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

use super::BatchNormParams;

/// `y = act(x*scale[c] + shift[c])`, one FMA per element.
pub fn scale_shift(
    isa: Isa,
    p: &BatchNormParams,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    // x, y: (n, c, spatial)  scale, shift: (c)
    let len = p.n * p.c * p.spatial;
    assert_eq!(x.len(), len, "scale_shift: x length");
    assert_eq!(y.len(), len, "scale_shift: y length");
    assert_eq!(scale.len(), p.c, "scale_shift: scale length");
    assert_eq!(shift.len(), p.c, "scale_shift: shift length");
    // SAFETY: dispatch! checks the ISA; the body takes slices of the asserted lengths.
    unsafe { dispatch!(isa, scale_shift_body(p, scale, shift, act, x, y)) }
}

/// Needs S's features; lengths as asserted by `scale_shift`.
#[inline(always)]
unsafe fn scale_shift_body<S: Simd>(
    p: &BatchNormParams,
    scale: &[f32],
    shift: &[f32],
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) {
    let l = S::LANES;
    if p.spatial == 1 {
        // (n, c) after a linear layer: vectorise along c.
        for (x_i, y_i) in x.chunks_exact(p.c).zip(y.chunks_exact_mut(p.c)) {
            let mut i = 0;
            while i + l <= p.c {
                let (s, t) = (
                    S::load(scale.as_ptr().add(i)),
                    S::load(shift.as_ptr().add(i)),
                );
                let v = S::fma(S::load(x_i.as_ptr().add(i)), s, t);
                S::store(y_i.as_mut_ptr().add(i), S::act(v, act));
                i += l;
            }
            for j in i..p.c {
                y_i[j] = act.apply(x_i[j] * scale[j] + shift[j]);
            }
        }
        return;
    }
    let rows = x.chunks_exact(p.spatial).zip(y.chunks_exact_mut(p.spatial));
    for (row, (x_r, y_r)) in rows.enumerate() {
        let (sc, sh) = (scale[row % p.c], shift[row % p.c]);
        let (s, t) = (S::splat(sc), S::splat(sh));
        let mut i = 0;
        while i + l <= p.spatial {
            let v = S::fma(S::load(x_r.as_ptr().add(i)), s, t);
            S::store(y_r.as_mut_ptr().add(i), S::act(v, act));
            i += l;
        }
        for j in i..p.spatial {
            y_r[j] = act.apply(x_r[j] * sc + sh);
        }
    }
}
