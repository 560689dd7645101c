//! Winograd F(M×M, 3×3), M ∈ {4, 2}, for 3×3, stride-1, dilation-1, groups-1 convs (Lavin &
//! Gray 2015): each M×M output tile comes from an A×A input tile (A = M + 2) with A² = 36
//! (F4) or 16 (F2) multiplies per (c_out, c_in) instead of 9·M², so the GEMM does 4× (F4)
//! or 2.25× (F2) fewer FLOPs; the transforms cost O(c·tiles).
//!
//! Per image (t = tile index, T tiles, Tp = T rounded up to LANES, P = A²):
//! 1. input:  `V[ξ]` (c_in, Tp) = Bᵀ d B, d the A×A input tile at (M·ty − ph, M·tx − pw),
//!    zero outside x;
//! 2. GEMM:   `M[ξ]` (c_out, Tp) = `U[ξ]` (c_out, c_in) · `V[ξ]`, one packed GEMM per ξ ∈ 0..P,
//!    U = G g Gᵀ packed once in `new`, no epilogue;
//! 3. output: y tile = act(Aᵀ M A + bias + residual), clipped at the right/bottom edges.
//!
//! The transforms (`transform.rs`, `avx512.rs`) run on LANES = 16 tiles at once.
//!
//! Layout: V is stored (c_in, P, Tp) and M (c_out, P, Tp), so `V[ξ]` is a view with row
//! stride P·Tp. One input task (channel, chunk) then writes its P rows within one
//! channel's P·Tp floats instead of P rows c_in·Tp apart, and one output task reads them
//! back the same way: on 64@56² (V = M = 1.9 MB, past the 1 MiB L2) this cut the layer
//! ~15% at 1 thread against the (P, c_in, Tp) layout.
//!
//! Accuracy: F4's Bᵀ has entries up to 5 and Aᵀ up to 8, so the f32 rounding of the
//! transformed values is amplified: ~1e-5 of max|y| against an f64 reference (measured in
//! tests/conv2d_winograd.rs), vs ~1e-6 for im2col-gemm. F2's matrices hold only 0, ±1 and
//! ±½: ~1e-6, like im2col.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod transform;

use crate::conv2d::{Conv2dParams, ExactWeights};
use crate::gemm::{self, Gemm, PackB, PackedA, Panels, Tiles};
use crate::parallel::SharedMut;
use crate::{Activation, Isa};
use transform::{Grid, LANES};

/// The output tile of a Winograd conv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    /// F(4×4, 3×3): 36 points, 4× fewer FLOPs, needs enough tiles to amortise 36 U.
    F4x4,
    /// F(2×2, 3×3): 16 points, 2.25× fewer FLOPs, for small planes.
    F2x2,
}

impl Tile {
    /// Output tile side M.
    pub fn m(self) -> usize {
        match self {
            Tile::F4x4 => 4,
            Tile::F2x2 => 2,
        }
    }

    /// Transform points P = (M + 2)².
    pub fn points(self) -> usize {
        (self.m() + 2) * (self.m() + 2)
    }

    /// G: (M + 2, 3) takes a 3-tap filter to M + 2 values.
    fn g(self) -> &'static [[f64; 3]] {
        match self {
            // Points 0, 1, −1, 2, −2, ∞.
            Tile::F4x4 => &[
                [1.0 / 4.0, 0.0, 0.0],
                [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
                [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
                [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
                [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
                [0.0, 0.0, 1.0],
            ],
            // Points 0, 1, −1, ∞.
            Tile::F2x2 => &[
                [1.0, 0.0, 0.0],
                [0.5, 0.5, 0.5],
                [0.5, -0.5, 0.5],
                [0.0, 0.0, 1.0],
            ],
        }
    }
}

/// Whether Winograd can compute this conv at all.
pub fn applies(p: &Conv2dParams) -> bool {
    p.kh == 3 && p.kw == 3 && p.stride == [1, 1] && p.dilation == [1, 1] && p.groups == 1
}

/// U = G g Gᵀ per (c_out, c_in), in f64 and rounded once, packed as P "groups" of
/// (c_out, c_in): U[ξ] for ξ = (i, j) is packed before U[ξ + 1] is made, so only one of
/// the P matrices and one row of G g (f64) are ever held unpacked.
fn transformed_weights(
    weight: &[f32],
    c_out: usize,
    c_in: usize,
    tile: Tile,
    tiles: &Tiles,
) -> PackedA {
    let (a, gm) = (tile.m() + 2, tile.g());
    // gt: (c_out·c_in, 3) = row i of G g per (c_out, c_in), remade when i changes.
    let mut gt = vec![[0.0f64; 3]; c_out * c_in];
    PackedA::from_groups(a * a, c_out, c_in, tiles, |xi, u| {
        let (i, j) = (xi / a, xi % a);
        if j == 0 {
            for (row, g) in gt.iter_mut().zip(weight.chunks_exact(9)) {
                for (col, v) in row.iter_mut().enumerate() {
                    *v = (0..3).map(|k| gm[i][k] * f64::from(g[k * 3 + col])).sum();
                }
            }
        }
        // u: (c_out, c_in) = U[ξ]
        for (v, row) in u.iter_mut().zip(&gt) {
            *v = (0..3).map(|k| row[k] * gm[j][k]).sum::<f64>() as f32;
        }
    })
}

/// A conv2d prepared for Winograd: U packed once for `isa`.
pub struct Winograd {
    p: Conv2dParams,
    isa: Isa,
    tile: Tile,
    tiles: Tiles,
    /// P "groups" of (c_out, c_in): U[ξ] packed into mr-row panels.
    u: PackedA,
    /// (c_out)
    bias: Option<Vec<f32>>,
    /// (c_out, c_in, 3, 3), as given or shared: for images holding a NaN or an infinity
    /// (`run`).
    exact: ExactWeights,
    /// Tile grid of one image: T tiles, Tp = T rounded up to LANES.
    grid: Grid,
    tp: usize,
    /// The column panels of a GEMM over T tiles.
    panels: Panels,
}

impl Winograd {
    /// weight: (c_out, c_in, 3, 3)  bias: (c_out). Panics unless `applies(p)`. Keeps a
    /// copy of `weight` for images holding a NaN or an infinity; [`Winograd::with_exact`]
    /// shares one instead.
    pub fn new(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        tile: Tile,
    ) -> Winograd {
        Winograd::with_exact(p, weight, bias, isa, tile, ExactWeights::copy_of(weight))
    }

    /// [`Winograd::new`] whose exact path reads `exact`, which must be `weight` (scaled
    /// per output channel if it says so), rather than a copy: U is 4× (F4) or 1.8× (F2)
    /// the weights, and a copy beside it another 1×.
    pub fn with_exact(
        p: &Conv2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
        tile: Tile,
        exact: ExactWeights,
    ) -> Winograd {
        p.validate().expect("Winograd: invalid params");
        assert!(applies(p), "Winograd: not a 3x3 stride-1 dense conv: {p:?}");
        assert!(isa.is_supported(), "Winograd: this CPU cannot run {isa}");
        let (c_out, c_in) = (p.c_out, p.c_in);
        assert_eq!(weight.len(), c_out * c_in * 9, "Winograd: weight length");
        bias.inspect(|b| assert_eq!(b.len(), c_out, "Winograd: bias length"));
        let tiles = gemm::tiles(isa);
        let (oh, ow) = p.output_hw();
        let tw = ow.div_ceil(tile.m());
        let t = oh.div_ceil(tile.m()) * tw;
        let grid = Grid {
            h: p.h,
            w: p.w,
            ph: p.pad[0],
            pw: p.pad[1],
            oh,
            ow,
            tw,
            t,
        };
        Winograd {
            p: *p,
            isa,
            tile,
            tiles,
            u: transformed_weights(weight, c_out, c_in, tile, &tiles),
            bias: bias.map(<[f32]>::to_vec),
            exact,
            grid,
            tp: t.next_multiple_of(LANES),
            panels: Panels::new(t, &tiles),
        }
    }

    /// The output tile this conv was built for: F(4×4, 3×3) or F(2×2, 3×3).
    pub fn tile(&self) -> Tile {
        self.tile
    }

    /// Floats of scratch one image needs: V (c_in, P, Tp) and M (c_out, P, Tp). The GEMMs
    /// read V in place (`Rows::direct`), so they need no packing buffer.
    fn per_image(&self) -> usize {
        self.tile.points() * (self.p.c_in + self.p.c_out) * self.tp
    }

    /// Threads that take whole images (`run`): each its own, where there are as many
    /// images as threads; else 1, and the threads share each image.
    fn image_workers(&self, threads: usize) -> usize {
        match threads > 1 && self.p.n >= threads {
            true => threads,
            false => 1,
        }
    }

    /// Floats of scratch `run` needs with `threads` threads: one image's V and M per
    /// thread that takes whole images.
    pub fn scratch_len(&self, threads: usize) -> usize {
        self.image_workers(threads.max(1)) * self.per_image()
    }

    /// y = act(conv(x) + bias + residual); as `CpuConv::run`. Allocates nothing.
    ///
    /// With at least as many images as threads, each thread takes whole images, in turn:
    /// an image's transforms and GEMMs then run on one core with no barrier between them,
    /// and its V and M (written by channel, read by point, then the other way) stay in
    /// that core's caches. Whole models at batch 2 on 2 threads, both ways taking turns
    /// in one process (Xeon model 207): ResNet-18 0.90–0.98× the time, ResNet-50
    /// 0.96–0.99×. Otherwise the threads share each image.
    pub fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c_in, h, w)  y, residual: (n, c_out, oh, ow)
        let p = &self.p;
        let [n, c_out, oh, ow] = p.output_shape();
        let (image_in, image_out) = (p.c_in * p.h * p.w, c_out * oh * ow);
        p.assert_io("Winograd", x, y, residual);
        let threads = threads.max(1);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "Winograd: scratch too short"
        );
        let (y_ptr, s_ptr) = (SharedMut::new(y), SharedMut::new(scratch));
        let workers = self.image_workers(threads);
        let per = self.per_image();
        // Worker w's images, each on `inner` threads.
        let images = |w: usize, inner: usize| {
            // SAFETY: worker w alone uses scratch part w (the length was asserted).
            let scratch = unsafe { s_ptr.part(w * per, per) };
            for img in n * w / workers..n * (w + 1) / workers {
                // SAFETY: image img's planes of y, written by this worker alone.
                let y_img = unsafe { y_ptr.part(img * image_out, image_out) };
                let res_img = residual.map(|r| &r[img * image_out..][..image_out]);
                let x_img = &x[img * image_in..][..image_in];
                self.image(x_img, res_img, act, y_img, scratch, inner);
            }
        };
        match workers {
            1 => images(0, threads),
            _ => crate::parallel::for_each_task(threads, workers, |w| images(w, 1)),
        }
    }

    /// One image on `threads` threads: x_img (c_in, h, w), y_img and res_img (c_out, oh,
    /// ow), scratch holding `per_image` floats.
    fn image(
        &self,
        x_img: &[f32],
        res_img: Option<&[f32]>,
        act: Activation,
        y_img: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        if !all_finite(x_img) {
            self.exact_image(x_img, res_img, act, y_img);
            return;
        }
        let p = &self.p;
        let (c_in, c_out) = (p.c_in, p.c_out);
        let (oh, ow) = p.output_hw();
        let (plane_in, plane_out) = (p.h * p.w, oh * ow);
        let (tp, pts) = (self.tp, self.tile.points());
        let chunks = tp / LANES;
        // scratch: v (c_in, P, Tp) | m (c_out, P, Tp)
        let v_len = pts * c_in * tp;
        let (v, rest) = scratch.split_at_mut(v_len);
        let m = &mut rest[..pts * c_out * tp];
        let (v_ptr, m_ptr) = (SharedMut::new(v), SharedMut::new(m));
        let y_ptr = SharedMut::new(y_img);
        // 1. Input transform: tasks (ic, chunk of LANES tiles).
        crate::parallel::for_each_task(threads, c_in * chunks, |task| {
            let (ic, chunk) = (task / chunks, task % chunks);
            let x_c = &x_img[ic * plane_in..][..plane_in];
            // SAFETY: task (ic, chunk) alone writes v[(ic, ξ, chunk·LANES..)] for every ξ:
            // LANES floats inside (c_in, P, Tp); the ISA was checked in `new`.
            unsafe {
                let dst = v_ptr.as_mut_ptr().add(ic * pts * tp + chunk * LANES);
                self.input_chunk(x_c, chunk * LANES, dst, tp);
            }
        });
        // 2. P GEMMs M[ξ] = U[ξ] · V[ξ]: units (ξ, pixel panel) split over workers.
        gemm::for_each_panel_range(threads, pts, self.panels.len(), |_, xi, cols| {
            // SAFETY: V is fully written by step 1 and only read here; V[ξ] is rows
            // ξ·Tp + r·P·Tp, all before v_len.
            let v_xi = unsafe {
                std::slice::from_raw_parts(v_ptr.as_mut_ptr().add(xi * tp), v_len - xi * tp)
            };
            let b = Rows {
                v: v_xi,
                ld: pts * tp,
                cols: tp,
            };
            let job = Gemm {
                isa: self.isa,
                tiles: self.tiles,
                a: self.u.group(xi),
                m: c_out,
                k: c_in,
                b: &b,
                panels: &self.panels,
                // SAFETY: M[ξ] is (c_out, Tp) with row stride P·Tp inside m.
                c: unsafe { m_ptr.as_mut_ptr().add(xi * tp) },
                ldc: pts * tp,
                bias: std::ptr::null(),
                residual: std::ptr::null(),
                act: Activation::None,
            };
            // SAFETY: the ISA was checked; C is M[ξ] (c_out × Tp); units are disjoint
            // column ranges of distinct M[ξ], so writes never overlap; B is read in place,
            // so the packing scratch is never touched.
            unsafe { job.run(0..self.u.panels(), cols, &mut []) };
        });
        // 3. Output transform + epilogue: tasks (oc, chunk).
        crate::parallel::for_each_task(threads, c_out * chunks, |task| {
            let (oc, chunk) = (task / chunks, task % chunks);
            let bias = self.bias.as_ref().map_or(0.0, |b| b[oc]);
            let res = res_img.map(|r| &r[oc * plane_out..][..plane_out]);
            // SAFETY: M is fully written by step 2; task (oc, chunk) reads its own columns
            // and writes only the pixels of its own tiles of plane oc.
            unsafe {
                let src = m_ptr.as_mut_ptr().add(oc * pts * tp + chunk * LANES);
                let dst = y_ptr.as_mut_ptr().add(oc * plane_out);
                self.output_chunk(src, tp, chunk * LANES, bias, res, act, dst);
            }
        });
    }

    /// One image by the reference conv, window by window. The transforms mix every input
    /// of a tile into every output of it, so one NaN or infinity would reach outputs
    /// whose windows never read it (and Inf − Inf makes NaN where PyTorch has ±Inf):
    /// such images take this slow exact path, finite ones never do.
    fn exact_image(&self, x: &[f32], residual: Option<&[f32]>, act: Activation, y: &mut [f32]) {
        let one = Conv2dParams { n: 1, ..self.p };
        self.exact.conv2d(&one, x, self.bias.as_deref(), y);
        match residual {
            Some(r) => y
                .iter_mut()
                .zip(r)
                .for_each(|(v, r)| *v = act.apply(*v + r)),
            None => y.iter_mut().for_each(|v| *v = act.apply(*v)),
        }
    }

    /// # Safety
    /// As `transform::input_lanes`; the CPU supports `self.isa`.
    unsafe fn input_chunk(&self, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
        let (isa, g) = (self.isa, &self.grid);
        match self.tile {
            // SAFETY: forwarded contract.
            Tile::F4x4 => unsafe { transform::input_chunk::<4>(isa, g, x_c, t0, dst, ld) },
            // SAFETY: forwarded contract.
            Tile::F2x2 => unsafe { transform::input_chunk::<2>(isa, g, x_c, t0, dst, ld) },
        }
    }

    /// # Safety
    /// As `transform::output_lanes`; the CPU supports `self.isa`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn output_chunk(
        &self,
        src: *const f32,
        ld: usize,
        t0: usize,
        bias: f32,
        res: Option<&[f32]>,
        act: Activation,
        dst: *mut f32,
    ) {
        let (isa, g) = (self.isa, &self.grid);
        match self.tile {
            // SAFETY: forwarded contract.
            Tile::F4x4 => unsafe {
                transform::output_chunk::<4>(isa, g, src, ld, t0, bias, res, act, dst)
            },
            // SAFETY: forwarded contract.
            Tile::F2x2 => unsafe {
                transform::output_chunk::<2>(isa, g, src, ld, t0, bias, res, act, dst)
            },
        }
    }
}

/// B of one GEMM: V[ξ] (k, ld) row-major, `cols` floats written per row.
struct Rows<'a> {
    v: &'a [f32],
    ld: usize,
    /// Floats written in each row: Tp.
    cols: usize,
}

impl PackB for Rows<'_> {
    /// V's rows are read in place: each holds Tp floats, and every panel ends within Tp
    /// (panels cover T rounded up to 8, Tp is T rounded up to 16), so no copy is needed.
    fn direct(&self, k0: usize, start: usize, width: usize) -> Option<(*const f32, usize)> {
        assert!(start + width <= self.cols, "Rows::direct: panel past Tp");
        Some((self.v[k0 * self.ld + start..].as_ptr(), self.ld))
    }

    fn pack(&self, _: usize, _: usize, _: usize, _: usize, _: &mut [f32]) {
        unreachable!("Rows::direct always reads V in place")
    }
}

/// Whether `x` holds no NaN and no infinity: v·0 is 0 for finite v and NaN otherwise, and
/// sixteen running sums of it vectorise: 12 µs for a 64×56×56 input on one Zen 4 core
/// (SSE2 code), under 1% of that layer's 1.4 ms.
fn all_finite(x: &[f32]) -> bool {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * 0.0;
        }
    }
    tail.iter().chain(&acc).all(|v| (v * 0.0) == 0.0)
}
