//! Element-wise add with a fused activation, on the CPU.

use crate::parallel::for_each_part;
use crate::simd::{dispatch, Simd};
use crate::{Activation, Isa};

/// y = act(a + b): one f32 add, as the reference, so exact on every ISA; split over
/// `threads` (`parallel::for_each_part`).
pub fn add(isa: Isa, a: &[f32], b: &[f32], act: Activation, y: &mut [f32], threads: usize) {
    // a, b, y: (len)
    assert_eq!(a.len(), y.len(), "add: a and y lengths");
    assert_eq!(b.len(), y.len(), "add: b and y lengths");
    for_each_part(threads, y, 1, |at, part| {
        let (a, b) = (&a[at..][..part.len()], &b[at..][..part.len()]);
        // SAFETY: dispatch! checks the ISA; add_body takes slices of equal length.
        unsafe { dispatch!(isa, add_body(a, b, act, part)) }
    });
}

/// Needs S's features; a, b and y have equal lengths.
#[inline(always)]
unsafe fn add_body<S: Simd>(a: &[f32], b: &[f32], act: Activation, y: &mut [f32]) {
    let (len, l) = (y.len(), S::LANES);
    let mut i = 0;
    while i + l <= len {
        let v = S::add(S::load(a.as_ptr().add(i)), S::load(b.as_ptr().add(i)));
        S::store(y.as_mut_ptr().add(i), S::act(v, act));
        i += l;
    }
    for j in i..len {
        y[j] = act.apply(a[j] + b[j]);
    }
}
