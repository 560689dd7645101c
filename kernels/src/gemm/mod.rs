//! Packed f32 GEMM, BLIS style, with a fused epilogue:
//! `C (m × n) = act(A (m × k) · B (k × n) + bias[row] + residual)`.
//!
//! A (the conv weights) is packed once into MR-row panels (`PackedA`); B is packed per
//! kc × nc block by a caller-supplied [`PackB`] (for conv2d that is the im2col gather, so no
//! full im2col buffer ever exists). C rows are output channels and columns are output
//! pixels: y's natural NCHW layout, so the microkernel stores straight into y.
//!
//! The loops, outermost first: nc-column blocks of B (packed into L2), kc-blocks of k, then
//! A panels × B panels around the microkernel, in the order `Tiles::mc` picks for the
//! CPU's L1 (A's micro-panel held while B's stream past, or B's while blocks of A's do).
//!
//! Microkernels hold an MR × NR tile of C in registers and, per k, load one NR-wide row of
//! B and broadcast MR values of A: `gemm_f32_avx512_8x32` (16 zmm accumulators),
//! `gemm_f32_avx2_6x16` (12 ymm), `gemm_f32_scalar_4x8`. Zen 4 has two 256-bit FMA pipes
//! with 4-cycle latency: ≥ 8 independent ymm chains (or ≥ 4 zmm, each zmm FMA takes a
//! pipe for two cycles) keep both busy; 12–16 leave slack for the loads.

use std::ops::Range;

use crate::{Activation, Isa};

mod blocking;
mod packed;
#[cfg(target_arch = "x86_64")]
mod tail;
mod ukernel;

pub use blocking::{a_block, blocking};
pub use packed::{kc_block, scratch_per_worker, PackedA, Panels};

/// Register and cache blocking for one ISA.
#[derive(Debug, Clone, Copy)]
pub struct Tiles {
    /// Rows of C per microkernel (A panel height).
    pub mr: usize,
    /// Columns of C per full microkernel (B panel width).
    pub nr: usize,
    /// Panel widths the ISA has a microkernel for, widest (= nr) first; the n-tail is
    /// covered greedily by the narrower ones, then by a column-tail kernel (`tail`) or
    /// the narrowest one, zero-padded.
    pub widths: &'static [usize],
    /// Whether the ISA has column-tail kernels for every width below the narrowest:
    /// MR × T tiles with the rows in one vector, T FMAs per k where the narrowest tile
    /// spends MR (7×7 outputs: 49 = 32 + 16 + 1 column).
    pub tail: bool,
    /// Most k per block (`blocking`). Zen 4: the A micro-panel (mr × kc: 8 × 256 × 4 B =
    /// 8 KiB) stays in the 32 KiB L1d across all B panels of a block, while the B
    /// micro-panel (kc × 32 × 4 B = 32 KiB) streams from L2 at 128 B per 16 FMA cycles,
    /// 8 B/cycle, far below L2's ~32 B/cycle. Larger kc means fewer C reloads between
    /// k-blocks.
    pub kc: usize,
    /// Most columns per block (`blocking`): the packed B block (kc × nc × 4 B = 256 × 512
    /// × 4 = 512 KiB on Zen 4) stays in half of L2 while every A panel sweeps over it.
    pub nc: usize,
    /// Which operand's micro-panel stays in L1 across the innermost loop (`a_block`):
    /// `None`, A's (each A panel sweeps every B panel of the block, B streams from L2);
    /// `Some(p)`, B's (each B panel meets up to p A panels, which stream from L2).
    pub mc: Option<usize>,
}

impl std::fmt::Display for Tiles {
    /// "GEMM microkernel 8×32, blocks of kc 256 × nc 1024, B panel in L1 over A blocks of
    /// 512 rows", as `kestrel bench` reports the blocking.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mr, nr, kc, nc) = (self.mr, self.nr, self.kc, self.nc);
        write!(
            f,
            "GEMM microkernel {mr}×{nr}, blocks of kc {kc} × nc {nc}, "
        )?;
        match self.mc {
            Some(mc) => write!(f, "B panel in L1 over A blocks of {} rows", mc * mr),
            None => write!(f, "A panel in L1"),
        }
    }
}

/// The blocking for `isa` on this CPU (see `Tiles` for the reasoning behind the numbers).
pub fn tiles(isa: Isa) -> Tiles {
    // The SIMD ISAs' tiles, blocked for this CPU; the scalar kernel keeps fixed ones.
    #[cfg(target_arch = "x86_64")]
    let simd = |mr: usize, nr: usize, widths: &'static [usize]| {
        let cpu = crate::cpu_info::cpu();
        let (kc, nc) = blocking(cpu);
        Tiles {
            mr,
            nr,
            widths,
            tail: true,
            kc,
            nc,
            mc: a_block(cpu, kc, mr, nr),
        }
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => simd(8, 32, &[32, 16, 8]),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => simd(6, 16, &[16, 8]),
        _ => Tiles {
            mr: 4,
            nr: 8,
            widths: &[8],
            tail: false,
            kc: 256,
            nc: 256,
            mc: None,
        },
    }
}

/// How a microkernel stores its tile: `c = act(acc + (load_c ? c : 0) + bias[r] + residual)`,
/// the bias/residual/act part only when `epilogue` (the last k-block).
pub struct Store {
    /// Top-left of the tile in C; rows `ldc` floats apart.
    pub c: *mut f32,
    /// Floats between rows of C.
    pub ldc: usize,
    /// Add the partial sum of earlier k-blocks already in C.
    pub load_c: bool,
    /// Whether this is the last k-block, which applies bias, residual and activation.
    pub epilogue: bool,
    /// The tile's first row's bias, or null.
    pub bias: *const f32,
    /// The tile's top-left in the residual (same layout as C), or null.
    pub residual: *const f32,
    /// The activation applied last.
    pub act: Activation,
    /// Prefetch A ahead in the k loop (`PREFETCH_A` floats): set where each A panel feeds
    /// only a few tiles, so that its first use streams it from memory (7×7 outputs: 3
    /// column panels). Measured with 128 floats ahead in the same process, weights cycled
    /// through 64 MiB (`COLD=1 layer_speed`), 1 thread: EfficientNet-B0's and
    /// MobileNetV3-Large's 1×1 convs on 7×7 0.89–0.95× (avx2 0.91–0.94×), on 14×14
    /// 0.96–0.98× (avx512); where A feeds many tiles it stays in L1 and the prefetch is a
    /// wasted load (avx2, 56×56: 1.1–1.2×). With 512 ahead, prefetching for every layer
    /// measured level with this rule (ResNet-50, cold).
    pub prefetch_a: bool,
}

impl Store {
    /// The epilogue of one element in scalar code: c[r][j] = v (+ c's partial sum, + bias
    /// and residual and the activation on the last k-block). For tiles cut by C's edge and
    /// the column tails.
    ///
    /// # Safety
    /// (r, j) is inside C, and inside bias and residual when they are non-null.
    #[inline(always)]
    pub(crate) unsafe fn put(&self, r: usize, j: usize, mut v: f32) {
        // SAFETY: the caller's contract.
        unsafe {
            let c = self.c.add(r * self.ldc + j);
            if self.load_c {
                v += *c;
            }
            if self.epilogue {
                if !self.bias.is_null() {
                    v += *self.bias.add(r);
                }
                if !self.residual.is_null() {
                    v += *self.residual.add(r * self.ldc + j);
                }
                v = self.act.apply(v);
            }
            *c = v;
        }
    }
}

/// Floats of A the microkernels prefetch ahead of the k-step they are on: 2 KiB, 64
/// avx512 k-steps (~510 FMA cycles of the 8×32 tile at peak, ~260 of the 8×16: a DRAM
/// latency or more; 128 floats, 16 k-steps, cover an L3 hit at best). On the Xeon model
/// 207, weights cycled through 64 MiB as in a whole-model run (`COLD=1 layer_speed r50`,
/// 1 thread, the distances interleaved in one process): ResNet-50's convs 0.93× the time
/// of 128, its 7×7- and 14×14-output layers 0.75–0.92×, MobileNetV3-Large's and
/// EfficientNet-B0's 1×1 convs 0.92–0.94×, avx2 0.98×; 256 floats 0.97×, 384 0.94×, 1024
/// level with 512. Warm (weights in cache) level, but for ResNet-50's 256@14² F(4×4)
/// Winograd, which swung between runs (0.81× and 1.18×) with either distance.
pub(crate) const PREFETCH_A: usize = 512;

/// Column panels per nc-block up to which the GEMM sets `Store::prefetch_a`.
const STREAM_A_PANELS: usize = 8;

/// `kernel(kc, a, b, ldb, store)`: a: (kc, mr) packed, b: (kc, width) rows `ldb` apart.
///
/// # Safety
/// The CPU supports the kernel's ISA; a, b, c (and bias, residual when non-null) are valid
/// for the full mr × width tile.
pub type Ukernel = unsafe fn(usize, *const f32, *const f32, usize, &Store);

/// The microkernel for `width`-column panels on `isa` (width from `tiles(isa).widths`).
fn ukernel(isa: Isa, width: usize) -> Ukernel {
    match (isa, width) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 32) => ukernel::gemm_f32_avx512_8x32,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 16) => ukernel::gemm_f32_avx512_8x16,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 8) => ukernel::gemm_f32_avx512_8x8,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 16) => ukernel::gemm_f32_avx2_6x16,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 8) => ukernel::gemm_f32_avx2_6x8,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512 | Isa::Avx2, t @ 1..=7) => tail::tail_kernel(isa, t),
        (Isa::Scalar, 8) => ukernel::gemm_f32_scalar_4x8,
        _ => unreachable!("no {isa} microkernel {width} columns wide"),
    }
}

/// Packs B's rows k0..k0+kc, columns start..start+width into dst: (kc, width) row-major,
/// zeros past column n.
pub trait PackB: Sync {
    /// Packs rows k0..k0 + kc, columns start..start + width into `dst`, as the trait says.
    fn pack(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]);

    /// Where the microkernel can read rows k0.. of columns start..start + width in place,
    /// skipping `pack`: (pointer to `B[k0][start]`, row stride). Only for a source whose
    /// every such row holds `width` readable floats (those past column n may be anything:
    /// they only reach the C columns an edge tile drops).
    fn direct(&self, _k0: usize, _start: usize, _width: usize) -> Option<(*const f32, usize)> {
        None
    }
}

/// One GEMM: one group's packed A, a B source, and where C, bias and residual live.
pub struct Gemm<'a, B: PackB> {
    /// The instruction set whose microkernels run it.
    pub isa: Isa,
    /// The tile sizes `a` and `panels` were made for.
    pub tiles: Tiles,
    /// One group of a `PackedA` packed for these tiles: `PackedA::group`.
    pub a: &'a [f32],
    /// Rows of A and C.
    pub m: usize,
    /// The GEMM's depth.
    pub k: usize,
    /// Where B's panels come from.
    pub b: &'a B,
    /// How C's columns split into panels.
    pub panels: &'a Panels,
    /// C: (m, ldc) with the n columns first in each row.
    pub c: *mut f32,
    /// Floats between rows of C.
    pub ldc: usize,
    /// (m) or null.
    pub bias: *const f32,
    /// Same layout as C, or null.
    pub residual: *const f32,
    /// The activation applied last.
    pub act: Activation,
}

impl<B: PackB> Gemm<'_, B> {
    /// Computes the rows of A panels `m_panels` and the columns of B panels `cols`.
    ///
    /// # Safety
    /// The CPU supports `isa`; `c` (and `residual` if non-null) point at m × ldc floats,
    /// `bias` (if non-null) at m floats; no other thread writes this call's part of C
    /// while it runs. `scratch` holds `scratch_per_worker` floats.
    pub unsafe fn run(&self, m_panels: Range<usize>, cols: Range<usize>, scratch: &mut [f32]) {
        let t = &self.tiles;
        let k = self.k;
        let kc_max = kc_block(t, k);
        let kernels: Vec3 = Vec3::new(self.isa, t);
        // Loop 5: split this worker's B panels into nc-column blocks.
        let mut p = cols.start;
        while p < cols.end {
            let (block_start, _) = self.panels.get(p);
            let mut q = p;
            while q < cols.end {
                let (s, w) = self.panels.get(q);
                if q > p && s + w - block_start > t.nc {
                    break;
                }
                q += 1;
            }
            // Loop 4: split k into kc-blocks; pack a kc × nc block of B once (the im2col
            // gather for conv), reuse it for every A panel.
            let mut k0 = 0;
            while k0 < k {
                let kc = kc_max.min(k - k0);
                for pp in p..q {
                    let (s, w) = self.panels.get(pp);
                    if self.b.direct(k0, s, w).is_none() {
                        let dst = &mut scratch[(s - block_start) * kc..][..kc * w];
                        self.b.pack(k0, kc, s, w, dst);
                    }
                }
                let prefetch_a = q - p <= STREAM_A_PANELS;
                let b_kc = |pp: usize| {
                    let (s, w) = self.panels.get(pp);
                    self.b
                        .direct(k0, s, w)
                        .unwrap_or_else(|| (scratch[(s - block_start) * kc..].as_ptr(), w))
                };
                let tile = |mp: usize, pp: usize, b: (*const f32, usize)| {
                    // SAFETY: the caller's contract; b is panel pp's kc-block.
                    unsafe { self.tile(&kernels, mp, pp, k0..k0 + kc, b, prefetch_a) }
                };
                match t.mc {
                    // Loops 3 and 2: A panels; the mr × kc micro-panel stays in L1 while it
                    // meets every B panel of the L2-resident block; loop 1 is the microkernel.
                    None => {
                        for mp in m_panels.clone() {
                            for pp in p..q {
                                tile(mp, pp, b_kc(pp));
                            }
                        }
                    }
                    // Loops 3, 2 and 1: blocks of `mc` A panels (in L2); each B micro-panel
                    // stays in L1 while that block's A panels stream past it.
                    Some(mc) => {
                        let mut m0 = m_panels.start;
                        while m0 < m_panels.end {
                            let m1 = m_panels.end.min(m0 + mc.max(1));
                            for pp in p..q {
                                let b = b_kc(pp);
                                for mp in m0..m1 {
                                    tile(mp, pp, b);
                                }
                            }
                            m0 = m1;
                        }
                    }
                }
                k0 += kc;
            }
            p = q;
        }
    }

    /// One microkernel call: A panel `mp` times B panel `pp` (`b`, rows `ldb` apart) over
    /// the k-block `ks`, into C; through the edge path where C's edge cuts the tile.
    ///
    /// # Safety
    /// As for `run`; `b` holds the k-block's rows of the panel's width.
    #[inline(always)]
    unsafe fn tile(
        &self,
        kernels: &Vec3,
        mp: usize,
        pp: usize,
        ks: Range<usize>,
        (b, ldb): (*const f32, usize),
        prefetch_a: bool,
    ) {
        let (mr, kc) = (self.tiles.mr, ks.len());
        // A's kc-block at ks.start holds every panel, each kc × mr.
        let a = self.a[(ks.start * self.m.div_ceil(mr) + mp * kc) * mr..].as_ptr();
        let (load_c, epilogue) = (ks.start > 0, ks.end == self.k);
        let rows = mr.min(self.m - mp * mr);
        let (s, w) = self.panels.get(pp);
        let off = mp * mr * self.ldc + s;
        let store = Store {
            // SAFETY (all three): the caller guarantees C, residual and bias cover m × ldc
            // / m floats; row mp·mr and column s are inside.
            c: unsafe { self.c.add(off) },
            ldc: self.ldc,
            load_c,
            epilogue,
            bias: if self.bias.is_null() {
                self.bias
            } else {
                unsafe { self.bias.add(mp * mr) }
            },
            residual: if self.residual.is_null() {
                self.residual
            } else {
                unsafe { self.residual.add(off) }
            },
            act: self.act,
            prefetch_a,
        };
        let cols_valid = w.min(self.panels.n - s);
        let kern = kernels.get(w);
        if rows == mr && cols_valid == w {
            // SAFETY: a full tile: mr rows and w columns of C exist here; a holds kc × mr
            // floats, b kc rows of w, ldb apart; the ISA was checked.
            unsafe { kern(kc, a, b, ldb, &store) };
        } else {
            // SAFETY: as above, but only rows × cols_valid of C exist: the edge path
            // stores into a local tile first.
            unsafe { edge_tile(kern, kc, a, b, ldb, w, &store, rows, cols_valid) };
        }
    }
}

/// Splits `segments` GEMMs of `per_seg` B panels each into at most `threads` contiguous
/// ranges of (segment, panel) units, one per worker, and calls `f(worker, segment,
/// panels)` for every piece: a worker's range may end one segment and start the next.
/// Every unit runs once, and worker indices are distinct, so each may own a scratch part.
pub fn for_each_panel_range(
    threads: usize,
    segments: usize,
    per_seg: usize,
    f: impl Fn(usize, usize, Range<usize>) + Sync + Send,
) {
    let total = segments * per_seg;
    let workers = threads.max(1).min(total);
    crate::parallel::for_each_task(threads, workers, |wk| {
        let (lo, hi) = (total * wk / workers, total * (wk + 1) / workers);
        let mut u = lo;
        while u < hi {
            let (seg, first) = (u / per_seg, u % per_seg);
            let last = per_seg.min(first + hi - u);
            f(wk, seg, first..last);
            u += last - first;
        }
    });
}

/// The microkernels for an ISA's widths and column tails, looked up without allocation.
struct Vec3 {
    widths: &'static [usize],
    kernels: [Option<Ukernel>; 3],
    /// By width, below the narrowest: the column tails, where the ISA has them.
    tails: [Option<Ukernel>; 8],
}

impl Vec3 {
    fn new(isa: Isa, t: &Tiles) -> Vec3 {
        let mut kernels = [None; 3];
        for (slot, &w) in kernels.iter_mut().zip(t.widths) {
            *slot = Some(ukernel(isa, w));
        }
        let narrowest = *t.widths.last().unwrap();
        let tails =
            std::array::from_fn(|w| (t.tail && w >= 1 && w < narrowest).then(|| ukernel(isa, w)));
        Vec3 {
            widths: t.widths,
            kernels,
            tails,
        }
    }

    fn get(&self, width: usize) -> Ukernel {
        match self.widths.iter().position(|&w| w == width) {
            Some(i) => self.kernels[i].unwrap(),
            None => self.tails[width].unwrap(),
        }
    }
}

/// The largest tile any ISA uses (avx512 8 × 32).
const TILE_MAX: usize = 8 * 32;

/// A tile cut by the edge of C: the microkernel writes a zeroed local tile, then the valid
/// `rows × cols` part is merged into C with the epilogue in scalar code.
///
/// # Safety
/// As for `Ukernel`, but C, bias and residual need only cover rows × cols.
#[allow(clippy::too_many_arguments)]
unsafe fn edge_tile(
    kern: Ukernel,
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    width: usize,
    s: &Store,
    rows: usize,
    cols: usize,
) {
    // tmp: (mr, width)
    let mut tmp = [0.0f32; TILE_MAX];
    let local = Store {
        c: tmp.as_mut_ptr(),
        ldc: width,
        load_c: false,
        epilogue: false,
        bias: std::ptr::null(),
        residual: std::ptr::null(),
        act: Activation::None,
        prefetch_a: s.prefetch_a,
    };
    // SAFETY: tmp holds mr × width ≤ TILE_MAX floats; a and b are valid per the caller.
    unsafe { kern(kc, a, b, ldb, &local) };
    for r in 0..rows {
        for j in 0..cols {
            // SAFETY: r < rows and j < cols are inside C, bias and residual (caller).
            unsafe { s.put(r, j, tmp[r * width + j]) };
        }
    }
}

#[cfg(test)]
mod tests;
