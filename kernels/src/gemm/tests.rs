//! The GEMM's loops against a plain triple loop, in both loop orders (`Tiles::mc`), with B
//! packed and read in place, over shapes that cut every panel, block and k-block.

use super::{kc_block, scratch_per_worker, tiles, Gemm, PackB, PackedA, Panels, Tiles};
use crate::testing::{assert_close, Tol};
use crate::{Activation, Isa};

/// A row-major (k, n) B, packed or read where it is.
struct Rows<'a> {
    b: &'a [f32],
    n: usize,
    in_place: bool,
}

impl PackB for Rows<'_> {
    fn pack(&self, k0: usize, kc: usize, start: usize, width: usize, dst: &mut [f32]) {
        for kk in 0..kc {
            for j in 0..width {
                let col = start + j;
                dst[kk * width + j] = match col < self.n {
                    true => self.b[(k0 + kk) * self.n + col],
                    false => 0.0,
                };
            }
        }
    }

    fn direct(&self, k0: usize, start: usize, width: usize) -> Option<(*const f32, usize)> {
        (self.in_place && start + width <= self.n)
            .then(|| (self.b[k0 * self.n + start..].as_ptr(), self.n))
    }
}

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// C = relu(A·B + bias + residual) through `Gemm::run`, the m panels and columns split
/// into two calls as two workers would run them.
fn gemm(isa: Isa, t: Tiles, m: usize, k: usize, n: usize, in_place: bool) -> Vec<f32> {
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let (bias, residual) = (data(m, 3), data(m * n, 4));
    let packed = PackedA::new(&a, 1, m, k, &t);
    let panels = Panels::new(n, &t);
    let src = Rows { b: &b, n, in_place };
    let mut c = vec![f32::NAN; m * n];
    let job = Gemm {
        isa,
        tiles: t,
        a: packed.group(0),
        m,
        k,
        b: &src,
        panels: &panels,
        c: c.as_mut_ptr(),
        ldc: n,
        bias: bias.as_ptr(),
        residual: residual.as_ptr(),
        act: Activation::Relu,
    };
    let mut scratch = vec![0.0; scratch_per_worker(&t, k, &panels)];
    let (mp, np) = (packed.panels(), panels.len());
    for (rows, cols) in [
        (0..mp / 2, 0..np),
        (mp / 2..mp, 0..np / 2),
        (mp / 2..mp, np / 2..np),
    ] {
        // SAFETY: the ISA is supported; c, residual and bias hold m × n and m floats; the
        // three calls cover disjoint tiles.
        unsafe { job.run(rows, cols, &mut scratch) };
    }
    let mut expected = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|kk| f64::from(a[i * k + kk]) * f64::from(b[kk * n + j]))
                .sum();
            let v = dot + f64::from(bias[i]) + f64::from(residual[i * n + j]);
            expected[i * n + j] = v.max(0.0) as f32;
        }
    }
    assert_close(
        &c,
        &expected,
        Tol::max(1e-5, 1e-5),
        &format!("{isa} gemm {m}x{k}x{n}"),
    );
    c
}

#[test]
fn both_loop_orders_match_the_reference_and_each_other() {
    for isa in Isa::available() {
        let base = tiles(isa);
        // kc 64 so that k 150 takes three k-blocks; nc 64 so that n spans several blocks.
        let t = Tiles {
            kc: 64,
            nc: 64,
            ..base
        };
        for &(m, k, n) in &[(1, 1, 1), (19, 150, 77), (40, 64, 49), (70, 130, 200)] {
            for in_place in [false, true] {
                let a_in_l1 = gemm(isa, Tiles { mc: None, ..t }, m, k, n, in_place);
                for mc in [1, 3, 64] {
                    let b_in_l1 = gemm(isa, Tiles { mc: Some(mc), ..t }, m, k, n, in_place);
                    // The same k-blocks in the same order per tile: the same bits.
                    assert_close(&b_in_l1, &a_in_l1, Tol::BITS, &format!("{isa} mc {mc}"));
                }
            }
        }
        assert_eq!(kc_block(&t, 150), 50);
    }
}
