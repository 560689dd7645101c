//! The microkernels, written once over the vector layer (`crate::simd::Simd`): an MR × NR
//! tile of C in MR·NV accumulators (NR = NV·LANES); per k one NR-wide row of B (NV loads)
//! and MR broadcasts of A. The instances:
//!
//! - AVX-512F: 8 × 32 (16 zmm accumulators) and 8 × 16, and an 8 × 8 tail in ymm (Zen 4
//!   runs a ymm FMA at twice the zmm rate, so an 8-wide tail costs half a 16-wide one);
//! - AVX2 + FMA: 6 × 16 (12 ymm of 16 registers: 2 hold the B row, 1 the broadcast A
//!   value) and 6 × 8;
//! - scalar: 4 × 8 in plain floats (LLVM vectorises it with the target's baseline), for
//!   `Isa::Scalar` and CPUs off x86-64.
//!
//! The column tails (`super::tail`, fewer than 8 columns) hold the rows in one vector
//! instead, which this shape cannot express.

use super::Store;
use crate::simd::{Scalar, Simd};

/// MR rows × NV·LANES columns of C.
///
/// # Safety
/// The CPU has S's features; see `super::Ukernel` for the pointers.
#[inline(always)]
unsafe fn kernel<S: Simd, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    s: &Store,
) {
    let mut acc = [[S::splat(0.0); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        if s.prefetch_a {
            // A hint, never a fault: past the panel's end it fetches nothing useful.
            S::prefetch(a.wrapping_add(super::PREFETCH_A));
        }
        let mut bv = [S::splat(0.0); NV];
        for (v, bv) in bv.iter_mut().enumerate() {
            // SAFETY: b points at a row of at least NV·LANES floats (caller).
            *bv = S::load(b.add(S::LANES * v));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: a points at MR floats of this k (caller).
            let av = S::splat(*a.add(r));
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = S::fma(av, bv, *acc);
            }
        }
        // One past the last k at most; not dereferenced after the loop.
        a = a.add(MR);
        b = b.add(ldb);
    }
    for (r, acc) in acc.iter().enumerate() {
        // The tile's MR rows × NV·LANES columns are inside C / residual, and bias has MR
        // entries when non-null (caller).
        let c = s.c.add(r * s.ldc);
        let bias = match s.epilogue && !s.bias.is_null() {
            true => S::splat(*s.bias.add(r)),
            false => S::splat(0.0),
        };
        for (v, &acc) in acc.iter().enumerate() {
            let at = S::LANES * v;
            let mut t = acc;
            if s.load_c {
                t = S::add(t, S::load(c.add(at)));
            }
            if s.epilogue {
                t = S::add(t, bias);
                if !s.residual.is_null() {
                    t = S::add(t, S::load(s.residual.add(r * s.ldc + at)));
                }
                t = S::act(t, s.act);
            }
            S::store(c.add(at), t);
        }
    }
}

/// Declares `Ukernel`s: each runs `kernel::<S, MR, NV>` under `run`'s target features.
macro_rules! ukernels {
    ($($(#[$cfg:meta])* $name:ident = $run:ident($s:ty, $mr:literal, $nv:literal);)*) => {$(
        $(#[$cfg])*
        /// # Safety
        /// See `super::Ukernel`; the CPU has the vector type's features.
        pub(super) unsafe fn $name(kc: usize, a: *const f32, b: *const f32, ldb: usize, s: &Store) {
            // SAFETY: forwarded contract; the caller checked the ISA.
            unsafe { $run(#[inline(always)] || kernel::<$s, $mr, $nv>(kc, a, b, ldb, s)) }
        }
    )*};
}

#[cfg(target_arch = "x86_64")]
use crate::simd::{run_avx2, run_avx512, Avx2, Avx512};

/// Runs `f` as it is: the scalar kernels need no target features.
///
/// # Safety
/// None beyond `f`'s own.
#[inline(always)]
unsafe fn run_plain<R>(f: impl FnOnce() -> R) -> R {
    f()
}

ukernels! {
    #[cfg(target_arch = "x86_64")]
    gemm_f32_avx512_8x32 = run_avx512(Avx512, 8, 2);
    #[cfg(target_arch = "x86_64")]
    gemm_f32_avx512_8x16 = run_avx512(Avx512, 8, 1);
    // AVX-512F implies AVX2 and FMA (every AVX-512F CPU has them, and Rust's `avx512f`
    // feature enables both): the 8-column tail runs in ymm.
    #[cfg(target_arch = "x86_64")]
    gemm_f32_avx512_8x8 = run_avx512(Avx2, 8, 1);
    #[cfg(target_arch = "x86_64")]
    gemm_f32_avx2_6x16 = run_avx2(Avx2, 6, 2);
    #[cfg(target_arch = "x86_64")]
    gemm_f32_avx2_6x8 = run_avx2(Avx2, 6, 1);
    gemm_f32_scalar_4x8 = run_plain(Scalar, 4, 8);
}
