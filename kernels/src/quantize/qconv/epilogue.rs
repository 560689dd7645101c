//! One tile of the int8 conv: the microkernel's exact sums, then the requantize steps of
//! [`QConv2d::reference`](crate::quantize::conv::QConv2d::reference) in the same f32
//! operations (a product, then a sum: no FMA), and the valid grid columns stored.

use super::{tiles, QConvCpu, MR, NR};
use crate::quantize::lanes::{Grid, Lane, OutPtr};
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
        y: OutPtr,
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
unsafe fn store_tile<S: Simd>(c: &QConvCpu, sums: &[i32; MR * NR], at: [usize; 6], y: OutPtr) {
    match y {
        OutPtr::F32(y) => store_rows::<S, f32>(c, sums, at, y),
        OutPtr::U8(y) => store_rows::<S, u8>(c, sums, at, y),
    }
}

/// `store_tile` for one output type.
#[inline(always)]
unsafe fn store_rows<S: Simd, T: Lane>(
    c: &QConvCpu,
    sums: &[i32; MR * NR],
    at: [usize; 6],
    y: *mut T,
) {
    let [img, g, mp, j0, oh, ow] = at;
    let p = &c.q.p;
    let m = p.c_out / p.groups;
    let (wq, end) = (c.planes.wq, (oh * c.planes.wq).min(j0 + NR));
    let straight = wq == ow && end == j0 + NR;
    let mut row = [T::default(); NR];
    let (grid, relu) = (Grid::<S>::new(&c.q.y_clamped()), c.q.relu);
    for r in 0..MR.min(m - mp * MR) {
        let oc = g * m + mp * MR + r;
        let (mult, bias) = (c.multiplier[oc], c.bias[oc]);
        let acc = &sums[r * NR..][..NR];
        let plane = y.add((img * p.c_out + oc) * oh * ow);
        if straight {
            requantize::<S, T>(acc, [mult, bias], &grid, relu, plane.add(j0));
            continue;
        }
        requantize::<S, T>(acc, [mult, bias], &grid, relu, row.as_mut_ptr());
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

/// out[0..NR] = quantize(y, relu(acc · mult + bias)), stored as T, lane by lane. Needs
/// S's features.
#[inline(always)]
unsafe fn requantize<S: Simd, T: Lane>(
    acc: &[i32],
    [mult, bias]: [f32; 2],
    grid: &Grid<S>,
    relu: bool,
    dst: *mut T,
) {
    let (m, b, zero) = (S::splat(mult), S::splat(bias), S::splat(0.0));
    let mut i = 0;
    while i + S::LANES <= NR {
        let mut v = S::add(S::mul(S::load_i32(acc.as_ptr().add(i)), m), b);
        if relu {
            v = S::max(v, zero);
        }
        T::put::<S>(dst.add(i), grid, grid.quantize(v));
        i += S::LANES;
    }
}
