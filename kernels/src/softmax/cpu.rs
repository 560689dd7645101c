//! Softmax on the CPU, x viewed as (outer, axis, inner). With inner = 1 (a classifier's
//! logits) each line is contiguous and vectorised along the axis; otherwise LANES lines
//! side by side are vectorised across inner.

use crate::simd::{dispatch, Simd};
use crate::Isa;

use super::SoftmaxParams;

/// As `reference::softmax`, in f32 with a vector exp (2 ulp) instead of f64. A line with a
/// NaN, a +inf, or only -inf comes out all NaN, as in PyTorch.
pub fn softmax(isa: Isa, p: &SoftmaxParams, x: &[f32], y: &mut [f32]) {
    // x, y: (outer, axis, inner)
    let len = p.outer * p.axis * p.inner;
    assert_eq!(x.len(), len, "softmax: x length");
    assert_eq!(y.len(), len, "softmax: y length");
    // SAFETY: dispatch! checks the ISA; the body takes slices of the asserted lengths.
    unsafe { dispatch!(isa, softmax_body(p, x, y)) }
}

/// Needs S's features; lengths as asserted by `softmax`.
#[inline(always)]
unsafe fn softmax_body<S: Simd>(p: &SoftmaxParams, x: &[f32], y: &mut [f32]) {
    let block = p.axis * p.inner;
    for (x_o, y_o) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
        if p.inner == 1 {
            line::<S>(x_o, y_o);
        } else {
            for i0 in (0..p.inner).step_by(S::LANES) {
                columns::<S>(p, i0, S::LANES.min(p.inner - i0), x_o, y_o);
            }
        }
    }
}

/// One contiguous line: max, then e = exp(x - max) into y with its sum, then y /= sum.
/// The max ignores which lane a NaN lands in: a NaN anywhere makes the sum NaN anyway.
#[inline(always)]
unsafe fn line<S: Simd>(x: &[f32], y: &mut [f32]) {
    let (len, l) = (x.len(), S::LANES);
    let body = len / l * l;
    let mut m = S::splat(f32::NEG_INFINITY);
    for i in (0..body).step_by(l) {
        m = S::max(m, S::load(x.as_ptr().add(i)));
    }
    let max = x[body..]
        .iter()
        .fold(S::reduce_max(m), |m, &v| if v > m { v } else { m });
    let mut s = S::splat(0.0);
    for i in (0..body).step_by(l) {
        let e = S::exp(S::add(S::load(x.as_ptr().add(i)), S::splat(-max)));
        S::store(y.as_mut_ptr().add(i), e);
        s = S::add(s, e);
    }
    let mut sum = S::reduce_add(s);
    for i in body..len {
        y[i] = (x[i] - max).exp();
        sum += y[i];
    }
    let inv = 1.0 / sum;
    for i in (0..body).step_by(l) {
        S::store(
            y.as_mut_ptr().add(i),
            S::mul(S::load(y.as_ptr().add(i)), S::splat(inv)),
        );
    }
    y[body..].iter_mut().for_each(|v| *v *= inv);
}

/// Lines i0..i0+n of a block (elements `a*inner + i`), one per lane.
#[inline(always)]
unsafe fn columns<S: Simd>(p: &SoftmaxParams, i0: usize, n: usize, x_o: &[f32], y_o: &mut [f32]) {
    let at = |a: usize| a * p.inner + i0;
    let load = |a: usize, fill: f32| S::load_lanes(x_o[at(a)..].as_ptr(), 1, 0..n, S::splat(fill));
    let mut m = S::splat(f32::NEG_INFINITY);
    for a in 0..p.axis {
        m = S::max(m, load(a, f32::NEG_INFINITY));
    }
    let mut s = S::splat(0.0);
    for a in 0..p.axis {
        let e = S::exp(
            S::add(load(a, 0.0), S::mul(m, S::splat(-1.0))), /* x - max */
        );
        S::store_part(y_o[at(a)..].as_mut_ptr(), n, e);
        s = S::add(s, e);
    }
    let inv = recip::<S>(s);
    for a in 0..p.axis {
        let e = S::load_lanes(y_o[at(a)..].as_ptr(), 1, 0..n, S::splat(0.0));
        S::store_part(y_o[at(a)..].as_mut_ptr(), n, S::mul(e, inv));
    }
}

/// 1 / v lane-wise, exactly rounded (no approximate rcp).
#[inline(always)]
unsafe fn recip<S: Simd>(v: S::V) -> S::V {
    let mut lanes = [0.0f32; 16];
    S::store(lanes.as_mut_ptr(), v);
    lanes.iter_mut().take(S::LANES).for_each(|l| *l = 1.0 / *l);
    S::load(lanes.as_ptr())
}
