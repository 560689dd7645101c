//! The conv cases of kernels/tests/conv2d_cpu.rs and conv2d_winograd.rs: one conv's
//! inputs and its reference output (f64 sums), checked through `CpuConv` on an ISA and a
//! thread count, with the tolerance of the algorithm it picks.
//!
//! Tolerance: |got − want| ≤ 1e-5 · max|want| for every output. The GEMM sums k in f32, in
//! kc-blocks and with FMA, in another order than the reference's f64 sum: the rounding
//! error grows like √k · ε · |partial sums|, about 1e-6 of max|want| at k = 4608.
//!
//! Winograd F(4×4, 3×3) gets `REL_WINOGRAD` = 1e-4 instead: its transforms multiply
//! rounding errors by their entries (Bᵀ up to 5, Aᵀ up to 8, G down to 1/24, so up to
//! ~8 · 5 per axis before cancellation). Measured max|err| / max|y| against the f64
//! reference on the full-size ResNet-18 3×3 stride-1 layers with realistic data (x ~
//! relu(N(0,1)), w ~ N(0, 2/fan_in)): 4.6e-6 (64@56²), 7.0e-6 (128@28²), 9.0e-6 (256@14²),
//! 6.0e-6 (512@7²); im2col-gemm: ~3e-7. On the uniform [-1, 1) data of the tests it stays
//! under 2e-5 (`winograd_error_is_measured`). 1e-4 leaves 5× headroom and is still the
//! end-to-end budget of the fixtures, which pass with Winograd on. F(2×2, 3×3) gets
//! `REL_WINOGRAD2` = 1e-5, im2col's: its transforms only add and halve, measured ~1e-6
//! on the same layers and data.

use kestrel_kernels::conv2d::cpu::winograd::Tile;
use kestrel_kernels::conv2d::cpu::{ConvAlgorithm, CpuConv};
use kestrel_kernels::conv2d::{reference, Conv2dParams};
use kestrel_kernels::testing::{compare, Rng, Tol};
use kestrel_kernels::{Activation, Isa};

/// SIMD reorders the k-sum: rel 1e-5 of the largest output.
pub const REL: f64 = 1e-5;
/// Winograd's transforms amplify f32 rounding (see the module doc): rel 1e-4.
pub const REL_WINOGRAD: f64 = 1e-4;
/// F(2×2, 3×3)'s transforms hold only 0, ±1 and ±½, so they add a few roundings per
/// output, not an amplification: rel 1e-5, as im2col (see the module doc).
pub const REL_WINOGRAD2: f64 = 1e-5;

/// The epilogues the cases cycle through.
pub const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

/// One conv's inputs and its reference output without bias.
pub struct Case {
    pub p: Conv2dParams,
    pub x: Vec<f32>,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub residual: Vec<f32>,
    /// conv(x, w) without bias, f64 sums rounded once.
    pub y0: Vec<f32>,
}

impl Case {
    pub fn new(p: Conv2dParams, rng: &mut Rng) -> Case {
        p.validate().unwrap();
        let y_len: usize = p.output_shape().iter().product();
        let x = rng.vec(p.n * p.c_in * p.h * p.w);
        let w = rng.vec(p.weight_shape().iter().product());
        let mut y0 = vec![0.0; y_len];
        reference::conv2d(&p, &x, &w, None, &mut y0);
        Case {
            bias: rng.vec(p.c_out),
            residual: rng.vec(y_len),
            p,
            x,
            w,
            y0,
        }
    }

    /// act(y0 + bias + residual), in f64.
    pub fn want(&self, bias: bool, act: Activation, residual: bool) -> Vec<f32> {
        let plane = self.y0.len() / self.p.n / self.p.c_out;
        (0..self.y0.len())
            .map(|i| {
                let c = i / plane % self.p.c_out;
                let mut v = f64::from(self.y0[i]);
                if bias {
                    v += f64::from(self.bias[c]);
                }
                if residual {
                    v += f64::from(self.residual[i]);
                }
                act.apply(v as f32)
            })
            .collect()
    }

    /// max|pre-activation| / max|want|: the error scales with the sums before relu6
    /// clips them (uniform data over 2304 taps gives |sums| ~ 50, clipped to 6), so the
    /// tolerance is relative to the sums.
    pub fn clip_ratio(&self, bias: bool, act: Activation, residual: bool) -> f64 {
        let max = |v: &[f32]| v.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        let (pre, post) = (
            max(&self.want(bias, Activation::None, residual)),
            max(&self.want(bias, act, residual)),
        );
        if post > 0.0 {
            pre / post
        } else {
            1.0
        }
    }

    /// Runs `CpuConv` on `isa` with `threads` and checks it; NaN-filled y and scratch
    /// catch outputs never written and scratch read before it is packed.
    pub fn check(&self, isa: Isa, threads: usize, bias: bool, act: Activation, residual: bool) {
        let conv = CpuConv::new(&self.p, &self.w, bias.then_some(&self.bias[..]), isa, false);
        let mut y = vec![f32::NAN; self.y0.len()];
        let mut scratch = vec![f32::NAN; conv.scratch_len(threads)];
        let res = residual.then_some(&self.residual[..]);
        conv.run(&self.x, res, act, &mut y, &mut scratch, threads);
        let want = self.want(bias, act, residual);
        let rel = match conv.algorithm() {
            ConvAlgorithm::Winograd(Tile::F4x4) => REL_WINOGRAD,
            ConvAlgorithm::Winograd(Tile::F2x2) => REL_WINOGRAD2,
            _ => REL,
        };
        let tol = Tol::max(rel * self.clip_ratio(bias, act, residual), 0.0);
        if let Err(e) = compare(&y, &want, tol) {
            panic!(
                "{:?} {isa} threads {threads} bias {bias} {act:?} residual {residual} ({}): {e}",
                self.p,
                conv.name()
            );
        }
    }
}

/// A model conv at most `cap` pixels on a side (channels, kernel, stride kept), so the
/// 224×224 and 112×112 layers run in the reference at test speed.
pub fn capped(p: &Conv2dParams, cap: usize) -> Conv2dParams {
    Conv2dParams {
        h: p.h.min(cap),
        w: p.w.min(cap),
        ..*p
    }
}
