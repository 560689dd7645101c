//! The im2col matrix of one image and group, B (k × n) of the conv GEMM, gathered panel by
//! panel into the GEMM's packing buffer: row (ic, ky, kx), column (oy, ox) holds
//! x[ic, oy·sh + ky·dh − ph, ox·sw + kx·dw − pw], zero outside x.
//!
//! Packing sits in the inner loops (each float packed feeds only m FMAs: 64 in ResNet's
//! first stage), so it avoids per-row divisions and memcpy calls, and is compiled once per
//! ISA (`pack_avx512` etc.) so LLVM vectorises the copies.
//!
//! Stride-2 convs (ResNet's stem and downsampling convs) would gather every other float,
//! with zero borders, for each of the kh·kw taps. Instead `Phases` splits x once per run
//! into four zero-padded phase planes (even/odd rows × even/odd columns): tap (ky, kx) of
//! output (oy, ox) is then element (oy + ky/2, ox + kx/2) of phase (ky%2, kx%2), so every
//! packed row is a plain copy. The split reads x once; the gather read it kh·kw/4 times.

use crate::conv2d::Conv2dParams;
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
    /// B's full panels are read in x where they are (`direct`): pointwise, unless `packed`.
    in_place: bool,
    /// Set when x is not the input but its phase planes: (cg_in, qys, qxs, hq, ws).
    phases: Option<Phases>,
    /// (cg_in): B is x · scale[ic], row by row (pointwise convs only, see `scaled`).
    scale: Option<&'a [f32]>,
}

impl<'a> Im2col<'a> {
    /// B over x: (cg_in, h, w).
    pub(super) fn new(p: &'a Conv2dParams, x: &'a [f32], isa: Isa) -> Self {
        let (oh, ow) = p.output_hw();
        let pointwise = p.is_pointwise();
        Im2col {
            p,
            x,
            isa,
            ow,
            npix: oh * ow,
            pointwise,
            in_place: pointwise,
            phases: None,
            scale: None,
        }
    }

    /// B whose every panel is packed, a pointwise one too (`packs_pointwise`).
    pub(super) fn packed(self) -> Self {
        Im2col {
            in_place: false,
            ..self
        }
    }

    /// B over x · s, s: (cg_in), for a conv `Conv2dParams::in_scale_applies` takes: its B
    /// is x, row ic channel ic, so each row is scaled as `pack` copies it into the
    /// L2-resident block, and x · s never exists in memory. Its rows are then packed,
    /// never read in place (`direct`): the copy does the multiply.
    pub(super) fn scaled(self, s: &'a [f32]) -> Self {
        assert!(
            self.pointwise && self.phases.is_none(),
            "Im2col: in_scale on a conv other than 1×1 stride 1 pad 0: {:?}",
            self.p
        );
        assert_eq!(s.len(), self.p.c_in / self.p.groups, "Im2col: scale length");
        Im2col {
            scale: Some(s),
            ..self
        }
    }

    /// B over x's phase planes `Phases::new(p)` describes, written by `Phases::split`:
    /// (cg_in, qys, qxs, hq, ws).
    pub(super) fn over_phases(
        p: &'a Conv2dParams,
        phases: Phases,
        planes: &'a [f32],
        isa: Isa,
    ) -> Self {
        assert_eq!(planes.len(), p.c_in / p.groups * phases.per_channel());
        Im2col {
            phases: Some(phases),
            ..Im2col::new(p, planes, isa)
        }
    }
}

/// Zero-padded phase planes of x: x padded to (h + 2ph, w + 2pw), then, at stride 2,
/// split by row and column parity into planes of hq × wq, so that tap (ky, kx) of output
/// (oy, ox) is element (oy + ky/s, ox + kx/s) of phase (ky%s, kx%s). A 1-tap axis reads
/// only the even phase, so a stride-2 1×1 conv gets one plane: x subsampled. Rows are
/// `ws` ≥ wq floats apart: the direct kernel asks for zero slack past wq.
#[derive(Debug, Clone, Copy)]
pub(super) struct Phases {
    /// Stride on both axes: 1 or 2.
    s: usize,
    hq: usize,
    /// Row stride of every plane, ≥ wq = (w + 2pw) / s rounded up.
    ws: usize,
    /// Row and column phases kept: 1 or 2 each.
    qys: usize,
    qxs: usize,
}

impl Phases {
    /// For the im2col GEMM of stride 2 × 2, dilation 1 convs; None otherwise.
    pub(super) fn new(p: &Conv2dParams) -> Option<Phases> {
        (p.stride == [2, 2] && p.dilation == [1, 1]).then(|| Phases::padded(p, 0))
    }

    /// For a stride 1 × 1 or 2 × 2, dilation 1 conv, rows at least `min_ws` floats apart.
    pub(super) fn padded(p: &Conv2dParams, min_ws: usize) -> Phases {
        let s = p.stride[0];
        assert!(
            p.stride == [s, s] && (s == 1 || s == 2) && p.dilation == [1, 1],
            "Phases: not a stride 1 or 2 conv: {p:?}"
        );
        Phases {
            s,
            hq: (p.h + 2 * p.pad[0]).div_ceil(s),
            ws: (p.w + 2 * p.pad[1]).div_ceil(s).max(min_ws),
            qys: p.kh.min(s),
            qxs: p.kw.min(s),
        }
    }

    /// Floats of one channel's planes.
    pub(super) fn per_channel(&self) -> usize {
        self.qys * self.qxs * self.hq * self.ws
    }

    /// Row stride of the planes.
    pub(super) fn ws(&self) -> usize {
        self.ws
    }

    /// Where tap (ky, kx) of output (0, 0) sits in one channel's planes; output (oy, ox)
    /// is oy·ws + ox further.
    pub(super) fn tap_offset(&self, ky: usize, kx: usize) -> usize {
        // s is 1 or 2 (`padded`): a mask and a shift, not divides, as the packing asks
        // for it once per row.
        let (mask, shift) = (self.s - 1, self.s >> 1);
        let phase = (ky & mask) * self.qxs + (kx & mask);
        (phase * self.hq + (ky >> shift)) * self.ws + (kx >> shift)
    }

    /// dst: (qys, qxs, hq, ws) = the phase planes of one channel x_c: (h, w), zeros where
    /// the padded position lies outside x (including a last odd row/column no tap reads,
    /// and the slack past wq).
    pub(super) fn split(&self, p: &Conv2dParams, x_c: &[f32], dst: &mut [f32]) {
        self.split_rows(p, x_c, 0, None, dst)
    }

    /// As `split`, for planes of hq rows that start at phase row r0 of the whole planes: a
    /// band of them (`direct.rs`); x's values times `scale` when given (the channel's
    /// `in_scale`), the zeros of the padding left zeros (0 · inf would be NaN).
    pub(super) fn split_rows(
        &self,
        p: &Conv2dParams,
        x_c: &[f32],
        r0: usize,
        scale: Option<f32>,
        dst: &mut [f32],
    ) {
        let (s, hq, ws, [ph, pw]) = (self.s, self.hq, self.ws, p.pad);
        let plane = hq * ws;
        assert_eq!(x_c.len(), p.h * p.w);
        assert_eq!(dst.len(), self.per_channel());
        for qy in 0..self.qys {
            for r in 0..hq {
                // Padded row s·r + qy is input row iy + ph.
                let iy = (s * (r0 + r) + qy).wrapping_sub(ph);
                for qx in 0..self.qxs {
                    let out = &mut dst[(qy * self.qxs + qx) * plane + r * ws..][..ws];
                    if iy >= p.h {
                        out.fill(0.0);
                    } else {
                        split_row(&x_c[iy * p.w..][..p.w], s, qx, pw, scale, out);
                    }
                }
            }
        }
    }

    /// These planes cut to bands of `rows` phase rows.
    pub(super) fn with_rows(self, rows: usize) -> Phases {
        Phases { hq: rows, ..self }
    }

    /// Stride on both axes: 1 or 2.
    pub(super) fn stride(&self) -> usize {
        self.s
    }
}

/// out[c] = row[s·c + qx − pw], zero where that column lies outside the row: the
/// in-row span as one plain (s = 1) or de-interleaving (s = 2) copy that LLVM
/// vectorises, where a per-element bounds check kept it scalar (a third of a stride-2
/// 16→32 conv's time on 320² inputs went here). With a `scale`, the span is then
/// multiplied by it in place (still in L1), the zeros around it left alone.
fn split_row(row: &[f32], s: usize, qx: usize, pw: usize, scale: Option<f32>, out: &mut [f32]) {
    // Valid c: pw − qx ≤ s·c ≤ w − 1 + pw − qx.
    let lo = (pw.saturating_sub(qx)).div_ceil(s).min(out.len());
    let hi = match (row.len() + pw).checked_sub(qx + 1) {
        Some(last) => (last / s + 1).clamp(lo, out.len()),
        None => lo,
    };
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    if hi > lo {
        let start = s * lo + qx - pw;
        let (dst, len) = (&mut out[lo..hi], hi - lo);
        if s == 1 {
            dst.copy_from_slice(&row[start..start + len]);
        } else {
            debug_assert_eq!(s, 2, "Phases: stride 1 or 2");
            let src = &row[start..start + 2 * len - 1];
            for (o, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = pair[0];
            }
            dst[len - 1] = src[2 * len - 2];
        }
        if let Some(k) = scale {
            dst.iter_mut().for_each(|v| *v *= k);
        }
    }
}

impl PackB for Im2col<'_> {
    /// A pointwise conv's B is x itself, (cg_in, npix): unless `packed`, a whole panel's
    /// rows are read where they are (see `packs_pointwise` for when that is faster). The
    /// last panel, cut by npix, is packed: its last row would run past x.
    fn direct(&self, k0: usize, start: usize, width: usize) -> Option<(*const f32, usize)> {
        (self.in_place && self.scale.is_none() && start + width <= self.npix)
            .then(|| (self.x[k0 * self.npix + start..].as_ptr(), self.npix))
    }

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
    /// (ic, ky, kx) are stepped (`Tap`), (oy, ox) decoded once per call.
    #[inline(always)]
    fn pack_rows(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        let p = self.p;
        let valid = width.min(self.npix - start);
        // A pointwise B's rows are x's (times the scale): kc plain copies, none of the tap
        // decoding below. On the Xeon model 207, cold weights, interleaved in one process:
        // ResNet-50's 1×1 convs 0.978× the time, MobileNetV3-L and EfficientNet-B0 level.
        if self.pointwise {
            let x = &self.x[k0 * self.npix + start..];
            for (kk, row) in dst.chunks_exact_mut(width).take(kc).enumerate() {
                let src = &x[kk * self.npix..][..valid];
                match self.scale {
                    Some(s) => copy_scaled(&mut row[..valid], src, s[k0 + kk]),
                    None => copy(&mut row[..valid], src),
                }
                zero(&mut row[valid..]);
            }
            return;
        }
        // Stride 2: ResNet-50's stride-2 convs 0.967× the time of the per-row decoding
        // below, its 3×3 ones 0.90–0.97× (Xeon model 207, interleaved in one process).
        if let Some(ph) = &self.phases {
            return self.pack_phases(ph, k0, kc, start, width, dst);
        }
        let plane = p.h * p.w;
        let mut tap = Tap::at(p, k0);
        let (oy, ox) = (start / self.ow, start % self.ow);
        for row in dst.chunks_exact_mut(width).take(kc) {
            let x_c = &self.x[tap.ic * plane..][..plane];
            self.gather_row(x_c, tap.ky, tap.kx, oy, ox, &mut row[..valid]);
            zero(&mut row[valid..]);
            tap.step(p);
        }
    }

    /// `pack_rows` from phase planes (stride-2 convs): the panel's pixels are cut into runs
    /// along the output rows once, so that a row of the panel is just its runs' copies.
    #[inline(always)]
    fn pack_phases(
        &self,
        ph: &Phases,
        k0: usize,
        kc: usize,
        start: usize,
        width: usize,
        dst: &mut [f32],
    ) {
        // A panel is at most 32 columns (the widest microkernel): at most 32 output rows.
        const MAX_RUNS: usize = 32;
        assert!(width <= MAX_RUNS, "Im2col: a panel {width} wide");
        let valid = width.min(self.npix - start);
        // (first float in the row, first pixel in a plane, floats): one per output row
        // spanned, merged where the planes' rows are output rows (then the pixels are
        // contiguous there too).
        let mut runs = [(0, 0, 0); MAX_RUNS];
        let (mut n, mut d) = (0, 0);
        let (mut oy, mut ox) = (start / self.ow, start % self.ow);
        while d < valid {
            let (at, len) = (oy * ph.ws() + ox, (self.ow - ox).min(valid - d));
            match n {
                1.. if runs[n - 1].1 + runs[n - 1].2 == at => runs[n - 1].2 += len,
                _ => {
                    runs[n] = (d, at, len);
                    n += 1;
                }
            }
            (d, oy, ox) = (d + len, oy + 1, 0);
        }
        let per_channel = ph.per_channel();
        let mut tap = Tap::at(self.p, k0);
        for row in dst.chunks_exact_mut(width).take(kc) {
            let base = tap.ic * per_channel + ph.tap_offset(tap.ky, tap.kx);
            for &(d, at, len) in &runs[..n] {
                copy(&mut row[d..d + len], &self.x[base + at..][..len]);
            }
            zero(&mut row[valid..]);
            tap.step(self.p);
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

/// Row (ic, ky, kx) of an im2col B: input channel and tap, stepped through k in order
/// without a divide per row (one costs ~15 cycles, a 32-float row copy ~4).
struct Tap {
    ic: usize,
    ky: usize,
    kx: usize,
}

impl Tap {
    /// Row k of `p`'s B.
    fn at(p: &Conv2dParams, k: usize) -> Tap {
        let taps = p.kh * p.kw;
        let tap = k % taps;
        Tap {
            ic: k / taps,
            ky: tap / p.kw,
            kx: tap % p.kw,
        }
    }

    /// The next row.
    fn step(&mut self, p: &Conv2dParams) {
        self.kx += 1;
        if self.kx == p.kw {
            self.kx = 0;
            self.ky += 1;
            if self.ky == p.kh {
                self.ky = 0;
                self.ic += 1;
            }
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

/// dst = src · s, the product a separate `x · s` would store. A plain loop: inlined into
/// `pack_avx512` / `pack_avx2`, LLVM vectorises it for their ISA.
#[inline(always)]
fn copy_scaled(dst: &mut [f32], src: &[f32], s: f32) {
    assert_eq!(dst.len(), src.len());
    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v * s);
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
