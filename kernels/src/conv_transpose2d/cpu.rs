//! conv_transpose2d on the CPU: per (image, group), a GEMM computes every input pixel's
//! contribution through every tap, then col2im adds each into the output pixel it lands on.
//!
//! `col (m × npix) = A (m × k) · B (k × npix)` with m = c_out/groups·kh·kw (rows ordered
//! (channel, ky, kx)), k = c_in/groups and B the group's input channels, x itself (read
//! in place, as conv2d's 1×1 GEMM reads it). A is the weight transposed, packed once in
//! `new`. The pixels go through in chunks whose col block (m × chunk) stays in L2 until
//! col2im has read it back; col2im then adds row (c, ky, kx) of the block into output
//! channel c at `(iy·s - p + ky·d, ix·s - p + kx·d)`, and after the last chunk adds the
//! bias and applies the activation.
//!
//! FLOPs are exactly the transposed conv's (no zero-inserted input). Threads: with at least
//! as many (image, group) units as threads, each worker takes whole units, so no two
//! workers write one output channel; with fewer (one image, one group: the usual
//! decoder), each chunk's GEMM is split over the workers (by pixel panels and, when those
//! are few, by rows), then its col2im by output channels.

use std::ops::Range;

use super::ConvTranspose2dParams;
use crate::gemm::{self, Gemm, PackB, PackedA, Panels, Tiles};
use crate::parallel::{for_each_task, SharedMut};
use crate::simd::{dispatch, Simd};
use crate::taps::tap_outputs;
use crate::{Activation, Isa};

/// Floats of one col block (m × chunk): 1 MiB, about what L2 keeps between the GEMM that
/// writes it and the col2im that reads it.
const COL_FLOATS: usize = 256 * 1024;

/// A conv_transpose2d prepared for the CPU: the weight transposed and packed once for `isa`.
pub struct ConvTranspose2dCpu {
    p: ConvTranspose2dParams,
    isa: Isa,
    tiles: Tiles,
    /// Per group: A = (m, k), the group's weight transposed, packed into mr-row panels.
    a: PackedA,
    /// (c_out)
    bias: Option<Vec<f32>>,
    /// Input pixels per GEMM chunk: a multiple of nr, or all of them.
    chunk: usize,
}

impl ConvTranspose2dCpu {
    /// Prepares the op for `isa`. Panics on invalid params, a weight or bias of the wrong
    /// length, or an ISA this CPU lacks.
    pub fn new(
        p: &ConvTranspose2dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        isa: Isa,
    ) -> ConvTranspose2dCpu {
        p.validate().expect("ConvTranspose2dCpu: invalid params");
        assert!(
            isa.is_supported(),
            "ConvTranspose2dCpu: this CPU cannot run {isa}"
        );
        // weight: (c_in, cg_out, kh, kw) = per group a (k, m) row-major matrix
        let [c_in, cg_out, kh, kw] = p.weight_shape();
        let (m, k) = (cg_out * kh * kw, c_in / p.groups);
        assert_eq!(weight.len(), c_in * m, "ConvTranspose2dCpu: weight length");
        bias.inspect(|b| assert_eq!(b.len(), p.c_out, "ConvTranspose2dCpu: bias length"));
        // a: (groups, m, k), a[g][r][ci] = weight[g·k + ci][r]
        let mut a = vec![0.0; p.groups * m * k];
        for (a_g, w_g) in a.chunks_exact_mut(m * k).zip(weight.chunks_exact(k * m)) {
            for (ci, w_row) in w_g.chunks_exact(m).enumerate() {
                for (r, &v) in w_row.iter().enumerate() {
                    a_g[r * k + ci] = v;
                }
            }
        }
        let tiles = gemm::tiles(isa);
        let npix = p.h * p.w;
        let chunk = (COL_FLOATS / m / tiles.nr * tiles.nr)
            .max(tiles.nr)
            .min(npix);
        ConvTranspose2dCpu {
            p: *p,
            isa,
            tiles,
            a: PackedA::new(&a, p.groups, m, k, &tiles),
            bias: bias.map(<[f32]>::to_vec),
            chunk,
        }
    }

    /// Floats of one worker's scratch: (its col block, its B-packing buffer).
    fn per_worker(&self) -> (usize, usize) {
        let panels = Panels::new(self.chunk, &self.tiles);
        (
            self.a.m * self.chunk,
            gemm::scratch_per_worker(&self.tiles, self.a.k, &panels),
        )
    }

    /// Floats of scratch that `run` needs with `threads` threads: a col block and a
    /// B-packing buffer per thread.
    pub fn scratch_len(&self, threads: usize) -> usize {
        let (col, pack) = self.per_worker();
        threads.max(1) * (col + pack)
    }

    /// y = act(conv_transpose2d(x) + bias). Allocates nothing, locks nothing.
    pub fn run(
        &self,
        x: &[f32],
        act: Activation,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        // x: (n, c_in, h, w)  y: (n, c_out, oh, ow)  scratch: (threads, col + pack)
        let p = &self.p;
        assert_eq!(x.len(), p.in_len(), "ConvTranspose2dCpu: x length");
        assert_eq!(y.len(), p.out_len(), "ConvTranspose2dCpu: y length");
        let threads = threads.max(1);
        assert!(
            scratch.len() >= self.scratch_len(threads),
            "ConvTranspose2dCpu: scratch too short"
        );
        let (col_len, pack_len) = self.per_worker();
        let job = Job {
            op: self,
            x,
            y: SharedMut::new(y),
            act,
            scratch: SharedMut::new(scratch),
            col_len,
            pack_len,
        };
        let units = p.n * p.groups;
        let cg_out = p.c_out / p.groups;
        if units >= threads {
            // Whole units per worker: each writes only its units' output channels.
            let workers = threads.min(units);
            for_each_task(threads, workers, |wk| {
                for unit in units * wk / workers..units * (wk + 1) / workers {
                    for pix in self.chunks() {
                        let panels = Panels::new(pix.len(), &self.tiles);
                        // SAFETY: worker wk's col block, packing buffer and units are its own.
                        unsafe {
                            job.gemm(unit, &pix, 0..self.a.panels(), 0..panels.len(), wk, wk);
                            job.col2im(unit, &pix, 0..cg_out, wk);
                        }
                    }
                }
            });
            return;
        }
        for unit in 0..units {
            for pix in self.chunks() {
                let panels = Panels::new(pix.len(), &self.tiles);
                // Split the rows too when there are too few pixel panels to share.
                let m_panels = self.a.panels();
                let m_chunks = if panels.len() < 4 * threads {
                    threads.min(m_panels)
                } else {
                    1
                };
                gemm::for_each_panel_range(threads, m_chunks, panels.len(), |wk, mc, cols| {
                    let rows = m_panels * mc / m_chunks..m_panels * (mc + 1) / m_chunks;
                    // SAFETY: the workers write disjoint tiles of worker 0's col block, each
                    // packing into its own buffer.
                    unsafe { job.gemm(unit, &pix, rows, cols, 0, wk) };
                });
                let tasks = threads.min(cg_out);
                for_each_task(threads, tasks, |t| {
                    let channels = cg_out * t / tasks..cg_out * (t + 1) / tasks;
                    // SAFETY: the GEMM is done; tasks own disjoint output channels.
                    unsafe { job.col2im(unit, &pix, channels, 0) };
                });
            }
        }
    }

    /// The input pixel ranges the GEMM takes one at a time.
    fn chunks(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let npix = self.p.h * self.p.w;
        (0..npix)
            .step_by(self.chunk)
            .map(move |s| s..(s + self.chunk).min(npix))
    }
}

/// One `run`: the op, its buffers, and where each worker's scratch lies.
struct Job<'a> {
    op: &'a ConvTranspose2dCpu,
    x: &'a [f32],
    /// y: (n, c_out, oh, ow)
    y: SharedMut<'a>,
    act: Activation,
    /// (workers, col_len + pack_len): each worker's col block, then its B-packing buffer.
    scratch: SharedMut<'a>,
    col_len: usize,
    pack_len: usize,
}

impl Job<'_> {
    /// Worker wk's col block: (m, chunk) floats.
    fn col(&self, wk: usize) -> *mut f32 {
        self.scratch
            .as_mut_ptr()
            .wrapping_add(wk * (self.col_len + self.pack_len))
    }

    /// Rows `m_panels` (A panels) and columns `cols` (pixel panels of chunk `pix`) of
    /// unit (image, group)'s col block, into worker `col_of`'s col block.
    ///
    /// # Safety
    /// `run` asserted the scratch for every worker index passed; no other thread writes
    /// this call's tiles of the col block, or worker `wk`'s packing buffer, meanwhile.
    unsafe fn gemm(
        &self,
        unit: usize,
        pix: &Range<usize>,
        m_panels: Range<usize>,
        cols: Range<usize>,
        col_of: usize,
        wk: usize,
    ) {
        let op = self.op;
        let p = &op.p;
        let (img, g) = (unit / p.groups, unit % p.groups);
        let (k, npix) = (op.a.k, p.h * p.w);
        let b = Pixels {
            // x_g: (k, npix), the group's input channels
            x_g: &self.x[(img * p.c_in + g * k) * npix..][..k * npix],
            npix,
            first: pix.start,
            len: pix.len(),
        };
        let panels = Panels::new(pix.len(), &op.tiles);
        // SAFETY: inside the scratch `run` asserted (the caller's contract).
        let pack = unsafe {
            std::slice::from_raw_parts_mut(self.col(wk).add(self.col_len), self.pack_len)
        };
        let job = Gemm {
            isa: op.isa,
            tiles: op.tiles,
            a: op.a.group(g),
            m: op.a.m,
            k,
            b: &b,
            panels: &panels,
            c: self.col(col_of),
            ldc: pix.len(),
            bias: std::ptr::null(),
            residual: std::ptr::null(),
            act: Activation::None,
        };
        // SAFETY: the ISA was checked in `new`; C is the (m, pix.len()) col block, which
        // the caller lets this call write; pack holds scratch_per_worker floats.
        unsafe { job.run(m_panels, cols, pack) };
    }

    /// Adds chunk `pix`'s col block (worker `col_of`'s) into output channels `channels`
    /// of unit (image, group): zeroing them first at the first chunk, adding the bias and
    /// applying the activation after the last.
    ///
    /// # Safety
    /// The col block holds this chunk's GEMM; no other thread writes these channels.
    unsafe fn col2im(
        &self,
        unit: usize,
        pix: &Range<usize>,
        channels: Range<usize>,
        col_of: usize,
    ) {
        let op = self.op;
        let p = &op.p;
        let (img, g) = (unit / p.groups, unit % p.groups);
        let [_, c_out, oh, ow] = p.output_shape();
        let cg_out = c_out / p.groups;
        // SAFETY: the col block holds m × pix.len() floats, written by the GEMM.
        let col = unsafe { std::slice::from_raw_parts(self.col(col_of), op.a.m * pix.len()) };
        for c in channels {
            let co = g * cg_out + c;
            // SAFETY: channel co of image img is inside y, and this call's alone.
            let y_c = unsafe {
                std::slice::from_raw_parts_mut(
                    self.y.as_mut_ptr().add((img * c_out + co) * oh * ow),
                    oh * ow,
                )
            };
            let taps = p.kh * p.kw;
            let col_c = &col[c * taps * pix.len()..][..taps * pix.len()];
            let bias = op.bias.as_ref().map_or(0.0, |b| b[co]);
            let last = pix.end == p.h * p.w;
            // SAFETY: dispatch! checks the ISA; the body takes slices.
            unsafe {
                dispatch!(
                    op.isa,
                    channel_body(p, pix, col_c, y_c, bias, last.then_some(self.act))
                )
            };
        }
    }
}

/// One output channel's part of col2im (`Job::col2im`). col_c: (kh·kw, pix.len())
/// y_c: (oh, ow). Needs S's features.
#[inline(always)]
unsafe fn channel_body<S: Simd>(
    p: &ConvTranspose2dParams,
    pix: &Range<usize>,
    col_c: &[f32],
    y_c: &mut [f32],
    bias: f32,
    act: Option<Activation>,
) {
    let [oh, ow] = p.output_hw();
    let ([sh, sw], [ph, pw], [dh, dw]) = (p.stride, p.pad, p.dilation);
    if pix.start == 0 {
        y_c.fill(0.0);
    }
    // The chunk's input rows; the first and last may be partial.
    let rows = pix.start / p.w..(pix.end - 1) / p.w + 1;
    for ky in 0..p.kh {
        // Input rows whose tap ky lands inside the output.
        let valid_y = tap_outputs(ky, sh, ph, dh, oh);
        for kx in 0..p.kw {
            let valid_x = tap_outputs(kx, sw, pw, dw, ow);
            let col_t = &col_c[(ky * p.kw + kx) * pix.len()..][..pix.len()];
            for iy in rows.start.max(valid_y.start)..rows.end.min(valid_y.end) {
                // This row's pixels in the chunk, as columns ix.
                let lo = pix.start.max(iy * p.w) - iy * p.w;
                let hi = pix.end.min((iy + 1) * p.w) - iy * p.w;
                let (lo, hi) = (lo.max(valid_x.start), hi.min(valid_x.end));
                if lo >= hi {
                    continue;
                }
                let y_row = &mut y_c[(iy * sh + ky * dh - ph) * ow..][..ow];
                let src = &col_t[iy * p.w + lo - pix.start..][..hi - lo];
                let first = lo * sw + kx * dw - pw;
                if sw == 1 {
                    for (o, v) in y_row[first..][..hi - lo].iter_mut().zip(src) {
                        *o += v;
                    }
                } else {
                    for (o, v) in y_row[first..].iter_mut().step_by(sw).zip(src) {
                        *o += v;
                    }
                }
            }
        }
    }
    if let Some(act) = act {
        bias_act::<S>(y_c, bias, act);
    }
}

/// y = act(y + bias), S::LANES at a time, then a scalar tail.
#[inline(always)]
unsafe fn bias_act<S: Simd>(y: &mut [f32], bias: f32, act: Activation) {
    let b = S::splat(bias);
    let mut chunks = y.chunks_exact_mut(S::LANES);
    for v in &mut chunks {
        let ptr = v.as_mut_ptr();
        S::store(ptr, S::act(S::add(S::load(ptr), b), act));
    }
    for v in chunks.into_remainder() {
        *v = act.apply(*v + bias);
    }
}

/// B of one chunk: input pixels first..first + len of the group's k channels, as a
/// (k, len) matrix read straight from x.
struct Pixels<'a> {
    /// (k, npix)
    x_g: &'a [f32],
    npix: usize,
    first: usize,
    len: usize,
}

impl PackB for Pixels<'_> {
    fn pack(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        let valid = width.min(self.len - start);
        for (r, row) in dst.chunks_exact_mut(width).take(kc).enumerate() {
            let src = &self.x_g[(k0 + r) * self.npix + self.first + start..][..valid];
            row[..valid].copy_from_slice(src);
            row[valid..].fill(0.0);
        }
    }

    /// In place, as conv2d's 1×1 GEMM, except a panel cut by the chunk's end: packed.
    fn direct(&self, k0: usize, start: usize, width: usize) -> Option<(*const f32, usize)> {
        (start + width <= self.len).then(|| {
            (
                self.x_g[k0 * self.npix + self.first + start..].as_ptr(),
                self.npix,
            )
        })
    }
}
