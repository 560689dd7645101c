//! conv2d on the CPU as a packed GEMM per (image, group):
//! `C (m × n) = A (m × k) · B (k × n)` with m = c_out/groups, k = c_in/groups·kh·kw and
//! n = oh·ow. A is the weights, packed once in `new`; B is the im2col matrix, never built
//! whole: `Im2col::pack` gathers one kc × nr panel at a time straight from x into the
//! GEMM's packing buffer; for 1×1 stride-1 convs B is x itself and the microkernel reads
//! it in place. C is y itself.
//!
//! With an `in_scale` (`run_scaled`: squeeze-excite's gate, for the convs
//! `Conv2dParams::in_scale_applies` names) the pointwise B is packed, each row times its
//! channel's scale, instead of read in place; the direct kernel scales the input rows it
//! stages, and the GEMV a copy of x in scratch.
//!
//! 3×3 stride-1 dense convs with enough tiles go to Winograd instead (`winograd/`):
//! F(4×4, 3×3), 4× fewer GEMM FLOPs for a ~1e-5 relative error instead of ~1e-6, or on
//! small planes F(2×2, 3×3), 2.25× fewer at ~1e-6.

use super::direct::{self, DirectCpu};
use super::im2col::{Im2col, Phases};
use super::winograd::{self, Tile, Winograd};
use crate::conv2d::Conv2dParams;
use crate::gemm::{self, Gemm, PackedA, Panels, Tiles};
use crate::linear::{cpu::LinearCpu, LinearParams};
use crate::parallel::SharedMut;
use crate::{Activation, Isa};

/// A conv2d prepared for the CPU: weights packed once for `isa` when the session is built.
pub struct Conv2dCpu {
    p: Conv2dParams,
    isa: Isa,
    tiles: Tiles,
    /// Per group: (m, k) packed into mr-row panels.
    a: PackedA,
    /// (c_out)
    bias: Option<Vec<f32>>,
    /// The pixel panels of one image's n = oh·ow columns.
    panels: Panels,
    /// Set for stride-2 convs: B is packed from x's phase planes (see `im2col.rs`).
    phases: Option<Phases>,
    /// Set when Winograd computes this conv instead (then `a` is left empty). Boxed: it
    /// is several times the size of the rest.
    winograd: Option<Box<Winograd>>,
    /// Set when the direct kernel computes this conv instead (then `a` is left empty).
    direct: Option<Box<DirectCpu>>,
    /// Set for a 1×1 conv of 1×1 planes (squeeze-excite's), a GEMV: `LinearCpu` streams
    /// the weights once for all outputs, where the GEMM ran an 8-column tile for one column
    /// (then `a` is left empty).
    linear: Option<Box<LinearCpu>>,
}

/// Whether `new` computes `p` as a linear layer: 1×1 kernel, 1×1 input planes, no
/// padding, one group. MobileNetV3-Large's squeeze-excite convs in a whole-model run
/// (weights cold), avx512, 1 thread, alternated runs: 0.6× the GEMM's time (960→240
/// 190 → 117 µs).
fn use_linear(p: &Conv2dParams) -> bool {
    [p.kh, p.kw, p.h, p.w, p.groups] == [1; 5] && p.pad == [0, 0]
}

/// Which Winograd tile `new` picks, if any. Measured at 1 thread on this Zen 4, avx512
/// (`ops_speed -- conv`, medians of 7 alternated runs, direct-conv GFLOP/s cold / warm):
/// F(4×4) 64@56² 172 / 166, 128@28² 175 / 200, 256@14² 160 / 188, against im2col-gemm's
/// ~80–90 (256@14²: 77). F(2×2) on 256@14² only ~118: its 49 tiles make a GEMM 1.4×
/// F(4×4)'s. At 7×7 F(4×4) has only 4 tiles: the 36 U matrices (36 × 512 × 512 floats = 38 MB)
/// stream from memory for a GEMM 4 columns wide, ~26 GFLOP/s. F(2×2) has 16 tiles and a
/// 16 MB U: 512@7² 67 / 71 vs im2col 59 / 60 at 1 thread, 119 / 142 vs 99 / 109 at 2.
/// Its GEMM streams 1.8× im2col's weight bytes for 2.25× fewer FLOPs, so it stays
/// memory-bound and the margin is thin; below 16 tiles (a 7×7 output) the trade is
/// unmeasured and im2col keeps it. Channels below 32 are unmeasured too (ResNet's smallest
/// is 64).
fn use_winograd(p: &Conv2dParams) -> Option<Tile> {
    let (oh, ow) = p.output_hw();
    let tiles = |m: usize| oh.div_ceil(m) * ow.div_ceil(m);
    if !winograd::applies(p) || p.c_in < 32 || p.c_out < 32 {
        None
    } else if tiles(4) >= 16 {
        Some(Tile::F4x4)
    } else if tiles(2) >= 16 {
        Some(Tile::F2x2)
    } else {
        None
    }
}

/// Whether `new` picks the direct kernel (`direct.rs`): first layers (c_in ≤ 4), and the
/// other stride-1/2 dense convs Winograd does not take with at most 32 input channels on
/// rows that fill its 16-lane vectors (ow a multiple of 16, or at least 128 wide).
///
/// First layers: on a Zen 4, avx512, 1 thread, against the phase-plane im2col GEMM
/// (`ops_speed -- conv`, 3 alternated runs) it won on small planes (CIFAR's 3→32 3×3 on
/// 32×32 23 vs 27 µs, 3→64 3×3 on 64×64 170–178 vs 178–186 µs) but not on 224²
/// (MobileNetV2's 3→32 3×3 s2 400 vs 350 µs, ResNet's 7×7 s2 stem 2.7–2.9 vs 2.6–2.8 ms),
/// so it used to stop at 64×64 outputs. On the Xeon model 207 it wins at 224² too, in the
/// same process in turns (`layer_speed`, 1 and 2 threads): MobileNetV3's 3→16 stem
/// 0.78–0.80×, EfficientNet's 3→32 0.81–0.95× (avx2 0.76×), ResNet's 7×7 0.87–0.95× (avx2
/// 0.92–0.95×).
///
/// The rest, on the Xeon model 207, avx512, 1 thread, the two kernels' binaries alternated
/// (`layer_speed yolo`, the fastest of 2 runs of 9 rounds each), direct / im2col: YOLO's
/// 16→32 3×3 s2 on 320² 0.57–0.68×, 16→16 3×3 on 160² 0.35–0.42×, 32→64 3×3 s2 on 160²
/// 0.84–0.96×; but 64→128 s2 on 80² (40-wide output rows: 48 lanes for 40 pixels) 1.07–1.23×,
/// 64→64 s2 on 80² 1.03–1.05×, 128→256 s2 on 40² (20-wide) 1.41–1.51×. With wider inputs
/// the GEMM's packing is a smaller share of its FMAs, and its 32-column panels run across
/// rows where the direct kernel's chunks stop at each row's end.
fn use_direct(p: &Conv2dParams) -> bool {
    let (_, ow) = p.output_hw();
    let fills_lanes = ow % 16 == 0 || ow >= 128;
    direct::applies(p)
        && (p.c_in <= 4
            || (p.c_in <= 32 && p.kh * p.kw > 1 && fills_lanes && use_winograd(p).is_none()))
}

impl Conv2dCpu {
    /// Prepares the conv for `isa`: Winograd, the direct kernel or the packed GEMM, with the
    /// weights packed for it. Panics on invalid params or an ISA this CPU lacks.
    pub fn new(p: &Conv2dParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> Conv2dCpu {
        p.validate().expect("Conv2dCpu: invalid params");
        assert!(isa.is_supported(), "Conv2dCpu: this CPU cannot run {isa}");
        // weight: (c_out, c_in/groups, kh, kw) = per group an (m, k) row-major matrix
        let [c_out, cg_in, kh, kw] = p.weight_shape();
        assert_eq!(
            weight.len(),
            c_out * cg_in * kh * kw,
            "Conv2dCpu: weight length"
        );
        bias.inspect(|b| assert_eq!(b.len(), c_out, "Conv2dCpu: bias length"));
        let tiles = gemm::tiles(isa);
        let (m, k) = (c_out / p.groups, cg_in * kh * kw);
        let (oh, ow) = p.output_hw();
        let winograd = use_winograd(p).map(|t| Box::new(Winograd::new(p, weight, bias, isa, t)));
        let direct = use_direct(p).then(|| Box::new(DirectCpu::new(p, weight, bias, isa)));
        let linear = use_linear(p).then(|| {
            let lp = LinearParams {
                rows: p.n,
                in_features: p.c_in,
                out_features: p.c_out,
            };
            Box::new(LinearCpu::new(&lp, weight, bias, isa))
        });
        let a = if winograd.is_some() || direct.is_some() || linear.is_some() {
            PackedA::new(&[], p.groups, 0, k, &tiles)
        } else {
            PackedA::new(weight, p.groups, m, k, &tiles)
        };
        Conv2dCpu {
            p: *p,
            isa,
            tiles,
            a,
            bias: bias.map(<[f32]>::to_vec),
            panels: Panels::new(oh * ow, &tiles),
            phases: Phases::new(p),
            winograd,
            direct,
            linear,
        }
    }

    /// Floats of x's phase planes (stride-2 convs), all images.
    fn phases_len(&self) -> usize {
        self.phases
            .map_or(0, |ph| self.p.n * self.p.c_in * ph.per_channel())
    }

    /// Floats of scratch that `run` and `run_scaled` need with `threads` threads: x's
    /// phase planes for a stride-2 conv, then one packed B block (kc × nc) per thread (a
    /// scaled pointwise conv packs every panel there, an unscaled one only the last); for
    /// the GEMV, x · in_scale (n × c_in).
    pub fn scratch_len(&self, threads: usize) -> usize {
        if let Some(wg) = &self.winograd {
            return wg.scratch_len(threads);
        }
        if let Some(d) = &self.direct {
            return d.scratch_len(threads);
        }
        if self.linear.is_some() {
            return self.p.n * self.p.c_in;
        }
        self.phases_len()
            + threads.max(1) * gemm::scratch_per_worker(&self.tiles, self.a.k, &self.panels)
    }

    /// Short name of the algorithm chosen.
    pub fn algorithm(&self) -> &'static str {
        let p = &self.p;
        if let Some(wg) = &self.winograd {
            match wg.tile() {
                Tile::F4x4 => "winograd4x4",
                Tile::F2x2 => "winograd2x2",
            }
        } else if self.direct.is_some() {
            "direct"
        } else if self.linear.is_some() {
            "gemv"
        } else if p.kh == 1 && p.kw == 1 && p.stride == [1, 1] && p.pad == [0, 0] {
            "gemm1x1"
        } else {
            "im2col-gemm"
        }
    }

    /// y = act(conv(x) + bias + residual), residual (if any) has y's shape. Allocates
    /// nothing, locks nothing.
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
    /// for a conv `Conv2dParams::in_scale_applies` refuses. Allocates nothing, locks
    /// nothing.
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
        if let Some(s) = in_scale {
            let p = &self.p;
            assert!(
                p.in_scale_applies(),
                "Conv2dCpu: in_scale on a conv other than 1×1 stride 1 pad 0 groups 1: {p:?}"
            );
            assert_eq!(s.len(), p.n * p.c_in, "Conv2dCpu: in_scale length");
        }
        if let Some(d) = &self.direct {
            return d.run_scaled(x, in_scale, residual, act, y, scratch, threads);
        }
        if let Some(wg) = &self.winograd {
            // Winograd takes 3×3 convs, which `in_scale_applies` refuses (asserted above).
            return wg.run(x, residual, act, y, scratch, threads);
        }
        if let Some(lin) = &self.linear {
            // x, in_scale: (n, c_in, 1, 1) = (rows, in)  y, residual: (n, c_out, 1, 1)
            self.p.assert_io("Conv2dCpu", x, y, residual);
            let x = match in_scale {
                // n × c_in products: x is as small as the scale itself.
                Some(s) => {
                    let xs = &mut scratch[..x.len()];
                    xs.iter_mut()
                        .zip(x.iter().zip(s))
                        .for_each(|(d, (&v, &s))| *d = v * s);
                    &*xs
                }
                None => x,
            };
            let Some(r) = residual else {
                return lin.run(x, act, y, threads);
            };
            // The activation comes after the residual: a pass over the n·c_out outputs.
            lin.run(x, Activation::None, y, threads);
            y.iter_mut().zip(r).for_each(|(y, r)| *y += r);
            return crate::activation::cpu::activate_in_place(self.isa, act, y, threads);
        }
        // x: (n, c_in, h, w)  y, residual: (n, c_out, oh, ow)  scratch: (threads, per_worker)
        let p = &self.p;
        let [n, c_out, oh, ow] = p.output_shape();
        let npix = oh * ow;
        p.assert_io("Conv2dCpu", x, y, residual);
        let threads = threads.max(1);
        let per_worker = gemm::scratch_per_worker(&self.tiles, self.a.k, &self.panels);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "Conv2dCpu: scratch too short"
        );
        let (planes, scratch) = scratch.split_at_mut(self.phases_len());
        if let Some(ph) = self.phases {
            // planes: (n, c_in, qys, qxs, hq, wq), one task per channel plane.
            let (pc, plane) = (ph.per_channel(), p.h * p.w);
            let dst = SharedMut::new(planes);
            crate::parallel::for_each_task(threads, n * p.c_in, |c| {
                // SAFETY: task c alone writes channel plane c's pc floats of `planes`.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().add(c * pc), pc) };
                ph.split(p, &x[c * plane..][..plane], out);
            });
        }

        // Work: segments (image, group, m-chunk) × pixel panels, cut into `workers`
        // contiguous ranges. Split m too when there are too few pixel panels to share
        // (7×7 outputs have 3): each thread then packs the same B, a k × n copy against
        // its m/threads × k × n FMAs.
        let m_panels = self.a.panels();
        let units_n = n * p.groups * self.panels.len();
        let m_chunks = if threads > 1 && units_n < 4 * threads {
            threads.min(m_panels)
        } else {
            1
        };
        let cg_in = p.c_in / p.groups;
        let m = self.a.m;
        let y_ptr = SharedMut::new(y);
        let s_ptr = SharedMut::new(scratch);
        let segments = n * p.groups * m_chunks;
        gemm::for_each_panel_range(threads, segments, self.panels.len(), |wk, seg, cols| {
            // SAFETY: worker indices are distinct, so worker wk alone owns
            // scratch[wk·per_worker..][..per_worker]; the length was asserted above.
            let scratch = unsafe {
                std::slice::from_raw_parts_mut(s_ptr.as_mut_ptr().add(wk * per_worker), per_worker)
            };
            let (img_g, mc) = (seg / m_chunks, seg % m_chunks);
            let (img, g) = (img_g / p.groups, img_g % p.groups);
            // x_g: (cg_in, h, w)
            let first_c = img * p.c_in + g * cg_in;
            let im2col = match self.phases {
                Some(ph) => {
                    let pc = ph.per_channel();
                    Im2col::over_phases(p, ph, &planes[first_c * pc..][..cg_in * pc], self.isa)
                }
                None => {
                    let plane = p.h * p.w;
                    Im2col::new(p, &x[first_c * plane..][..cg_in * plane], self.isa)
                }
            };
            // s_g: (cg_in), this image's and group's scales.
            let im2col = match in_scale {
                Some(s) => im2col.scaled(&s[first_c..][..cg_in]),
                None => im2col,
            };
            let off = (img * c_out + g * m) * npix;
            let job = Gemm {
                isa: self.isa,
                tiles: self.tiles,
                a: self.a.group(g),
                m,
                k: self.a.k,
                b: &im2col,
                panels: &self.panels,
                // SAFETY: off + m·npix ≤ y.len(): group g's channels of image img.
                c: unsafe { y_ptr.as_mut_ptr().add(off) },
                ldc: npix,
                bias: self
                    .bias
                    .as_ref()
                    .map_or(std::ptr::null(), |b| b[g * m..].as_ptr()),
                residual: residual.map_or(std::ptr::null(), |r| r[off..].as_ptr()),
                act,
            };
            let mp = m_panels * mc / m_chunks..m_panels * (mc + 1) / m_chunks;
            // SAFETY: the ISA was checked in `new`; C, residual and bias cover group g's
            // m × npix block; units are disjoint across workers, and each unit is a
            // distinct (rows, columns) rectangle of y, so no two workers write the same
            // floats.
            unsafe { job.run(mp, cols, scratch) };
        });
    }
}
