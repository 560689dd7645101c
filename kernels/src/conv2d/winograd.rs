//! Winograd F(4×4, 3×3) for 3×3, stride-1, dilation-1, groups-1 convs (Lavin & Gray 2015):
//! each 4×4 output tile comes from a 6×6 input tile with 36 multiplies per (c_out, c_in)
//! instead of 144, so the GEMM does 4× fewer FLOPs; the transforms cost O(c·tiles).
//!
//! Per image (t = tile index, T tiles, Tp = T rounded up to LANES):
//! 1. input:  V[ξ] (c_in, Tp) = Bᵀ d B, d the 6×6 input tile at (4ty − ph, 4tx − pw), zero
//!    outside x;
//! 2. GEMM:   M[ξ] (c_out, Tp) = U[ξ] (c_out, c_in) · V[ξ], one packed GEMM per ξ ∈ 0..36,
//!    U = G g Gᵀ packed once in `new`, no epilogue;
//! 3. output: y tile = act(Aᵀ M A + bias + residual), clipped at the right/bottom edges.
//!
//! The transforms run on LANES = 16 tiles at once (one zmm, two ymm): plain lane loops,
//! compiled per ISA with `#[target_feature]` so LLVM turns each into vector ops.
//!
//! Accuracy: Bᵀ has entries up to 5 and Aᵀ up to 8, so the f32 rounding of the transformed
//! values is amplified: ~1e-5–1e-4 of max|y| against an f64 reference (measured in
//! tests/conv2d_cpu.rs), vs ~1e-6 for im2col-gemm.

use super::Conv2dParams;
use crate::gemm::{self, Gemm, PackB, PackedA, Panels, Tiles};
use crate::{Activation, Isa};

/// Tiles per transform step.
const LANES: usize = 16;
type Lanes = [f32; LANES];

/// Transform points 0, 1, −1, 2, −2, ∞. G: (6, 3) takes a 3-tap filter to 6 values.
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Whether Winograd F(4×4, 3×3) can compute this conv at all.
pub fn applies(p: &Conv2dParams) -> bool {
    p.kh == 3 && p.kw == 3 && p.stride == [1, 1] && p.dilation == [1, 1] && p.groups == 1
}

/// A conv2d prepared for Winograd F(4×4, 3×3): U packed once for `isa`.
pub struct Winograd4x4 {
    p: Conv2dParams,
    isa: Isa,
    tiles: Tiles,
    /// 36 "groups" of (c_out, c_in): U[ξ] packed into mr-row panels.
    u: PackedA,
    /// (c_out)
    bias: Option<Vec<f32>>,
    /// Tile grid of one image: th × tw tiles, T = th·tw, Tp = T rounded up to LANES.
    th: usize,
    tw: usize,
    tp: usize,
    /// The column panels of a GEMM over T tiles.
    panels: Panels,
}

impl Winograd4x4 {
    /// weight: (c_out, c_in, 3, 3)  bias: (c_out). Panics unless `applies(p)`.
    pub fn new(p: &Conv2dParams, weight: &[f32], bias: Option<&[f32]>, isa: Isa) -> Winograd4x4 {
        p.validate().expect("Winograd4x4: invalid params");
        assert!(
            applies(p),
            "Winograd4x4: not a 3x3 stride-1 dense conv: {p:?}"
        );
        assert!(isa.is_supported(), "Winograd4x4: this CPU cannot run {isa}");
        let (c_out, c_in) = (p.c_out, p.c_in);
        assert_eq!(weight.len(), c_out * c_in * 9, "Winograd4x4: weight length");
        bias.inspect(|b| assert_eq!(b.len(), c_out, "Winograd4x4: bias length"));
        // u: (36, c_out, c_in) = G g Gᵀ per (c_out, c_in), in f64 and rounded once.
        let mut u = vec![0.0f32; 36 * c_out * c_in];
        for (oc_ic, g) in weight.chunks_exact(9).enumerate() {
            // gt: (6, 3) = G g
            let mut gt = [[0.0f64; 3]; 6];
            for (i, row) in gt.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (0..3).map(|k| G[i][k] * f64::from(g[k * 3 + j])).sum();
                }
            }
            for i in 0..6 {
                for j in 0..6 {
                    let v: f64 = (0..3).map(|k| gt[i][k] * G[j][k]).sum();
                    u[(i * 6 + j) * c_out * c_in + oc_ic] = v as f32;
                }
            }
        }
        let tiles = gemm::tiles(isa);
        let (oh, ow) = p.output_hw();
        let (th, tw) = (oh.div_ceil(4), ow.div_ceil(4));
        let t = th * tw;
        Winograd4x4 {
            p: *p,
            isa,
            tiles,
            u: PackedA::new(&u, 36, c_out, c_in, tiles.mr),
            bias: bias.map(<[f32]>::to_vec),
            th,
            tw,
            tp: t.next_multiple_of(LANES),
            panels: Panels::new(t, &tiles),
        }
    }

    fn per_worker(&self) -> usize {
        gemm::scratch_per_worker(&self.tiles, self.p.c_in, &self.panels)
    }

    /// Floats of scratch `run` needs: V (36, c_in, Tp), M (36, c_out, Tp) and one packed B
    /// block per thread.
    pub fn scratch_len(&self, threads: usize) -> usize {
        36 * (self.p.c_in + self.p.c_out) * self.tp + threads.max(1) * self.per_worker()
    }

    /// y = act(conv(x) + bias + residual); as `Conv2dCpu::run`. Allocates nothing.
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
        let (c_in, plane_in, plane_out) = (p.c_in, p.h * p.w, oh * ow);
        assert_eq!(x.len(), n * c_in * plane_in, "Winograd4x4: x length");
        assert_eq!(y.len(), n * c_out * plane_out, "Winograd4x4: y length");
        residual.inspect(|r| assert_eq!(r.len(), y.len(), "Winograd4x4: residual length"));
        let threads = threads.max(1);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "Winograd4x4: scratch too short"
        );
        let tp = self.tp;
        let chunks = tp / LANES;
        // scratch: v (36, c_in, Tp) | m (36, c_out, Tp) | pack (threads, per_worker)
        let (v, rest) = scratch.split_at_mut(36 * c_in * tp);
        let (m, pack) = rest.split_at_mut(36 * c_out * tp);
        let per_worker = self.per_worker();
        let (v_ptr, m_ptr, pack_ptr) = (
            SyncPtr(v.as_mut_ptr()),
            SyncPtr(m.as_mut_ptr()),
            SyncPtr(pack.as_mut_ptr()),
        );
        let y_ptr = SyncPtr(y.as_mut_ptr());
        for img in 0..n {
            let x_img = &x[img * c_in * plane_in..][..c_in * plane_in];
            // 1. Input transform: tasks (ic, chunk of LANES tiles).
            crate::parallel::for_each_task(threads, c_in * chunks, |task| {
                let (ic, chunk) = (task / chunks, task % chunks);
                let x_c = &x_img[ic * plane_in..][..plane_in];
                // SAFETY: task (ic, chunk) alone writes v[(ξ, ic, chunk·LANES..)] for
                // every ξ: LANES floats inside (36, c_in, Tp).
                let dst = unsafe { v_ptr.get().add(ic * tp + chunk * LANES) };
                // SAFETY: the ISA was checked in `new`; dst as above, row stride c_in·Tp.
                unsafe { self.input_chunk(x_c, chunk * LANES, dst, c_in * tp) };
            });
            // 2. 36 GEMMs M[ξ] = U[ξ] · V[ξ]: units (ξ, pixel panel) split over workers.
            let per_seg = self.panels.len();
            let total = 36 * per_seg;
            let workers = threads.min(total);
            let t = self.th * self.tw;
            crate::parallel::for_each_task(threads, workers, |wk| {
                // SAFETY: worker wk alone owns pack[wk·per_worker..][..per_worker].
                let scratch = unsafe {
                    std::slice::from_raw_parts_mut(pack_ptr.get().add(wk * per_worker), per_worker)
                };
                let (lo, hi) = (total * wk / workers, total * (wk + 1) / workers);
                let mut u = lo;
                while u < hi {
                    let (xi, first) = (u / per_seg, u % per_seg);
                    let last = per_seg.min(first + hi - u);
                    // SAFETY: V is fully written by step 1 and only read here.
                    let v_xi = unsafe {
                        std::slice::from_raw_parts(v_ptr.get().add(xi * c_in * tp), c_in * tp)
                    };
                    let b = Rows {
                        v: v_xi,
                        ld: tp,
                        n: t,
                    };
                    let job = Gemm {
                        isa: self.isa,
                        tiles: self.tiles,
                        a: self.u.group(xi),
                        m: c_out,
                        k: c_in,
                        b: &b,
                        panels: &self.panels,
                        // SAFETY: M[ξ] is (c_out, Tp) inside m.
                        c: unsafe { m_ptr.get().add(xi * c_out * tp) },
                        ldc: tp,
                        bias: std::ptr::null(),
                        residual: std::ptr::null(),
                        act: Activation::None,
                    };
                    // SAFETY: the ISA was checked; C is M[ξ] (c_out × Tp); units are
                    // disjoint column ranges of distinct M[ξ], so writes never overlap.
                    unsafe { job.run(0..self.u.panels(), first..last, scratch) };
                    u += last - first;
                }
            });
            // 3. Output transform + epilogue: tasks (oc, chunk).
            let y_off = img * c_out * plane_out;
            let res_img = residual.map(|r| &r[y_off..][..c_out * plane_out]);
            crate::parallel::for_each_task(threads, c_out * chunks, |task| {
                let (oc, chunk) = (task / chunks, task % chunks);
                let bias = self.bias.as_ref().map_or(0.0, |b| b[oc]);
                let res = res_img.map(|r| &r[oc * plane_out..][..plane_out]);
                // SAFETY: M is fully written by step 2; task (oc, chunk) reads its own
                // columns and writes only the pixels of its own tiles of y's plane oc.
                unsafe {
                    let src = m_ptr.get().add(oc * tp + chunk * LANES);
                    let dst = y_ptr.get().add(y_off + oc * plane_out);
                    self.output_chunk(src, c_out * tp, chunk * LANES, bias, res, act, dst);
                }
            });
        }
    }

    /// Dispatches `input_lanes` to the ISA's compilation of it.
    ///
    /// # Safety
    /// dst + ξ·ld .. + LANES is writable for every ξ < 36; the CPU supports `self.isa`.
    unsafe fn input_chunk(&self, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded contract.
            Isa::Avx512 => unsafe { input_avx512(self, x_c, t0, dst, ld) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded contract.
            Isa::Avx2 => unsafe { input_avx2(self, x_c, t0, dst, ld) },
            // SAFETY: forwarded contract.
            _ => unsafe { self.input_lanes(x_c, t0, dst, ld) },
        }
    }

    /// V[ξ][t0 + l] = (Bᵀ d_l B)[ξ] for the LANES tiles t0.., d_l zero past x or past T.
    ///
    /// # Safety
    /// As `input_chunk`.
    #[inline(always)]
    unsafe fn input_lanes(&self, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
        let p = &self.p;
        let (h, w) = (p.h as isize, p.w as isize);
        // d: (6, 6, LANES), tile l's 6×6 input in lane l.
        let mut d = [[[0.0f32; LANES]; 6]; 6];
        for l in 0..LANES.min(self.th * self.tw - t0.min(self.th * self.tw)) {
            let (ty, tx) = ((t0 + l) / self.tw, (t0 + l) % self.tw);
            let y0 = (4 * ty) as isize - p.pad[0] as isize;
            let x0 = (4 * tx) as isize - p.pad[1] as isize;
            if y0 >= 0 && x0 >= 0 && y0 + 6 <= h && x0 + 6 <= w {
                // Interior tile: no bounds per element.
                let base = &x_c[(y0 * w + x0) as usize..];
                for (i, row) in d.iter_mut().enumerate() {
                    let src = &base[i * p.w..][..6];
                    for (j, v) in row.iter_mut().enumerate() {
                        v[l] = src[j];
                    }
                }
            } else {
                for (i, row) in d.iter_mut().enumerate() {
                    let iy = y0 + i as isize;
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    for (j, v) in row.iter_mut().enumerate() {
                        let ix = x0 + j as isize;
                        if ix >= 0 && ix < w {
                            v[l] = x_c[(iy * w + ix) as usize];
                        }
                    }
                }
            }
        }
        // t: (6, 6, LANES) = Bᵀ d (columns), then rows: Bᵀ d B.
        let mut t = [[[0.0f32; LANES]; 6]; 6];
        for j in 0..6 {
            let col = bt6([&d[0][j], &d[1][j], &d[2][j], &d[3][j], &d[4][j], &d[5][j]]);
            for (k, c) in col.into_iter().enumerate() {
                t[k][j] = c;
            }
        }
        for (k, row) in t.iter().enumerate() {
            let out = bt6([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
            for (l, o) in out.iter().enumerate() {
                // SAFETY: ξ = 6k + l < 36, LANES floats at dst + ξ·ld (caller).
                unsafe {
                    std::ptr::copy_nonoverlapping(o.as_ptr(), dst.add((k * 6 + l) * ld), LANES)
                };
            }
        }
    }

    /// Dispatches `output_lanes` to the ISA's compilation of it.
    ///
    /// # Safety
    /// src + ξ·ld .. + LANES is readable for every ξ < 36; dst is y's plane (oh, ow) of
    /// this channel, and no other thread writes these tiles; the CPU supports `self.isa`.
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
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded contract.
            Isa::Avx512 => unsafe { output_avx512(self, src, ld, t0, bias, res, act, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: forwarded contract.
            Isa::Avx2 => unsafe { output_avx2(self, src, ld, t0, bias, res, act, dst) },
            // SAFETY: forwarded contract.
            _ => unsafe { self.output_lanes(src, ld, t0, bias, res, act, dst) },
        }
    }

    /// y tiles t0.. = act(Aᵀ M A + bias + residual), the pixels inside (oh, ow) only.
    ///
    /// # Safety
    /// As `output_chunk`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn output_lanes(
        &self,
        src: *const f32,
        ld: usize,
        t0: usize,
        bias: f32,
        res: Option<&[f32]>,
        act: Activation,
        dst: *mut f32,
    ) {
        // m: (6, 6, LANES)
        let mut m = [[[0.0f32; LANES]; 6]; 6];
        for (k, row) in m.iter_mut().enumerate() {
            for (l, v) in row.iter_mut().enumerate() {
                // SAFETY: ξ = 6k + l < 36, LANES floats at src + ξ·ld (caller).
                unsafe {
                    std::ptr::copy_nonoverlapping(src.add((k * 6 + l) * ld), v.as_mut_ptr(), LANES)
                };
            }
        }
        // t: (4, 6, LANES) = Aᵀ m, then o: (4, 4, LANES) = Aᵀ m A + bias.
        let mut t = [[[0.0f32; LANES]; 6]; 4];
        for j in 0..6 {
            let col = at6([&m[0][j], &m[1][j], &m[2][j], &m[3][j], &m[4][j], &m[5][j]]);
            for (a, c) in col.into_iter().enumerate() {
                t[a][j] = c;
            }
        }
        let mut o = [[[0.0f32; LANES]; 4]; 4];
        for (a, row) in t.iter().enumerate() {
            o[a] = at6([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
            for v in o[a].iter_mut().flatten() {
                *v += bias;
            }
        }
        let (oh, ow) = self.p.output_hw();
        let t_end = (t0 + LANES).min(self.th * self.tw);
        for (l, t) in (t0..t_end).enumerate() {
            let (ty, tx) = (t / self.tw, t % self.tw);
            let (rows, cols) = (4.min(oh - 4 * ty), 4.min(ow - 4 * tx));
            for (a, o_row) in o.iter().enumerate().take(rows) {
                let off = (4 * ty + a) * ow + 4 * tx;
                for (b, o_v) in o_row.iter().enumerate().take(cols) {
                    let mut v = o_v[l];
                    if let Some(r) = res {
                        v += r[off + b];
                    }
                    // SAFETY: (4ty + a, 4tx + b) is inside (oh, ow): a < rows, b < cols.
                    unsafe { *dst.add(off + b) = act.apply(v) };
                }
            }
        }
    }
}

/// Bᵀ x for 6 lane vectors: the input transform along one axis.
#[inline(always)]
fn bt6(x: [&Lanes; 6]) -> [Lanes; 6] {
    let mut o = [[0.0f32; LANES]; 6];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = x.map(|v| v[l]);
        o[0][l] = 4.0 * x0 - 5.0 * x2 + x4;
        o[1][l] = -4.0 * (x1 + x2) + x3 + x4;
        o[2][l] = 4.0 * (x1 - x2) - x3 + x4;
        o[3][l] = 2.0 * (x3 - x1) - x2 + x4;
        o[4][l] = 2.0 * (x1 - x3) - x2 + x4;
        o[5][l] = 4.0 * x1 - 5.0 * x3 + x5;
    }
    o
}

/// Aᵀ x for 6 lane vectors: the output transform along one axis.
#[inline(always)]
fn at6(x: [&Lanes; 6]) -> [Lanes; 4] {
    let mut o = [[0.0f32; LANES]; 4];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = x.map(|v| v[l]);
        let (s12, d12, s34, d34) = (x1 + x2, x1 - x2, x3 + x4, x3 - x4);
        o[0][l] = x0 + s12 + s34;
        o[1][l] = d12 + 2.0 * d34;
        o[2][l] = s12 + 4.0 * s34;
        o[3][l] = d12 + 8.0 * d34 + x5;
    }
    o
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_avx512(wg: &Winograd4x4, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
    // SAFETY: forwarded contract.
    unsafe { wg.input_lanes(x_c, t0, dst, ld) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_avx2(wg: &Winograd4x4, x_c: &[f32], t0: usize, dst: *mut f32, ld: usize) {
    // SAFETY: forwarded contract.
    unsafe { wg.input_lanes(x_c, t0, dst, ld) }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn output_avx512(
    wg: &Winograd4x4,
    src: *const f32,
    ld: usize,
    t0: usize,
    bias: f32,
    res: Option<&[f32]>,
    act: Activation,
    dst: *mut f32,
) {
    // SAFETY: forwarded contract.
    unsafe { wg.output_lanes(src, ld, t0, bias, res, act, dst) }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_avx2(
    wg: &Winograd4x4,
    src: *const f32,
    ld: usize,
    t0: usize,
    bias: f32,
    res: Option<&[f32]>,
    act: Activation,
    dst: *mut f32,
) {
    // SAFETY: forwarded contract.
    unsafe { wg.output_lanes(src, ld, t0, bias, res, act, dst) }
}

/// B of one GEMM: V[ξ] (k, ld) row-major with n valid columns.
struct Rows<'a> {
    v: &'a [f32],
    ld: usize,
    n: usize,
}

impl PackB for Rows<'_> {
    fn pack(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        let valid = width.min(self.n - start);
        for (r, row) in dst.chunks_exact_mut(width).take(kc).enumerate() {
            row[..valid].copy_from_slice(&self.v[(k0 + r) * self.ld + start..][..valid]);
            row[valid..].fill(0.0);
        }
    }
}

/// A scratch or output base pointer shared by the workers, each of which touches only its
/// own part (see `Winograd4x4::run`).
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: workers write disjoint parts of the buffer.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}
