//! The int8 conv's input: x quantized to bytes once per run into padded phase planes, so
//! that every row of the conv's im2col matrix is a contiguous run of bytes.
//!
//! Each channel's plane is padded (the padding holds the zero point) and, for a stride s
//! (per axis), split into s·s phase planes by (row mod s, column mod s), hq × wq each.
//! Output pixel (oy, ox) of tap (ky, kx) reads padded row oy·sh + ky·dh, which lies in
//! phase row (ky·dh) mod sh at phase-plane row oy + (ky·dh) div sh; columns likewise.
//! Over the grid of oh × wq "columns" j = oy·wq + ox, the bytes one tap reads are then
//! the run `phase_plane[offset + j]`: the GEMM computes every grid column, and the ones
//! with ox ≥ ow (past the output row's end) are dropped when stored. The waste is
//! wq / ow − 1: 4% at 56 wide, 29% at 7.

use crate::conv2d::Conv2dParams;
use crate::quantize::lanes::quantize_bytes;
use crate::quantize::unzip::{copy_run, unzip};
use crate::quantize::QuantParams;
use crate::simd::Simd;

/// Where one conv's phase planes lie in its scratch, and how x fills them.
#[derive(Debug, Clone)]
pub(super) struct Planes {
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    h: usize,
    w: usize,
    hq: usize,
    /// A phase plane's row length: the grid's row length.
    pub wq: usize,
    /// Which phase planes some tap reads (1×1 stride-2 convs read one of four).
    used: Vec<bool>,
}

impl Planes {
    pub fn new(p: &Conv2dParams) -> Planes {
        let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
        let (hp, wp) = (p.h + 2 * ph, p.w + 2 * pw);
        let mut used = vec![false; sh * sw];
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                used[(ky * dh % sh) * sw + kx * dw % sw] = true;
            }
        }
        Planes {
            sh,
            sw,
            ph,
            pw,
            h: p.h,
            w: p.w,
            hq: hp.div_ceil(sh),
            wq: wp.div_ceil(sw),
            used,
        }
    }

    /// Bytes of one channel's phase planes.
    pub fn per_channel(&self) -> usize {
        self.sh * self.sw * self.hq * self.wq
    }

    /// Where tap (ky·dh, kx·dw) of a channel starts reading, from the channel's first byte.
    pub fn tap_offset(&self, dy: usize, dx: usize) -> usize {
        let phase = (dy % self.sh) * self.sw + dx % self.sw;
        phase * self.hq * self.wq + dy / self.sh * self.wq + dx / self.sw
    }

    /// Bytes past the last plane that a tap's run may read (the module doc's grid runs
    /// past the plane by at most a row, plus a partial panel of `panel` columns).
    pub fn slack(&self, panel: usize) -> usize {
        self.wq + panel
    }

    /// One channel: `x` (h, w) quantized by `q`, each value plus `shift` (so that int8
    /// values become unsigned bytes), into `out` (per_channel bytes), the padding and any
    /// phase-plane cell no input lands in set to `pad`. Needs S's features (inlined into
    /// the caller that has them).
    #[inline(always)]
    pub unsafe fn fill<S: Simd>(
        &self,
        q: &QuantParams,
        shift: u8,
        pad: u8,
        x: &[f32],
        out: &mut [u8],
    ) {
        debug_assert_eq!(x.len(), self.h * self.w);
        debug_assert_eq!(out.len(), self.per_channel());
        self.pad(pad, out);
        let mut row = [0u8; 64];
        for iy in 0..self.h {
            let src = &x[iy * self.w..(iy + 1) * self.w];
            let (phase_row, at) = self.row_at(iy);
            if self.sw == 1 {
                if self.used[phase_row] {
                    quantize_bytes::<S>(q, shift, src, &mut out[at + self.pw..][..self.w]);
                }
                continue;
            }
            if !(0..self.sw).any(|px| self.used[phase_row + px]) {
                continue;
            }
            for (c0, chunk) in src.chunks(row.len()).enumerate() {
                quantize_bytes::<S>(q, shift, chunk, &mut row[..chunk.len()]);
                self.scatter(
                    &row[..chunk.len()],
                    c0 * row.len(),
                    phase_row,
                    &mut out[at..],
                );
            }
        }
    }
}

impl Planes {
    /// As `fill`, for x already quantized and shifted, as bytes: copied into place.
    pub fn copy(&self, x: &[u8], pad: u8, out: &mut [u8]) {
        debug_assert_eq!(x.len(), self.h * self.w);
        self.pad(pad, out);
        for iy in 0..self.h {
            let src = &x[iy * self.w..(iy + 1) * self.w];
            let (phase_row, at) = self.row_at(iy);
            if self.sw == 1 {
                if self.used[phase_row] {
                    let dst = &mut out[at + self.pw..][..self.w];
                    // SAFETY: both hold w bytes, in different buffers.
                    unsafe { copy_run(src.as_ptr(), dst.as_mut_ptr(), self.w) };
                }
                continue;
            }
            self.scatter(src, 0, phase_row, &mut out[at..]);
        }
    }

    /// Every used phase plane set to `pad` first, unless the planes are x itself (every
    /// byte is written then).
    fn pad(&self, pad: u8, out: &mut [u8]) {
        let plane = self.hq * self.wq;
        if self.is_x(out.len()) {
            return;
        }
        for (i, used) in self.used.iter().enumerate() {
            if *used {
                out[i * plane..(i + 1) * plane].fill(pad);
            }
        }
    }

    /// Input row iy's phase row (its first phase plane's index) and where that plane's row
    /// starts in a channel's bytes.
    fn row_at(&self, iy: usize) -> (usize, usize) {
        let r = iy + self.ph;
        let phase_row = (r % self.sh) * self.sw;
        (
            phase_row,
            phase_row * self.hq * self.wq + r / self.sh * self.wq,
        )
    }

    /// Input row bytes `row`, from column `ix0` on, into their phase planes' row (`out`
    /// from the first phase plane's row start): column ix lands in phase (ix + pw) mod sw
    /// at (ix + pw) div sw, one strided walk per phase rather than a division per byte
    /// (which cost a seventh of ResNet-50's run).
    fn scatter(&self, row: &[u8], ix0: usize, phase_row: usize, out: &mut [u8]) {
        let (sw, pw, plane) = (self.sw, self.pw, self.hq * self.wq);
        if sw == 2 {
            // row[r] is padded column c = ix0 + pw + r: phase c mod 2, at c div 2. With c
            // even first, the evens go to phase 0 and the odds to phase 1, both from
            // c div 2; with c odd, the evens go to phase 1 from c div 2, the odds to phase
            // 0 from one further.
            let (start, odd) = ((ix0 + pw) / 2, (ix0 + pw) % 2);
            let (p0, p1) = out.split_at_mut(plane);
            let (phase0, phase1) = (
                self.used[phase_row].then(|| &mut p0[start + odd..]),
                self.used[phase_row + 1].then(|| &mut p1[start..]),
            );
            let [evens, odds] = if odd == 0 {
                [phase0, phase1]
            } else {
                [phase1, phase0]
            };
            unzip(row, evens, odds);
            return;
        }
        for px in 0..sw {
            if !self.used[phase_row + px] {
                continue;
            }
            // The first column of the run in phase px.
            let first = (px + sw - (ix0 + pw) % sw) % sw;
            if first >= row.len() {
                continue;
            }
            let at = px * plane + (ix0 + first + pw) / sw;
            for (d, &b) in out[at..].iter_mut().zip(row[first..].iter().step_by(sw)) {
                *d = b;
            }
        }
    }

    /// Whether the planes are x itself, byte for byte (unpadded, stride 1): every byte
    /// gets written, none needs the padding first.
    pub fn is_x(&self, len: usize) -> bool {
        let whole = self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0;
        whole && len == self.h * self.w
    }
}
