//! conv2d on the CPU. One selector, `ConvAlgorithm::choose`, picks each conv's kernel from
//! its shape, and `CpuConv` holds the kernel it prepared:
//! - `gemm.rs` (`Conv2dCpu`): the packed GEMM, any conv; im2col folded into its packing
//!   (`im2col.rs`: stride-2 convs from phase planes), 1×1 stride-1 convs read in place;
//! - `winograd/`: F(4×4, 3×3) and F(2×2, 3×3), 3×3 stride-1 dense convs;
//! - `direct.rs`: no packing, for first layers and narrow dense convs on wide rows;
//! - `depthwise/`: depthwise convs with multiplier 1 (three paths of its own);
//! - `gemv.rs`: 1×1 convs of 1×1 planes (squeeze-excite's) as a linear layer.
//!
//! The engine (engine/exec/simd.rs), the benches and the examples build `CpuConv::new`;
//! tests aimed at one kernel force it with `CpuConv::with_algorithm` or build it directly.

pub mod depthwise;
pub mod direct;
pub mod gemm;
pub mod gemv;
mod im2col;
pub mod winograd;

#[cfg(test)]
mod tests;

use self::depthwise::DepthwiseCpu;
use self::direct::DirectCpu;
use self::gemm::Conv2dCpu;
use self::gemv::GemvCpu;
use self::winograd::{Tile, Winograd};
use crate::conv2d::{Conv2dParams, ExactWeights};
use crate::{Activation, Isa};

/// The CPU's conv algorithms: which kernel computes a conv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// `Conv2dCpu`, the packed GEMM: im2col, or x in place for 1×1 stride-1 convs. Any
    /// conv.
    Gemm,
    /// `Winograd` with this output tile: 3×3, stride 1, dilation 1, one group.
    Winograd(Tile),
    /// `DirectCpu`: stride 1 or 2, dilation 1, one group.
    Direct,
    /// `DepthwiseCpu`: depthwise with multiplier 1; takes no input scale.
    Depthwise,
    /// `GemvCpu`: 1×1 convs of 1×1 planes, no padding, one group.
    Gemv,
}

impl ConvAlgorithm {
    /// The algorithm for `p`, by the measured rules below; `in_scale`: whether the conv
    /// will be run with an input scale (`CpuConv::run_scaled`). `p` must be valid
    /// (`Conv2dParams::validate`). The first rule that takes `p` wins: depthwise, Winograd,
    /// direct, GEMV, else the GEMM. No rule reads the ISA.
    pub fn choose(p: &Conv2dParams, in_scale: bool) -> ConvAlgorithm {
        let (oh, ow) = p.output_hw();

        // Depthwise convs read one input channel per output: a GEMM would be all packing.
        // Only the GEMM, direct and GEMV kernels take an input scale, and a scaled conv can
        // be "depthwise" (a 1-channel 1×1 one): it goes to the rules below.
        if !in_scale && depthwise::applies(p) {
            return ConvAlgorithm::Depthwise;
        }

        // Winograd. Measured at 1 thread on this Zen 4, avx512 (`ops_speed -- conv`,
        // medians of 7 alternated runs, direct-conv GFLOP/s cold / warm): F(4×4) 64@56²
        // 172 / 166, 128@28² 175 / 200, 256@14² 160 / 188, against im2col-gemm's ~80–90
        // (256@14²: 77). F(2×2) on 256@14² only ~118: its 49 tiles make a GEMM 1.4×
        // F(4×4)'s. At 7×7 F(4×4) has only 4 tiles: the 36 U matrices (36 × 512 × 512
        // floats = 38 MB) stream from memory for a GEMM 4 columns wide, ~26 GFLOP/s. F(2×2)
        // has 16 tiles and a 16 MB U: 512@7² 67 / 71 vs im2col 59 / 60 at 1 thread, 119 /
        // 142 vs 99 / 109 at 2. Its GEMM streams 1.8× im2col's weight bytes for 2.25× fewer
        // FLOPs, so it stays memory-bound and the margin is thin; below 16 tiles (a 7×7
        // output) the trade is unmeasured and im2col keeps it. Channels below 32 are
        // unmeasured too (ResNet's smallest is 64).
        let tiles = |m: usize| oh.div_ceil(m) * ow.div_ceil(m);
        if winograd::applies(p) && p.c_in >= 32 && p.c_out >= 32 {
            if tiles(4) >= 16 {
                return ConvAlgorithm::Winograd(Tile::F4x4);
            }
            if tiles(2) >= 16 {
                return ConvAlgorithm::Winograd(Tile::F2x2);
            }
        }

        // Direct: first layers (c_in ≤ 4), and the other stride-1/2 dense convs Winograd
        // did not take above with at most 32 input channels on rows that fill its 16-lane
        // vectors (ow a multiple of 16, or at least 128 wide).
        //
        // First layers: on a Zen 4, avx512, 1 thread, against the phase-plane im2col GEMM
        // (`ops_speed -- conv`, 3 alternated runs) it won on small planes (CIFAR's 3→32 3×3
        // on 32×32 23 vs 27 µs, 3→64 3×3 on 64×64 170–178 vs 178–186 µs) but not on 224²
        // (MobileNetV2's 3→32 3×3 s2 400 vs 350 µs, ResNet's 7×7 s2 stem 2.7–2.9 vs 2.6–2.8
        // ms), so it used to stop at 64×64 outputs. On the Xeon model 207 it wins at 224²
        // too, in the same process in turns (`layer_speed`, 1 and 2 threads): MobileNetV3's
        // 3→16 stem 0.78–0.80×, EfficientNet's 3→32 0.81–0.95× (avx2 0.76×), ResNet's 7×7
        // 0.87–0.95× (avx2 0.92–0.95×).
        //
        // The rest, on the Xeon model 207, avx512, 1 thread, the two kernels' binaries
        // alternated (`layer_speed yolo`, the fastest of 2 runs of 9 rounds each), direct /
        // im2col: YOLO's 16→32 3×3 s2 on 320² 0.57–0.68×, 16→16 3×3 on 160² 0.35–0.42×,
        // 32→64 3×3 s2 on 160² 0.84–0.96×; but 64→128 s2 on 80² (40-wide output rows: 48
        // lanes for 40 pixels) 1.07–1.23×, 64→64 s2 on 80² 1.03–1.05×, 128→256 s2 on 40²
        // (20-wide) 1.41–1.51×. With wider inputs the GEMM's packing is a smaller share of
        // its FMAs, and its 32-column panels run across rows where the direct kernel's
        // chunks stop at each row's end.
        let fills_lanes = ow % 16 == 0 || ow >= 128;
        let narrow_on_wide_rows = p.c_in <= 32 && p.kh * p.kw > 1 && fills_lanes;
        if direct::applies(p) && (p.c_in <= 4 || narrow_on_wide_rows) {
            return ConvAlgorithm::Direct;
        }

        // GEMV: 1×1 convs of 1×1 planes (squeeze-excite's), where the GEMM ran an
        // 8-column tile for one column. MobileNetV3-Large's squeeze-excite convs in a
        // whole-model run (weights cold), avx512, 1 thread, alternated runs: 0.6× the
        // GEMM's time (960→240 190 → 117 µs).
        if gemv::applies(p) {
            return ConvAlgorithm::Gemv;
        }
        ConvAlgorithm::Gemm
    }

    /// Whether this algorithm's kernel can compute `p` at all, fast or not.
    pub fn applies(self, p: &Conv2dParams) -> bool {
        match self {
            ConvAlgorithm::Gemm => true,
            ConvAlgorithm::Winograd(_) => winograd::applies(p),
            ConvAlgorithm::Direct => direct::applies(p),
            ConvAlgorithm::Depthwise => depthwise::applies(p),
            ConvAlgorithm::Gemv => gemv::applies(p),
        }
    }
}

/// A conv2d prepared for the CPU: the kernel `ConvAlgorithm::choose` picks (or the one
/// `with_algorithm` forces), its weights packed for the ISA once, when the session is
/// built.
pub enum CpuConv {
    /// The packed GEMM.
    Gemm(Conv2dCpu),
    /// Winograd.
    Winograd(Winograd),
    /// The direct kernel.
    Direct(DirectCpu),
    /// The depthwise kernel.
    Depthwise(DepthwiseCpu),
    /// The GEMV.
    Gemv(GemvCpu),
}

impl CpuConv {
    /// `p` prepared for `isa` by the kernel `ConvAlgorithm::choose(p, in_scale)` picks.
    /// weight: (c_out, c_in/groups, kh, kw)  bias: (c_out). Panics on invalid params, wrong
    /// lengths or an ISA this CPU lacks.
    pub fn new(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        in_scale: bool,
    ) -> CpuConv {
        CpuConv::with_exact(p, weight, bias, isa, in_scale, None)
    }

    /// As `new`, where Winograd's exact path (for images holding a NaN or an infinity)
    /// reads `exact`, which must be `weight` (scaled per output channel if it says so),
    /// instead of a copy of `weight`; None: a copy. The other kernels ignore it.
    pub fn with_exact(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        in_scale: bool,
        exact: Option<ExactWeights>,
    ) -> CpuConv {
        p.validate().expect("CpuConv: invalid params");
        let alg = ConvAlgorithm::choose(p, in_scale);
        CpuConv::build(p, weight, bias, isa, alg, exact).expect("choose picks a kernel for p")
    }

    /// As `new`, with `alg` whatever `choose` would pick (tests and benches), or None where
    /// its kernel cannot compute `p` (`ConvAlgorithm::applies`).
    pub fn with_algorithm(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        alg: ConvAlgorithm,
    ) -> Option<CpuConv> {
        p.validate().expect("CpuConv: invalid params");
        CpuConv::build(p, weight, bias, isa, alg, None)
    }

    /// `alg`'s kernel for `p` (valid), Winograd's exact path reading `exact` (a copy of
    /// `weight` when None), or None where `alg` cannot compute `p`.
    fn build(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        alg: ConvAlgorithm,
        exact: Option<ExactWeights>,
    ) -> Option<CpuConv> {
        if !alg.applies(p) {
            return None;
        }
        Some(match alg {
            ConvAlgorithm::Gemm => CpuConv::Gemm(Conv2dCpu::new(p, weight, bias, isa)),
            ConvAlgorithm::Winograd(tile) => {
                let exact = exact.unwrap_or_else(|| ExactWeights::copy_of(weight));
                CpuConv::Winograd(Winograd::with_exact(p, weight, bias, isa, tile, exact))
            }
            ConvAlgorithm::Direct => CpuConv::Direct(DirectCpu::new(p, weight, bias, isa)),
            ConvAlgorithm::Depthwise => {
                CpuConv::Depthwise(DepthwiseCpu::new(p, weight, bias, isa)?)
            }
            ConvAlgorithm::Gemv => CpuConv::Gemv(GemvCpu::new(p, weight, bias, isa)),
        })
    }

    /// The algorithm that computes this conv.
    pub fn algorithm(&self) -> ConvAlgorithm {
        match self {
            CpuConv::Gemm(_) => ConvAlgorithm::Gemm,
            CpuConv::Winograd(wg) => ConvAlgorithm::Winograd(wg.tile()),
            CpuConv::Direct(_) => ConvAlgorithm::Direct,
            CpuConv::Depthwise(_) => ConvAlgorithm::Depthwise,
            CpuConv::Gemv(_) => ConvAlgorithm::Gemv,
        }
    }

    /// Short name of the algorithm, for tables: "gemm1x1" (x read in place),
    /// "im2col-gemm", "winograd4x4", "winograd2x2", "direct", "depthwise" or "gemv".
    pub fn name(&self) -> &'static str {
        match self {
            CpuConv::Gemm(c) => c.name(),
            CpuConv::Winograd(wg) => match wg.tile() {
                Tile::F4x4 => "winograd4x4",
                Tile::F2x2 => "winograd2x2",
            },
            CpuConv::Direct(_) => "direct",
            CpuConv::Depthwise(_) => "depthwise",
            CpuConv::Gemv(_) => "gemv",
        }
    }

    /// Floats of scratch `run` and `run_scaled` need with `threads` threads.
    pub fn scratch_len(&self, threads: usize) -> usize {
        match self {
            CpuConv::Gemm(c) => c.scratch_len(threads),
            CpuConv::Winograd(wg) => wg.scratch_len(threads),
            CpuConv::Direct(d) => d.scratch_len(threads),
            CpuConv::Depthwise(dw) => dw.scratch_len(threads),
            CpuConv::Gemv(g) => g.scratch_len(threads),
        }
    }

    /// y = act(conv(x) + bias + residual), residual (if any) has y's shape; `scratch` holds
    /// at least `scratch_len(threads)` floats. Allocates nothing, locks nothing.
    pub fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        self.run_scaled(x, None, residual, act, y, scratch, threads)
    }

    /// y = act(conv(x · in_scale) + bias + residual), in_scale: (n, c_in), one scale per
    /// image and input channel, multiplied in as x is read (a separate `x · in_scale` would
    /// write and read the whole of x once more); `run` when None. Panics when given one
    /// for a conv `Conv2dParams::in_scale_applies` refuses, or for a depthwise kernel
    /// (prepare it with `in_scale` set). Allocates nothing, locks nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn run_scaled(
        &self,
        x: &[f32],
        in_scale: Option<&[f32]>,
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        match self {
            CpuConv::Gemm(c) => c.run_scaled(x, in_scale, residual, act, y, scratch, threads),
            CpuConv::Direct(d) => d.run_scaled(x, in_scale, residual, act, y, scratch, threads),
            CpuConv::Gemv(g) => g.run_scaled(x, in_scale, residual, act, y, scratch, threads),
            CpuConv::Winograd(wg) => {
                // Winograd takes 3×3 convs, which `in_scale_applies` refuses.
                assert!(in_scale.is_none(), "CpuConv: in_scale on a 3×3 conv");
                wg.run(x, residual, act, y, scratch, threads)
            }
            CpuConv::Depthwise(dw) => {
                assert!(
                    in_scale.is_none(),
                    "CpuConv: in_scale on the depthwise kernel"
                );
                dw.run(x, residual, act, y, scratch, threads)
            }
        }
    }
}
