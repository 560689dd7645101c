//! The vector layer every CPU kernel is written against.
//!
//! A kernel body is written once, generic over [`Simd`], and `dispatch!` instantiates it
//! for AVX-512F (16 lanes), AVX2+FMA (8 lanes) or portable scalar code (1 lane: the only
//! path off x86-64), running the SIMD ones under their `#[target_feature]`. Bodies and
//! `Simd` methods are `#[inline(always)]` so the whole kernel is compiled with the features
//! of the `run_*` wrapper it is inlined into.

use std::ops::Range;

use crate::Activation;

/// Runs `kernel::<S>(args)` with S the vector type of `isa`, under its target features.
/// Panics when this CPU cannot run `isa`. Used inside an `unsafe` block: the caller
/// vouches for the kernel's own pointer preconditions.
macro_rules! dispatch {
    ($isa:expr, $kernel:ident($($arg:expr),* $(,)?)) => {{
        use $crate::simd as v;
        let isa: $crate::Isa = $isa;
        assert!(isa.is_supported(), "this CPU cannot run {isa}");
        match isa {
            #[cfg(target_arch = "x86_64")]
            $crate::Isa::Avx512 => v::run_avx512(#[inline(always)] || $kernel::<v::Avx512>($($arg),*)),
            #[cfg(target_arch = "x86_64")]
            $crate::Isa::Avx2 => v::run_avx2(#[inline(always)] || $kernel::<v::Avx2>($($arg),*)),
            _ => $kernel::<v::Scalar>($($arg),*),
        }
    }};
}
pub(crate) use dispatch;

/// Runs `f` with AVX-512F enabled, so the `#[inline(always)]` kernel inlined into it is
/// compiled for AVX-512F.
///
/// # Safety
/// This CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// As [`run_avx512`], for AVX2 + FMA.
///
/// # Safety
/// This CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// A vector of `LANES` f32. Every method is `unsafe`: it needs the implementor's CPU
/// features (dispatch! checks them), and pointers must be valid for the lanes it touches.
pub(crate) trait Simd {
    const LANES: usize;
    type V: Copy;

    unsafe fn splat(x: f32) -> Self::V;
    /// Lanes from `p[0..LANES]`.
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Lane j from `p[j * stride]` for j in `lanes`, `fill` elsewhere; only those lanes are
    /// read, so `p` itself may point outside the buffer (`lanes.end <= LANES`).
    unsafe fn load_lanes(
        p: *const f32,
        stride: usize,
        lanes: Range<usize>,
        fill: Self::V,
    ) -> Self::V;
    /// Stores lanes `0..n` to `p[0..n]` (`n <= LANES`).
    unsafe fn store_part(p: *mut f32, n: usize, v: Self::V);
    /// Lane j from `p[2j]`: reads exactly `p[0..2 * LANES - 1]`.
    unsafe fn load_even(p: *const f32) -> Self::V;
    /// Lane j from `p[j * stride]`, every lane.
    unsafe fn gather(p: *const f32, stride: usize) -> Self::V;
    /// Lanes from the i32s `p[0..LANES]`, each rounded to f32 as `as f32` rounds it.
    unsafe fn load_i32(p: *const i32) -> Self::V;
    /// Lanes, integers in 0..=255, stored as bytes to `p[0..LANES]`.
    unsafe fn store_u8(p: *mut u8, v: Self::V);
    /// Lanes from the bytes `p[0..LANES]`, as f32.
    unsafe fn load_u8(p: *const u8) -> Self::V;
    /// (Lanes 0, 2, 4, … of a then b; lanes 1, 3, 5, … of a then b): a stride-2 row's
    /// two phases from two vectors of it.
    unsafe fn unzip(a: Self::V, b: Self::V) -> (Self::V, Self::V);
    /// Stores lanes `lanes` of v to `p[lanes]`, only those: `p` itself may point outside
    /// the buffer (`lanes.end <= LANES`). Through a buffer here; the x86 ISAs mask.
    #[inline(always)]
    unsafe fn store_lanes(p: *mut f32, lanes: Range<usize>, v: Self::V) {
        let mut all = [0.0f32; 16];
        Self::store(all.as_mut_ptr(), v);
        for l in lanes {
            *p.wrapping_add(l) = all[l];
        }
    }
    /// As `store_lanes`, the lanes (integers in 0..=255) as bytes, as `store_u8` stores
    /// them.
    #[inline(always)]
    unsafe fn store_u8_lanes(p: *mut u8, lanes: Range<usize>, v: Self::V) {
        let mut all = [0u8; 16];
        Self::store_u8(all.as_mut_ptr(), v);
        for l in lanes {
            *p.wrapping_add(l) = all[l];
        }
    }

    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// a * b + c (fused where the ISA has FMA).
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `a < b ? x : y` lane-wise (y where either is NaN).
    unsafe fn select_lt(a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    /// x86 `maxps`: `a > b ? a : b`, so b when either is NaN.
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// x86 `minps`: `a < b ? a : b`, so b when either is NaN.
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Max pool's rule: NaN once either `acc` or `v` has been NaN, else the larger.
    unsafe fn max_nan(acc: Self::V, v: Self::V) -> Self::V;
    /// Round to the nearest integer, ties to even (x86's rounding mode; quantization
    /// rounds as PyTorch's `torch.round` does).
    unsafe fn round(v: Self::V) -> Self::V;
    /// 2^n for integral n in -126..=127.
    unsafe fn pow2i(n: Self::V) -> Self::V;
    unsafe fn reduce_add(v: Self::V) -> f32;
    /// A hint to bring the cache line holding `p` into L1; a no-op where there is none. `p`
    /// need not point into anything: a prefetch never faults.
    #[inline(always)]
    unsafe fn prefetch(_p: *const f32) {}
    /// The largest lane; NaN lanes give an unspecified lane.
    unsafe fn reduce_max(v: Self::V) -> f32;

    /// `act` lane-wise: for the exact activations equal bit for bit to `Activation::apply`
    /// (`max(0, v)` keeps NaN and -0.0 as `v < 0 ? 0 : v` does, and `min(6, ·)` keeps NaN
    /// as `clamp` does); for the others this is the definition, which `apply` runs on one
    /// lane.
    #[inline(always)]
    unsafe fn act(v: Self::V, act: Activation) -> Self::V {
        let (zero, one) = (Self::splat(0.0), Self::splat(1.0));
        let relu6 = |x| Self::min(Self::splat(6.0), Self::max(zero, x));
        match act {
            Activation::None => v,
            Activation::Relu => Self::max(zero, v),
            Activation::Relu6 => relu6(v),
            Activation::Clamp { min, max } => {
                Self::min(Self::splat(max), Self::max(Self::splat(min), v))
            }
            Activation::LeakyRelu(slope) => {
                Self::select_lt(zero, v, v, Self::mul(v, Self::splat(slope)))
            }
            Activation::HardSigmoid => Self::hard_sigmoid(v),
            Activation::HardSwish => Self::mul(v, Self::hard_sigmoid(v)),
            Activation::Elu(alpha) => {
                let neg = Self::mul(
                    Self::splat(alpha),
                    Self::add(Self::exp(v), Self::splat(-1.0)),
                );
                Self::select_lt(zero, v, v, neg)
            }
            Activation::Sigmoid => Self::div(one, Self::add(one, Self::exp(Self::neg(v)))),
            Activation::Silu => Self::div(v, Self::add(one, Self::exp(Self::neg(v)))),
            Activation::Tanh => Self::tanh(v),
            Activation::Gelu => Self::mul(v, Self::normal_cdf(v)),
            Activation::GeluTanh => {
                // √(2/π)·(v + 0.044715·v³)
                let v3 = Self::mul(Self::mul(v, v), v);
                let inner = Self::mul(
                    Self::splat(0.797_884_6),
                    Self::fma(Self::splat(0.044_715), v3, v),
                );
                let half_v = Self::mul(Self::splat(0.5), v);
                Self::fma(half_v, Self::tanh(inner), half_v)
            }
        }
    }

    /// relu6(v + 3) / 6. A helper, not `act(v, HardSigmoid)`: a recursive `act` cannot be
    /// inlined whole, so LLVM emits it out of line without the kernel's target features,
    /// and every intrinsic in it becomes a call: every fused epilogue then ran 2–10× slower
    /// (`layer_speed`, avx512, 1 thread, all convs: MobileNetV3-Large 29 → 13 ms,
    /// EfficientNet-B0 165 → 23 ms with silu).
    #[inline(always)]
    unsafe fn hard_sigmoid(v: Self::V) -> Self::V {
        let relu6 = Self::min(
            Self::splat(6.0),
            Self::max(Self::splat(0.0), Self::add(v, Self::splat(3.0))),
        );
        // relu6 is +0, NaN or in [2^-22, 6]: v + 3 is exact near -3, where floats are
        // 2^-22 apart, and never -0.
        Self::div6(relu6)
    }

    /// v / 6, correctly rounded, for v = +0, NaN or v in [2^-24, 6] (hardsigmoid's relu6
    /// outputs). Outside, the x86 form may differ: by an ulp where the quotient is
    /// subnormal, +0 for -0, NaN for ±inf.
    #[inline(always)]
    unsafe fn div6(v: Self::V) -> Self::V {
        Self::div(v, Self::splat(6.0))
    }

    /// -v
    #[inline(always)]
    unsafe fn neg(v: Self::V) -> Self::V {
        Self::mul(v, Self::splat(-1.0))
    }

    /// tanh v as 1 − 2 / (e^2v + 1): ±1 at ±inf, NaN kept; ~1e-7 absolute near 0.
    #[inline(always)]
    unsafe fn tanh(v: Self::V) -> Self::V {
        let e = Self::exp(Self::add(v, v));
        let two = Self::splat(2.0);
        Self::add(
            Self::splat(1.0),
            Self::neg(Self::div(two, Self::add(e, Self::splat(1.0)))),
        )
    }

    /// Φ(v), the standard normal CDF, through Abramowitz & Stegun 7.1.26's erf (1.5e-7
    /// absolute): q = ½·t·P(t)·e^(−v²/2) with t = 1 / (1 + p·|v|/√2) is Φ(−|v|) without
    /// cancellation, so the negative tail keeps its relative accuracy.
    #[inline(always)]
    unsafe fn normal_cdf(v: Self::V) -> Self::V {
        let abs = Self::max(v, Self::neg(v));
        let z = Self::mul(abs, Self::splat(std::f32::consts::FRAC_1_SQRT_2));
        let t = Self::div(
            Self::splat(1.0),
            Self::fma(Self::splat(0.327_591_1), z, Self::splat(1.0)),
        );
        let mut p = Self::splat(1.061_405_4);
        for c in [-1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6] {
            p = Self::fma(p, t, Self::splat(c));
        }
        let e = Self::exp(Self::neg(Self::mul(z, z)));
        let q = Self::mul(Self::mul(Self::splat(0.5), Self::mul(t, p)), e);
        Self::select_lt(
            v,
            Self::splat(0.0),
            q,
            Self::add(Self::splat(1.0), Self::neg(q)),
        )
    }

    /// e^v, within 2 ulp (Cephes' expf polynomial) over [-87.3, 88.3]; 0 below it and
    /// +inf above it (e^-inf = 0, e^inf = inf, as the activations' limits need); NaN stays
    /// NaN. AVX-512 scales with `vscalefps` instead: the same bits inside that range, and
    /// the true value, over- or underflowed, outside it.
    #[inline(always)]
    unsafe fn exp(v: Self::V) -> Self::V {
        // minps/maxps return their second operand on NaN: v's NaN survives the clamp.
        let (low, high) = (Self::splat(-87.3), Self::splat(88.3));
        let x = v;
        let (n, p) = Self::exp_parts(Self::min(high, Self::max(low, v)));
        let e = Self::mul(p, Self::pow2i(n));
        let e = Self::select_lt(high, x, Self::splat(f32::INFINITY), e);
        Self::select_lt(x, low, Self::splat(0.0), e)
    }

    /// (n, e^r) with v = n·ln 2 + r, n integral and |r| ≤ ln 2 / 2: e^v = e^r · 2^n.
    #[inline(always)]
    unsafe fn exp_parts(v: Self::V) -> (Self::V, Self::V) {
        let n = Self::round(Self::mul(v, Self::splat(std::f32::consts::LOG2_E)));
        // r = v - n*ln2, with ln2 split in two so the product is exact.
        let r = Self::fma(n, Self::splat(-0.693_359_4), v);
        let r = Self::fma(n, Self::splat(2.121_944_4e-4), r);
        let mut p = Self::splat(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = Self::fma(p, r, Self::splat(c));
        }
        (
            n,
            Self::fma(p, Self::mul(r, r), Self::add(r, Self::splat(1.0))),
        )
    }
}

/// Portable code, one lane.
pub(crate) struct Scalar;

impl Simd for Scalar {
    const LANES: usize = 1;
    type V = f32;

    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        *p = v
    }
    #[inline(always)]
    unsafe fn load_lanes(p: *const f32, _: usize, lanes: Range<usize>, fill: f32) -> f32 {
        if lanes.contains(&0) {
            *p
        } else {
            fill
        }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, n: usize, v: f32) {
        if n > 0 {
            *p = v
        }
    }
    #[inline(always)]
    unsafe fn load_even(p: *const f32) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn gather(p: *const f32, _: usize) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> f32 {
        *p as f32
    }
    #[inline(always)]
    unsafe fn store_u8(p: *mut u8, v: f32) {
        *p = v as u8
    }
    #[inline(always)]
    unsafe fn load_u8(p: *const u8) -> f32 {
        f32::from(*p)
    }
    #[inline(always)]
    unsafe fn unzip(a: f32, b: f32) -> (f32, f32) {
        (a, b)
    }
    #[inline(always)]
    unsafe fn add(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn div(a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    unsafe fn select_lt(a: f32, b: f32, x: f32, y: f32) -> f32 {
        if a < b {
            x
        } else {
            y
        }
    }
    #[inline(always)]
    unsafe fn fma(a: f32, b: f32, c: f32) -> f32 {
        // Not mul_add: without FMA hardware that is a slow libm call.
        a * b + c
    }
    #[inline(always)]
    unsafe fn max(a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn min(a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn max_nan(acc: f32, v: f32) -> f32 {
        if v > acc || v.is_nan() {
            v
        } else {
            acc
        }
    }
    #[inline(always)]
    unsafe fn round(v: f32) -> f32 {
        v.round_ties_even()
    }
    #[inline(always)]
    unsafe fn pow2i(n: f32) -> f32 {
        f32::from_bits(((n as i32 + 127) << 23) as u32)
    }
    #[inline(always)]
    unsafe fn reduce_add(v: f32) -> f32 {
        v
    }
    #[inline(always)]
    unsafe fn reduce_max(v: f32) -> f32 {
        v
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86;

/// out[at..at + n] = act(acc + residual[at..at + n]), residual optional, n ≤ LANES: the
/// fused epilogue's store, masked for a short last chunk (direct and depthwise convs).
///
/// # Safety
/// The CPU has S's features; at + n ≤ out.len() and, if given, ≤ residual.len().
#[inline(always)]
pub(crate) unsafe fn store_epilogue<S: Simd>(
    mut acc: S::V,
    residual: Option<&[f32]>,
    act: Activation,
    at: usize,
    n: usize,
    out: &mut [f32],
) {
    if let Some(r) = residual {
        acc = S::add(acc, S::load_lanes(r[at..].as_ptr(), 1, 0..n, S::splat(0.0)));
    }
    let v = S::act(acc, act);
    if n == S::LANES {
        S::store(out[at..].as_mut_ptr(), v);
    } else {
        S::store_part(out[at..].as_mut_ptr(), n, v);
    }
}
