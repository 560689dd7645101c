//! Element-wise activations with SIMD (the vector layer is `crate::simd`).

use crate::parallel::for_each_part;
use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

/// y = act(x). No sums: exact, bit for bit, on every ISA; split over `threads`
/// (`parallel::for_each_part`).
pub fn activate(isa: Isa, act: Activation, x: &[f32], y: &mut [f32], threads: usize) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "activate: x and y lengths");
    for_each_part(threads, y, 1, |at, part| {
        let (src, dst, len) = (x[at..].as_ptr(), part.as_mut_ptr(), part.len());
        // SAFETY: `src` and `dst` are valid for `len` elements (x and y have one length);
        // dispatch! checks the ISA.
        unsafe { dispatch!(isa, activate_body(act, src, dst, len)) }
    });
}

/// y = act(y), split over `threads` as `activate`.
pub fn activate_in_place(isa: Isa, act: Activation, y: &mut [f32], threads: usize) {
    // y: (len)
    for_each_part(threads, y, 1, |_, part| {
        let (dst, len) = (part.as_mut_ptr(), part.len());
        // SAFETY: `dst` is valid for `len` elements; reading and writing element i in one
        // step makes src == dst fine. dispatch! checks the ISA.
        unsafe { dispatch!(isa, activate_body(act, dst, dst, len)) }
    });
}

/// Needs S's features; `src` and `dst` valid for `len` elements (they may be equal).
#[inline(always)]
unsafe fn activate_body<S: Simd>(act: Activation, src: *const f32, dst: *mut f32, len: usize) {
    let mut i = 0;
    while i + S::LANES <= len {
        S::store(dst.add(i), S::act(S::load(src.add(i)), act));
        i += S::LANES;
    }
    for j in i..len {
        *dst.add(j) = act.apply(*src.add(j));
    }
}
