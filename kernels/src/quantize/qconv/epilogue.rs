//! One tile of the int8 conv: the microkernel's exact sums, then the requantize steps of
//! [`QConv2d::reference`](crate::quantize::conv::QConv2d::reference) in the same f32
//! operations (a product, then a sum: no FMA), and the valid grid columns stored.

use super::{tiles, QConvCpu, MR, NR};
use crate::quantize::QuantParams;
use crate::simd::{dispatch, Simd};

impl QConvCpu {
    /// Image `img`, group `g`, channel panel `mp`, grid columns `j0..j0 + NR` (B's panel
    /// `b`, packed) into y.
    ///
    /// # Safety
    /// `y` must be the whole output, and no other thread may write these elements.
    pub(super) unsafe fn tile(
        &self,
        img: usize,
        g: usize,
        mp: usize,
        b: &[u8],
        j0: usize,
        y: *mut f32,
    ) {
        let p = &self.q.p;
        let oh = p.output_hw().0;
        let m = p.c_out / p.groups;
        let (kq, m_panels) = (self.rows.len() / 4, m.div_ceil(MR));
        let panel = g * m_panels + mp;
        let a = self.a[panel * kq * MR * 4..].as_ptr();
        let comp: &[i32; MR] = self.comp[panel * MR..][..MR].try_into().expect("MR sums");
        let mut sums = [0i32; MR * NR];
        tiles::tile(self.qisa, a, b.as_ptr(), kq, comp, &mut sums);

        let (c, ow) = (self, p.output_hw().1);
        dispatch!(
            self.qisa.float_isa(),
            store_tile(c, &sums, [img, g, mp, j0, oh, ow], y)
        );
    }
}

/// The tile's rows requantized into y: straight into it where the grid is the output
/// (unpadded stride-1 convs: wq = ow) and the tile is whole, else through a row buffer,
/// the valid columns copied. Needs S's features; `y` as for `tile`.
#[inline(always)]
unsafe fn store_tile<S: Simd>(c: &QConvCpu, sums: &[i32; MR * NR], at: [usize; 6], y: *mut f32) {
    let [img, g, mp, j0, oh, ow] = at;
    let p = &c.q.p;
    let m = p.c_out / p.groups;
    let (wq, end) = (c.planes.wq, (oh * c.planes.wq).min(j0 + NR));
    let straight = wq == ow && end == j0 + NR;
    let mut row = [0f32; NR];
    for r in 0..MR.min(m - mp * MR) {
        let oc = g * m + mp * MR + r;
        let (mult, bias) = (c.multiplier[oc], c.bias[oc]);
        let (acc, yq, relu) = (&sums[r * NR..][..NR], &c.q.y, c.q.relu);
        let plane = y.add((img * p.c_out + oc) * oh * ow);
        if straight {
            requantize::<S>(acc, mult, bias, relu, yq, plane.add(j0));
            continue;
        }
        requantize::<S>(acc, mult, bias, relu, yq, row.as_mut_ptr());
        let mut j = j0;
        while j < end {
            let (oy, ox) = (j / wq, j % wq);
            let run = (wq - ox).min(end - j);
            if ox < ow {
                let n = run.min(ow - ox);
                let dst = std::slice::from_raw_parts_mut(plane.add(oy * ow + ox), n);
                dst.copy_from_slice(&row[j - j0..][..n]);
            }
            j += run;
        }
    }
}

/// out[0..NR] = dequantize(quantize(y, relu(acc · mult + bias))), lane by lane. Needs
/// S's features.
#[inline(always)]
unsafe fn requantize<S: Simd>(
    acc: &[i32],
    mult: f32,
    bias: f32,
    relu: bool,
    y: &QuantParams,
    out: *mut f32,
) {
    let (m, b, zero) = (S::splat(mult), S::splat(bias), S::splat(0.0));
    let (inv, zp, scale) = (
        S::splat(y.inv_scale),
        y.zero_point as f32,
        S::splat(y.scale),
    );
    let (plus_zp, minus_zp) = (S::splat(zp), S::splat(-zp));
    let (lo, hi) = (S::splat(y.qmin as f32), S::splat(y.qmax as f32));
    let mut i = 0;
    while i + S::LANES <= NR {
        let mut v = S::add(S::mul(S::load_i32(acc.as_ptr().add(i)), m), b);
        if relu {
            v = S::max(v, zero);
        }
        let q = S::add(S::round(S::mul(v, inv)), plus_zp);
        let q = S::min(hi, S::max(lo, q));
        S::store(out.add(i), S::mul(S::add(q, minus_zp), scale));
        i += S::LANES;
    }
}
