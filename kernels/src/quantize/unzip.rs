//! Short byte moves: a run split by parity, `evens[i] = src[2i]`, `odds[i] = src[2i + 1]`: how a
//! stride-2 conv's input row lands in its two column phases (`qconv/planes.rs`), and how
//! a stride-2 max pool reads its windows' columns as contiguous runs (`qmaxpool.rs`).
//! A strided byte loop moved about a byte a cycle, and the phase planes of ResNet's
//! stride-2 convs cost a third as much as their GEMMs; SSE2's word masks and packs split
//! 32 bytes in six instructions. And a short copy without a call (`copy_run`).

/// Copies `n` bytes from `src` to `dst` (not overlapping) in 16-byte moves, the last one
/// overlapping the one before, in place of `copy_nonoverlapping`, which for a length
/// known only at run time is a call to memmove: the int8 conv copies its planes and
/// stores its padded tiles a row of 7 to 56 values at a time (memmove was 2–6% of
/// ResNet-50's int8 run).
///
/// # Safety
/// `src` valid for `n` reads and `dst` for `n` writes, the two not overlapping.
#[inline]
pub unsafe fn copy_run(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n >= 16 {
        use std::arch::x86_64::*;
        let mut i = 0;
        while i + 16 < n {
            _mm_storeu_si128(dst.add(i).cast(), _mm_loadu_si128(src.add(i).cast()));
            i += 16;
        }
        let last = n - 16;
        _mm_storeu_si128(dst.add(last).cast(), _mm_loadu_si128(src.add(last).cast()));
        return;
    }
    for i in 0..n {
        *dst.add(i) = *src.add(i);
    }
}

/// Writes `evens[i] = src[2i]` for i < min(evens.len(), src.len().div_ceil(2)) and
/// `odds[i] = src[2i + 1]` for i < min(odds.len(), src.len() / 2); either may be None (not
/// written, for a phase no tap reads).
pub fn unzip(src: &[u8], mut evens: Option<&mut [u8]>, mut odds: Option<&mut [u8]>) {
    let n_even = evens
        .as_ref()
        .map_or(0, |e| e.len().min(src.len().div_ceil(2)));
    let n_odd = odds.as_ref().map_or(0, |o| o.len().min(src.len() / 2));
    // Pairs split 16 at a time while every written side has 16 to take.
    #[cfg(target_arch = "x86_64")]
    let done = {
        let room = |n: usize, on: bool| if on { n } else { usize::MAX };
        let vectors = (src.len() / 32)
            .min(room(n_even, evens.is_some()) / 16)
            .min(room(n_odd, odds.is_some()) / 16);
        // SAFETY: vectors · 32 bytes of src and vectors · 16 of each written side exist
        // (counted above); SSE2 is part of x86-64.
        unsafe {
            x86::unzip32(
                src.as_ptr(),
                evens.as_deref_mut().map(<[u8]>::as_mut_ptr),
                odds.as_deref_mut().map(<[u8]>::as_mut_ptr),
                vectors,
            )
        };
        vectors * 16
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    if let Some(e) = evens {
        for i in done..n_even {
            e[i] = src[2 * i];
        }
    }
    if let Some(o) = odds {
        for i in done..n_odd {
            o[i] = src[2 * i + 1];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `vectors` blocks of 32 source bytes into 16 evens and 16 odds each.
    ///
    /// # Safety
    /// `src` must hold `32 · vectors` bytes and each non-None side `16 · vectors`.
    pub unsafe fn unzip32(
        src: *const u8,
        evens: Option<*mut u8>,
        odds: Option<*mut u8>,
        vectors: usize,
    ) {
        let low = _mm_set1_epi16(0x00ff);
        for v in 0..vectors {
            let a = _mm_loadu_si128(src.add(32 * v).cast());
            let b = _mm_loadu_si128(src.add(32 * v + 16).cast());
            if let Some(e) = evens {
                let even = _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low));
                _mm_storeu_si128(e.add(16 * v).cast(), even);
            }
            if let Some(o) = odds {
                let odd = _mm_packus_epi16(_mm_srli_epi16::<8>(a), _mm_srli_epi16::<8>(b));
                _mm_storeu_si128(o.add(16 * v).cast(), odd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unzip;

    #[test]
    fn copy_run_copies_every_length() {
        let src: Vec<u8> = (0..100u32).map(|i| (i * 29 + 3) as u8).collect();
        for n in 0..src.len() {
            let mut dst = vec![0xeeu8; src.len() + 1];
            // SAFETY: both hold n bytes at least.
            unsafe { super::copy_run(src.as_ptr(), dst.as_mut_ptr(), n) };
            assert_eq!(&dst[..n], &src[..n], "n {n}");
            assert!(dst[n..].iter().all(|&b| b == 0xee), "n {n}: past the end");
        }
    }

    #[test]
    fn every_length_and_room_is_the_strided_copy() {
        let src: Vec<u8> = (0..150u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..src.len() {
            let s = &src[..n];
            for room in [0, 1, 15, 16, 17, 40, 80] {
                for (use_even, use_odd) in [(true, true), (true, false), (false, true)] {
                    let mut e = vec![0xAAu8; room];
                    let mut o = vec![0x55u8; room];
                    unzip(
                        s,
                        use_even.then_some(&mut e[..]),
                        use_odd.then_some(&mut o[..]),
                    );
                    let mut want_e = vec![0xAAu8; room];
                    let mut want_o = vec![0x55u8; room];
                    for (i, &b) in s.iter().enumerate() {
                        match i % 2 {
                            0 if use_even && i / 2 < room => want_e[i / 2] = b,
                            1 if use_odd && i / 2 < room => want_o[i / 2] = b,
                            _ => {}
                        }
                    }
                    assert_eq!(e, want_e, "n {n}, room {room}, evens");
                    assert_eq!(o, want_o, "n {n}, room {room}, odds");
                }
            }
        }
    }
}
