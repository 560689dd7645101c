//! The GEMM's operands in the layout its loops read: A packed once into kc-blocks of
//! mr-row panels (`PackedA`), and the n columns cut into panels of the microkernels'
//! widths (`Panels`).

use super::Tiles;

/// A (groups × m × k), packed once. Per group, k is cut into the GEMM's kc-blocks
/// (`kc_block`) and each block holds ceil(m/mr) panels of (kc, mr), rows past m zero: the
/// GEMM then reads A front to back. With few columns (7×7 outputs) every A panel feeds
/// only a few microkernel calls, so A streams from L3 or DRAM, and a sequential stream is
/// what the prefetchers follow best: against panels of the whole k (8 KiB runs 16+ KiB
/// apart), 1 thread, this Zen 4: ResNet's 512@7² F(2×2) Winograd 2.8–3.2 → 1.8 ms,
/// 1×1 2048→512@7² with cold weights 1.44 → 1.28 ms; large-n layers unchanged.
pub struct PackedA {
    data: Vec<f32>,
    /// Rows of A (per group).
    pub m: usize,
    /// Columns of A: the GEMM's depth.
    pub k: usize,
    /// Rows per panel: the microkernel's height.
    pub mr: usize,
}

impl PackedA {
    /// a: (groups·m, k) row-major, e.g. conv weights (c_out, c_in/groups·kh·kw); blocked
    /// for `t`'s mr and kc.
    pub fn new(a: &[f32], groups: usize, m: usize, k: usize, t: &Tiles) -> PackedA {
        assert_eq!(a.len(), groups * m * k, "PackedA: a length");
        let mut packed = PackedA::zeroed(groups, m, k, t);
        for g in 0..groups {
            packed.pack_group(g, &a[g * m * k..][..m * k], t);
        }
        packed
    }

    /// [`PackedA::new`] of an A made one group at a time: `fill(g, a_g)` writes group g's
    /// (m, k) row-major matrix into `a_g` (zeroed before each call), for g = 0, 1, … in
    /// order, and each is packed before the next is made. Only one group is ever held
    /// unpacked: Winograd's U is 36 (c_out, c_in) matrices, 4× its 3×3 weights, and made
    /// whole it was a transient as large as the packed copy.
    pub fn from_groups(
        groups: usize,
        m: usize,
        k: usize,
        t: &Tiles,
        mut fill: impl FnMut(usize, &mut [f32]),
    ) -> PackedA {
        let mut packed = PackedA::zeroed(groups, m, k, t);
        let mut a_g = vec![0.0; m * k];
        for g in 0..groups {
            a_g.fill(0.0);
            fill(g, &mut a_g);
            packed.pack_group(g, &a_g, t);
        }
        packed
    }

    fn zeroed(groups: usize, m: usize, k: usize, t: &Tiles) -> PackedA {
        let panels = m.div_ceil(t.mr);
        PackedA {
            data: vec![0.0; groups * panels * k * t.mr],
            m,
            k,
            mr: t.mr,
        }
    }

    /// Packs a_g: (m, k) row-major as group g.
    fn pack_group(&mut self, g: usize, a_g: &[f32], t: &Tiles) {
        let (m, k, mr, kc) = (self.m, self.k, self.mr, kc_block(t, self.k));
        // The GEMM finds panel p of the block at k0 at (k0·panels + p·kb)·mr: every block
        // before it is kc rows deep.
        let panels = self.panels();
        let group = &mut self.data[g * panels * k * mr..][..panels * k * mr];
        for k0 in (0..k).step_by(kc.max(1)) {
            let kb = kc.min(k - k0);
            for p in 0..panels {
                // dst: (kb, mr) for rows p·mr.. of group g, k in k0..k0 + kb
                let dst = &mut group[(k0 * panels + p * kb) * mr..][..kb * mr];
                for r in 0..mr.min(m - p * mr) {
                    let row = &a_g[(p * mr + r) * k + k0..][..kb];
                    for (kk, &v) in row.iter().enumerate() {
                        dst[kk * mr + r] = v;
                    }
                }
            }
        }
    }

    /// Panels per group: ceil(m / mr).
    pub fn panels(&self) -> usize {
        self.m.div_ceil(self.mr)
    }

    /// Group g's panels: (panels, k, mr).
    pub fn group(&self, g: usize) -> &[f32] {
        let len = self.panels() * self.k * self.mr;
        &self.data[g * len..][..len]
    }
}

/// The column panels of an n-wide B: `full` panels of width nr, then up to 4 narrower ones
/// covering the tail, each a width from `Tiles::widths`.
#[derive(Debug, Clone, Copy)]
pub struct Panels {
    /// Columns of B covered.
    pub n: usize,
    nr: usize,
    full: usize,
    tail: [usize; 4],
    ntail: usize,
}

impl Panels {
    /// Splits `n` columns into panels of the widths `t` allows.
    pub fn new(n: usize, t: &Tiles) -> Panels {
        let (full, mut rem) = (n / t.nr, n % t.nr);
        let (mut tail, mut ntail) = ([0; 4], 0);
        let narrowest = *t.widths.last().unwrap();
        while rem > 0 {
            // Widest kernel that fits, else a column tail, else the narrowest one,
            // zero-padded.
            let w = t
                .widths
                .iter()
                .copied()
                .find(|&w| w <= rem)
                .unwrap_or(if t.tail { rem } else { narrowest });
            tail[ntail] = w;
            ntail += 1;
            rem = rem.saturating_sub(w);
        }
        Panels {
            n,
            nr: t.nr,
            full,
            tail,
            ntail,
        }
    }

    /// Number of panels.
    pub fn len(&self) -> usize {
        self.full + self.ntail
    }

    /// Whether there are no panels (n = 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (first column, width) of panel p.
    pub fn get(&self, p: usize) -> (usize, usize) {
        if p < self.full {
            return (p * self.nr, self.nr);
        }
        let t = p - self.full;
        (
            self.full * self.nr + self.tail[..t].iter().sum::<usize>(),
            self.tail[t],
        )
    }

    /// Columns including the zero padding of the last panel.
    pub fn padded(&self) -> usize {
        self.full * self.nr + self.tail[..self.ntail].iter().sum::<usize>()
    }
}

/// k per block: k split into equal blocks of at most `Tiles::kc` (576 → 3 × 192, not
/// 256 + 256 + 64).
pub fn kc_block(t: &Tiles, k: usize) -> usize {
    k.div_ceil(k.div_ceil(t.kc))
}

/// Floats of B-packing scratch one worker needs for a (k, panels) GEMM.
pub fn scratch_per_worker(t: &Tiles, k: usize, panels: &Panels) -> usize {
    kc_block(t, k) * t.nc.min(panels.padded())
}
