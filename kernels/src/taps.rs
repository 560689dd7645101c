//! Which taps of a sliding window land inside the input, per axis: the interior bounds
//! of the direct, depthwise, pooling and transposed convolutions.

use std::ops::Range;

/// The outputs `o` whose tap `t` reads inside the input on one axis:
/// `o*s + t*d - p` in `0..len`. With t = 0 and t = k-1 it bounds a row's interior.
#[inline(always)]
pub(crate) fn tap_outputs(t: usize, s: usize, p: usize, d: usize, len: usize) -> Range<usize> {
    let off = t * d; // input index of output 0's tap t, plus p
    let lo = div_ceil(p.saturating_sub(off), s);
    let hi = div_ceil((len + p).saturating_sub(off), s);
    lo..hi.max(lo)
}

/// The taps `t` in `0..k` that output `o` reads inside the input: `o*s + t*d - p` in `0..len`.
#[inline(always)]
pub(crate) fn output_taps(
    o: usize,
    s: usize,
    p: usize,
    d: usize,
    k: usize,
    len: usize,
) -> Range<usize> {
    let start = o * s; // input index of tap 0, plus p
    let lo = div_ceil(p.saturating_sub(start), d);
    let hi = div_ceil((len + p).saturating_sub(start), d).min(k);
    lo..hi.max(lo)
}

/// `a.div_ceil(d)` without a divide for the usual strides and dilations 1 and 2: a 64-bit
/// `div` costs ~40 cycles, and a 7x7 plane is only ~100 vector ops.
#[inline(always)]
fn div_ceil(a: usize, d: usize) -> usize {
    match d {
        1 => a,
        2 => a.div_ceil(2),
        _ => a.div_ceil(d),
    }
}
