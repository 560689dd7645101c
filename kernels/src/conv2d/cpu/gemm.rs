//! conv2d on the CPU as a packed GEMM per (image, group):
//! `C (m × n) = A (m × k) · B (k × n)` with m = c_out/groups, k = c_in/groups·kh·kw and
//! n = oh·ow. A is the weights, packed once in `new`; B is the im2col matrix, never built
//! whole: `Im2col::pack` gathers one kc × nr panel at a time straight from x into the
//! GEMM's packing buffer; for 1×1 stride-1 convs B is x itself and the microkernel reads
//! it in place. C is y itself.
//!
//! With an `in_scale` (`run_scaled`: squeeze-excite's gate, for the convs
//! `Conv2dParams::in_scale_applies` names) the pointwise B is packed, each row times its
//! channel's scale, instead of read in place.
//!
//! `ConvAlgorithm::choose` (cpu/mod.rs) sends the convs other kernels compute faster to
//! them; this one computes any conv.

use super::im2col::{Im2col, Phases};
use crate::conv2d::Conv2dParams;
use crate::gemm::{self, Gemm, PackedA, Panels, Tiles};
use crate::parallel::SharedMut;
use crate::{Activation, Isa};

/// A conv2d prepared for the packed GEMM: weights packed once for `isa` when the session is
/// built.
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
    /// A pointwise conv's B is packed rather than read in x (`packs_pointwise`).
    pack_x: bool,
}

/// Whether a pointwise conv (1×1, stride 1) packs its B, x, rather than have the
/// microkernel read it in place. In place measured faster where A's micro-panel stays in L1
/// (`Tiles::mc` None, Zen 4, 1 thread: 32→16@112² 217 → 130 µs, 96→24@56² 213 → 136 µs,
/// 256→64@56² 1150 → 950 µs, 128→512@28² level): a packed float feeds only m / mr
/// microkernel calls, and the copy costs about as much as the FMAs it feeds. Where B's
/// micro-panel stays in L1 instead (the Xeon model 207) a packed one is contiguous, and
/// with m ≥ 128 (16 A panels over each) and k > 96 packing paid: ResNet-50's 1×1 convs
/// 0.939× the time with cold weights, 0.950× warm, 512→256@28² 0.88×, 256→64@56² level
/// (`layer_speed r50`, 1 thread, both interleaved in one process, each in odd and even
/// slots alike); MobileNetV3-L, EfficientNet-B0, the detector and avx2 level (0.99–1.02×).
fn packs_pointwise(m: usize, k: usize, t: &Tiles) -> bool {
    t.mc.is_some() && m >= 128 && k > 96
}

impl Conv2dCpu {
    /// Prepares the conv for `isa`, the weights packed once.
    /// weight: (c_out, c_in/groups, kh, kw)  bias: (c_out). Panics on invalid params or an
    /// ISA this CPU lacks.
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
        Conv2dCpu {
            p: *p,
            isa,
            tiles,
            a: PackedA::new(weight, p.groups, m, k, &tiles),
            bias: bias.map(<[f32]>::to_vec),
            panels: Panels::new(oh * ow, &tiles),
            phases: Phases::new(p),
            pack_x: packs_pointwise(m, k, &tiles),
        }
    }

    /// Floats of x's phase planes (stride-2 convs), all images.
    fn phases_len(&self) -> usize {
        self.phases
            .map_or(0, |ph| self.p.n * self.p.c_in * ph.per_channel())
    }

    /// Floats of scratch that `run` and `run_scaled` need with `threads` threads: x's
    /// phase planes for a stride-2 conv, then one packed B block (kc × nc) per thread (a
    /// scaled pointwise conv packs every panel there, an unscaled one only the last).
    pub fn scratch_len(&self, threads: usize) -> usize {
        self.phases_len()
            + threads.max(1) * gemm::scratch_per_worker(&self.tiles, self.a.k, &self.panels)
    }

    /// Short name of the GEMM's B: "gemm1x1" where it is x itself (read in place or
    /// packed, `packs_pointwise`), "im2col-gemm" where it is gathered.
    pub fn name(&self) -> &'static str {
        if self.p.is_pointwise() {
            "gemm1x1"
        } else {
            "im2col-gemm"
        }
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
        // x: (n, c_in, h, w)  y, residual: (n, c_out, oh, ow)  scratch: (threads, per_worker)
        let p = &self.p;
        let [n, c_out, oh, ow] = p.output_shape();
        let npix = oh * ow;
        p.assert_io("Conv2dCpu", x, y, residual);
        in_scale.inspect(|s| p.assert_in_scale("Conv2dCpu", s));
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
                    let b = Im2col::new(p, &x[first_c * plane..][..cg_in * plane], self.isa);
                    match self.pack_x {
                        true => b.packed(),
                        false => b,
                    }
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
