//! Which implicit GEMM a conv runs on the GPU: the tile sizes, how threads share a tile,
//! the pipeline depth and split-K, by a rule over the layer's shape (no autotuning yet:
//! the rule is to be checked against H100 timings). `mod.rs` builds the launch.

use crate::conv2d::Conv2dParams;
use crate::precision::Precision;

/// K slab per pipeline stage. Stages in flight: `Gemm::stages`, within the 48 KiB of
/// static shared memory a block may have (`Gemm::shared_bytes`).
pub(crate) const BK: usize = 16;
pub(crate) const SHARED_LIMIT: usize = 48 * 1024;

/// How the threads of a block share its tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// fp32 FMA: each thread a `tm`×`tn` register block.
    Simt {
        /// Rows of the register block.
        tm: usize,
        /// Columns of the register block.
        tn: usize,
    },
    /// Tensor cores: a `m`×`n` grid of warps, each a piece of whole 16×8 mma tiles.
    Warps {
        /// Warps along the tile's rows.
        m: usize,
        /// Warps along the tile's columns.
        n: usize,
    },
}

/// One implicit-GEMM configuration: the arithmetic, a block's `bm`×`bn` tile of the
/// output, how its threads share it, how many blocks split each tile's K, whether its
/// columns run over 2×2 max-pool windows (the epilogue then also pools), and whether B is
/// x times a per-(image, input channel) scale (`in_scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    /// fp32 on the CUDA cores, or tf32 / fp16 on the tensor cores.
    pub precision: Precision,
    /// Tile rows (output channels) per block.
    pub bm: usize,
    /// Tile columns (output pixels) per block.
    pub bn: usize,
    /// How the block's threads share the tile.
    pub threads: Threads,
    /// K slabs in flight in shared memory (cp.async pipeline depth).
    pub stages: usize,
    /// Blocks that split each tile's K and sum through a workspace (1: no split).
    pub splits: usize,
    /// Whether the epilogue also takes the 2×2 stride-2 max pool of the output.
    pub max_pool2: bool,
    /// Whether B is x · in_scale, one scale per (image, input channel) read from an extra
    /// input (squeeze-excite's gate; `Conv2dParams::in_scale_applies` convs only).
    pub in_scale: bool,
}

impl Gemm {
    /// 128×128: fp32 256 threads of 8×8 (64 FMAs per 16 shared loads); tensor cores 2×4
    /// warps of 64×32 (16 mma per 24 fragment loads). Two stages: three would need
    /// 52 KiB in tf32, past the static limit. For grids that fill the GPU anyway
    /// (batch 32), where reuse per load matters more than blocks.
    pub fn huge(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 8, tn: 8 },
            _ => Threads::Warps { m: 2, n: 4 },
        };
        Gemm {
            bm: 128,
            bn: 128,
            threads,
            stages: 2,
            ..Gemm::large(precision)
        }
    }

    /// 64×64: fp32 256 threads of 4×4 (16 FMAs per 8 shared loads); tensor cores 2×2
    /// warps of 32×32 (8 mma per 12 fragment loads).
    pub fn large(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 4, tn: 4 },
            _ => Threads::Warps { m: 2, n: 2 },
        };
        Gemm {
            precision,
            bm: 64,
            bn: 64,
            threads,
            stages: 3,
            splits: 1,
            max_pool2: false,
            in_scale: false,
        }
    }

    /// 32×32: a quarter of the work per block, four times the blocks.
    pub fn small(precision: Precision) -> Gemm {
        let threads = match precision {
            Precision::Fp32 => Threads::Simt { tm: 2, tn: 2 },
            _ => Threads::Warps { m: 2, n: 2 },
        };
        Gemm {
            bm: 32,
            bn: 32,
            threads,
            ..Gemm::large(precision)
        }
    }

    /// The same configuration, with K split over `splits` blocks per tile.
    pub fn with_splits(self, splits: usize) -> Gemm {
        Gemm { splits, ..self }
    }

    /// The same configuration, with the 2×2 stride-2 max pool fused into the epilogue.
    pub fn with_max_pool2(self) -> Gemm {
        Gemm {
            max_pool2: true,
            ..self
        }
    }

    /// The same configuration, reading x times a per-(image, input channel) scale.
    pub fn with_in_scale(self) -> Gemm {
        Gemm {
            in_scale: true,
            ..self
        }
    }

    /// GEMM columns: output pixels, or with the pool four per window it keeps.
    pub(crate) fn columns(&self, p: &Conv2dParams) -> usize {
        let [n, _, oh, ow] = p.output_shape();
        match self.max_pool2 {
            true => n * (oh / 2) * (ow / 2) * 4,
            false => n * oh * ow,
        }
    }

    /// Static shared memory of one block, as igemm.cu declares it: `stages` slabs of A
    /// (BK rows, or BK/2 rows of fp16 pairs, of bm + 8 padded floats on tensor cores) and B
    /// (BK rows of bn + 8 or + 4 floats), plus the split-K flag.
    pub fn shared_bytes(&self) -> usize {
        let (a_rows, a_pad, b_pad) = match self.precision {
            Precision::Fp32 => (BK, 0, 0),
            Precision::Tf32 => (BK, 8, 8),
            Precision::Fp16 => (BK / 2, 8, 4),
        };
        let stage = a_rows * (self.bm + a_pad) + BK * (self.bn + b_pad);
        self.stages * stage * size_of::<f32>() + size_of::<i32>() * (self.splits > 1) as usize
    }

    /// Threads per block.
    pub fn threads(&self) -> usize {
        match self.threads {
            Threads::Simt { tm, tn } => (self.bm / tm) * (self.bn / tn),
            Threads::Warps { m, n } => 32 * m * n,
        }
    }

    /// Blocks of one K range: output tiles over every group.
    pub(crate) fn tiles(&self, p: &Conv2dParams) -> usize {
        (p.c_out / p.groups).div_ceil(self.bm) * self.columns(p).div_ceil(self.bn) * p.groups
    }

    /// The `MATH` define of igemm.cu.
    pub(crate) fn math(&self) -> usize {
        match self.precision {
            Precision::Fp32 => 0,
            Precision::Tf32 => 1,
            Precision::Fp16 => 2,
        }
    }
}

/// Blocks a GPU should get to keep its SMs busy: one per SM of the H100 (132).
const ENOUGH_BLOCKS: usize = 132;

/// Split-K stops where a block would get fewer than this many K slabs (64 taps): below
/// that the pipeline never fills and the partials' round trip costs more than it saves.
const MIN_SLABS_PER_SPLIT: usize = 4;
const MAX_SPLITS: usize = 8;

/// The 128×128 tile where even it gives every SM two blocks (batch 32), else 64×64,
/// unless its grid would have fewer blocks than the H100 has SMs: then 32×32, which has
/// four times as many, and if even that leaves SMs idle, K split over enough blocks to
/// fill them. ResNet-50 at batch 1: layer1's 3×3 conv (64→64 on 56×56) gets 1 × 49
/// blocks of 64×64, 2 × 98 of 32×32; layer4's (512→512 on 7×7, K = 4608) gets 16 × 2
/// of 32×32, split 5 ways: 160 blocks of 57 or 58 slabs each.
pub fn gemm_config(p: &Conv2dParams, precision: Precision) -> Gemm {
    choose_gemm(p, precision, false)
}

/// [`gemm_config`]'s rule, for a GEMM whose columns run over 2×2 max-pool windows when
/// `max_pool2` (the grid then counts those columns).
pub(crate) fn choose_gemm(p: &Conv2dParams, precision: Precision, max_pool2: bool) -> Gemm {
    let [huge, large, small] = [Gemm::huge, Gemm::large, Gemm::small].map(|size| Gemm {
        max_pool2,
        ..size(precision)
    });
    // The 128×128 tile only where even it gives every SM two blocks or more.
    if huge.tiles(p) >= 2 * ENOUGH_BLOCKS {
        return huge;
    }
    if large.tiles(p) >= ENOUGH_BLOCKS {
        return large;
    }
    let tiles = small.tiles(p);
    let slabs = padded_km(p, &small).0 / BK;
    let splits = ENOUGH_BLOCKS
        .div_ceil(tiles)
        .min(slabs / MIN_SLABS_PER_SPLIT)
        .clamp(1, MAX_SPLITS);
    small.with_splits(splits)
}

/// K = (c_in/groups)·kh·kw and M = c_out/groups, rounded up to whole K slabs and
/// `bm` tiles.
pub(crate) fn padded_km(p: &Conv2dParams, gemm: &Gemm) -> (usize, usize) {
    let [c_out, cg_in, kh, kw] = p.weight_shape();
    (
        (cg_in * kh * kw).next_multiple_of(BK),
        (c_out / p.groups).next_multiple_of(gemm.bm),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stride 1, pad k / 2: `shapes::conv` with stride 1.
    fn params(c_in: usize, c_out: usize, hw: usize, k: usize, groups: usize) -> Conv2dParams {
        crate::conv2d::shapes::conv(c_in, c_out, hw, k, 1, groups)
    }

    #[test]
    fn small_grids_get_the_small_tile_then_split_k() {
        for precision in Precision::ALL {
            let (large, small) = (Gemm::large(precision), Gemm::small(precision));
            // 64→256 1×1 on 56×56 at batch 1: 4 × 49 = 196 blocks of 64×64.
            assert_eq!(gemm_config(&params(64, 256, 56, 1, 1), precision), large);
            // Groups multiply the grid: 32 groups of 4→4 on 28×28 give 32 × 13 blocks.
            assert_eq!(gemm_config(&params(128, 128, 28, 3, 32), precision), large);
            // 64→64 3×3 on 28×28: 1 × 13 of 64×64, 2 × 25 = 50 of 32×32, K = 576 is 36
            // slabs: split 3 ways, 150 blocks.
            assert_eq!(
                gemm_config(&params(64, 64, 28, 3, 1), precision),
                small.with_splits(3)
            );
            // 512→512 3×3 on 7×7: 16 × 2 blocks of 32×32, K = 4608: 5 ways, 160 blocks.
            assert_eq!(
                gemm_config(&params(512, 512, 7, 3, 1), precision),
                small.with_splits(5)
            );
            // 3→8 3×3 on 5×5: one block, K = 27 (2 slabs): nothing to split.
            assert_eq!(gemm_config(&params(3, 8, 5, 3, 1), precision), small);
            // Batch 32 of 64→256 1×1 on 56×56: 2 × 784 blocks of 128×128.
            let batched = Conv2dParams {
                n: 32,
                ..params(64, 256, 56, 1, 1)
            };
            assert_eq!(gemm_config(&batched, precision), Gemm::huge(precision));
            assert_eq!(large.threads(), [256, 128, 128][large.math()]);
            assert_eq!(small.threads(), [256, 128, 128][small.math()]);
        }
    }

    #[test]
    fn every_configuration_fits_static_shared_memory() {
        for precision in Precision::ALL {
            for size in [Gemm::huge, Gemm::large, Gemm::small] {
                let gemm = size(precision).with_splits(2);
                assert!(gemm.shared_bytes() <= SHARED_LIMIT, "{gemm:?}");
            }
        }
        // tf32 128×128 at three stages would not: why `huge` has two.
        let three = Gemm {
            stages: 3,
            ..Gemm::huge(Precision::Tf32)
        };
        assert!(three.shared_bytes() > SHARED_LIMIT);
        assert_eq!(
            Gemm::large(Precision::Fp32).shared_bytes(),
            3 * 2 * 16 * 64 * 4
        );
    }
}
