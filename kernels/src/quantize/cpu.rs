//! `fake_quant` on the CPU's vectors: the reference's steps in the same f32 operations, so
//! every ISA gives its bits.

use super::lanes::Grid;
use super::{reference, QuantParams};
use crate::parallel::for_each_part;
use crate::simd::{dispatch, Simd};
use crate::Isa;

/// y = dequantize(quantize(x)) element by element (see the module doc), split over
/// `threads` above `parallel::MIN_PARALLEL_FLOATS`. Allocates nothing.
pub fn fake_quant(isa: Isa, p: &QuantParams, x: &[f32], y: &mut [f32], threads: usize) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "fake_quant: x and y lengths");
    for_each_part(threads, y, 1, |at, part| {
        let (src, dst, len) = (x[at..].as_ptr(), part.as_mut_ptr(), part.len());
        // SAFETY: `src` and `dst` are valid for `len` elements (x and y have one length);
        // dispatch! checks the ISA.
        unsafe { dispatch!(isa, fake_quant_body(p, src, dst, len)) }
    });
}

/// Needs S's features; `src` and `dst` valid for `len` elements.
#[inline(always)]
unsafe fn fake_quant_body<S: Simd>(p: &QuantParams, src: *const f32, dst: *mut f32, len: usize) {
    let grid = Grid::<S>::new(p);
    let mut i = 0;
    while i + S::LANES <= len {
        let q = grid.quantize_or_zero(S::load(src.add(i)));
        S::store(dst.add(i), grid.dequantize(q));
        i += S::LANES;
    }
    for j in i..len {
        *dst.add(j) = reference::fake_quant(p, *src.add(j));
    }
}
