//! The im2col matrix of one image and group, B (k × n) of the conv GEMM, gathered panel by
//! panel into the GEMM's packing buffer: row (ic, ky, kx), column (oy, ox) holds
//! x[ic, oy·sh + ky·dh − ph, ox·sw + kx·dw − pw], zero outside x.
//!
//! Packing sits in the inner loops (each float packed feeds only m FMAs: 64 in ResNet's
//! first stage), so it avoids per-row divisions and memcpy calls, and is compiled once per
//! ISA (`pack_avx512` etc.) so LLVM vectorises the copies and the stride-2 gathers.

use super::Conv2dParams;
use crate::gemm::PackB;
use crate::Isa;

pub(super) struct Im2col<'a> {
    p: &'a Conv2dParams,
    /// (cg_in, h, w)
    x: &'a [f32],
    isa: Isa,
    ow: usize,
    npix: usize,
    /// 1×1, stride 1, pad 0: B is x itself, (cg_in, h·w).
    pointwise: bool,
}

impl<'a> Im2col<'a> {
    pub(super) fn new(p: &'a Conv2dParams, x: &'a [f32], isa: Isa) -> Self {
        let (oh, ow) = p.output_hw();
        Im2col {
            p,
            x,
            isa,
            ow,
            npix: oh * ow,
            pointwise: p.kh == 1 && p.kw == 1 && p.stride == [1, 1] && p.pad == [0, 0],
        }
    }
}

impl PackB for Im2col<'_> {
    fn pack(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Conv2dCpu::new checked the CPU supports the ISA.
            Isa::Avx512 => unsafe { pack_avx512(self, k0, kc, start, width, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { pack_avx2(self, k0, kc, start, width, dst) },
            _ => self.pack_rows(k0, kc, start, width, dst),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_avx512(b: &Im2col, k0: usize, kc: usize, start: usize, w: usize, dst: &mut [f32]) {
    b.pack_rows(k0, kc, start, w, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_avx2(b: &Im2col, k0: usize, kc: usize, start: usize, w: usize, dst: &mut [f32]) {
    b.pack_rows(k0, kc, start, w, dst)
}

impl Im2col<'_> {
    /// dst: (kc, width) = B[k0.., start..], zeros past column npix. No division per row:
    /// (ic, ky, kx) and (oy, ox) are decoded once per call (a divide costs ~15 cycles, a
    /// 32-float row copy ~4).
    #[inline(always)]
    fn pack_rows(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        let p = self.p;
        let plane = p.h * p.w;
        let valid = width.min(self.npix - start);
        let taps = p.kh * p.kw;
        let (mut ic, tap) = (k0 / taps, k0 % taps);
        let (mut ky, mut kx) = (tap / p.kw, tap % p.kw);
        let (oy, ox) = (start / self.ow, start % self.ow);
        for row in dst.chunks_exact_mut(width).take(kc) {
            let x_c = &self.x[ic * plane..][..plane];
            if self.pointwise {
                copy(&mut row[..valid], &x_c[start..start + valid]);
            } else {
                self.gather_row(x_c, ky, kx, oy, ox, &mut row[..valid]);
            }
            zero(&mut row[valid..]);
            kx += 1;
            if kx == p.kw {
                kx = 0;
                ky += 1;
                if ky == p.kh {
                    ky = 0;
                    ic += 1;
                }
            }
        }
    }

    /// out[j] = B[(·, ky, kx), pixel (oy, ox) + j] from channel plane x_c: (h, w).
    #[inline(always)]
    fn gather_row(&self, x_c: &[f32], ky: usize, kx: usize, oy: usize, ox: usize, out: &mut [f32]) {
        let p = self.p;
        let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
        let off = kx * dw; // input column of output 0 through tap kx, plus pw
                           // Outputs of a row whose tap kx lands inside it: ox_lo..ox_hi.
                           // Constant divisors for the usual strides: a divide is ~15 cycles, per row.
        let div = |v: usize| match sw {
            1 => v,
            2 => v.div_ceil(2),
            _ => v.div_ceil(sw),
        };
        let ox_lo = div(pw.saturating_sub(off));
        let ox_hi = div((p.w + pw).saturating_sub(off)).max(ox_lo);
        let (mut oy, mut ox, mut d) = (oy, ox, 0);
        while d < out.len() {
            let run = (self.ow - ox).min(out.len() - d);
            let seg = &mut out[d..d + run];
            // iy + ph: the input row this output row reads through tap ky, plus pad.
            let iy = oy * sh + ky * dh;
            if iy < ph || iy - ph >= p.h {
                zero(seg);
            } else {
                let x_row = &x_c[(iy - ph) * p.w..][..p.w];
                let lo = ox_lo.clamp(ox, ox + run);
                let hi = ox_hi.clamp(lo, ox + run);
                let (left, rest) = seg.split_at_mut(lo - ox);
                let (inner, right) = rest.split_at_mut(hi - lo);
                zero(left);
                zero(right);
                if !inner.is_empty() {
                    // lo reads inside the row: lo·sw + off ≥ pw.
                    let src = &x_row[lo * sw + off - pw..];
                    match sw {
                        1 => copy(inner, &src[..inner.len()]),
                        // Separate loops so LLVM sees a constant stride and vectorises.
                        2 => inner
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, o)| *o = src[2 * i]),
                        _ => inner
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, o)| *o = src[sw * i]),
                    }
                }
            }
            d += run;
            ox = 0;
            oy += 1;
        }
    }
}

/// dst = src for the short rows packing copies (≤ 32 floats, rarely longer): two
/// overlapping fixed-size copies, which LLVM inlines as a few vector moves. A loop would
/// become a memcpy call costing more than the copy.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    assert_eq!(n, src.len());
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => copy_ends::<4>(dst, src),
        8..=15 => copy_ends::<8>(dst, src),
        16..=31 => copy_ends::<16>(dst, src),
        32..=63 => copy_ends::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// The first and the last N floats (overlapping when len < 2N); N ≤ len ≤ 2N.
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let head: &[f32; N] = src[..N].try_into().unwrap();
    let tail: &[f32; N] = src[n - N..].try_into().unwrap();
    *<&mut [f32; N]>::try_from(&mut dst[..N]).unwrap() = *head;
    *<&mut [f32; N]>::try_from(&mut dst[n - N..]).unwrap() = *tail;
}

/// dst = 0, inline for the few floats of a padding border.
#[inline(always)]
fn zero(dst: &mut [f32]) {
    if dst.len() <= 8 {
        dst.iter_mut().for_each(|v| *v = 0.0);
    } else {
        dst.fill(0.0);
    }
}
