//! The portable microkernel: 4 rows × 8 columns in plain Rust (LLVM vectorises it with
//! whatever the target baseline has). Used for `Isa::Scalar` and on non-x86 CPUs.

use super::Store;

const MR: usize = 4;
const NR: usize = 8;

/// # Safety
/// See `super::Ukernel`.
pub unsafe fn gemm_f32_scalar_4x8(kc: usize, a: *const f32, b: *const f32, ldb: usize, s: &Store) {
    // SAFETY: the caller guarantees a: (kc, MR) and b: kc rows of NR floats, ldb apart.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, (kc.max(1) - 1) * ldb + NR),
        )
    };
    let mut acc = [[0.0f32; NR]; MR];
    for kk in 0..kc {
        let brow = &b[kk * ldb..][..NR];
        for (acc, &av) in acc.iter_mut().zip(&a[kk * MR..][..MR]) {
            for (c, &bv) in acc.iter_mut().zip(brow) {
                *c += av * bv;
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, &v) in acc.iter().enumerate() {
            // SAFETY: (r, j) is inside the MR × NR tile of C / residual / bias (caller).
            unsafe { s.put(r, j, v) };
        }
    }
}
