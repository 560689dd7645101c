//! Concatenation on the CPU: the output split into contiguous parts over the threads, each
//! part filled from the pieces of the inputs that land in it (memcpy-speed copies).

use crate::parallel::for_each_part;

/// y = cat(inputs) as `reference::concat`, input i read through `input(i)` (no list of
/// slices to gather on the hot path); bit-identical to it, split over `threads`.
pub fn concat<'a>(
    threads: usize,
    outer: usize,
    input: impl Fn(usize) -> &'a [f32] + Sync + Send,
    inner: &[usize],
    y: &mut [f32],
) {
    // input(i): (outer, inner[i])  y: (outer, total)
    let total: usize = inner.iter().sum();
    assert_eq!(y.len(), outer * total, "concat: y length");
    for (i, &n) in inner.iter().enumerate() {
        assert_eq!(input(i).len(), outer * n, "concat: input {i} length");
    }
    for_each_part(threads, y, 1, |start, part| {
        let end = start + part.len();
        // Segment (o, i) is y[o·total + at_i ..][..inner[i]], from input i's row o.
        for o in start / total.max(1)..end.div_ceil(total.max(1)) {
            let mut at = o * total;
            for (i, &n) in inner.iter().enumerate() {
                let (lo, hi) = (at.max(start), (at + n).min(end));
                if lo < hi {
                    let src = &input(i)[o * n + lo - at..][..hi - lo];
                    part[lo - start..hi - start].copy_from_slice(src);
                }
                at += n;
            }
        }
    });
}
