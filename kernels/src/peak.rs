//! The FMA peak of this CPU, measured: what the kernel benches hold their FLOP/s against.
//! A datasheet peak assumes a clock the VM may not give; this is what the cores deliver.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::simd::{dispatch, Simd};
use crate::Isa;

/// Independent FMA chains per thread: at least FMA latency × FMA units (4 × 2 on the
/// Intel Xeons and Zen 4) keep every unit busy, with slack for the loop.
const CHAINS: usize = 12;

/// GFLOP/s of `threads` threads (own ones, not the kernel pool) each running `CHAINS`
/// independent FMA chains of `isa`'s vectors for about `time`, summed over the threads.
/// Panics when this CPU cannot run `isa`.
pub fn fma_peak(isa: Isa, threads: usize, time: Duration) -> f64 {
    assert!(isa.is_supported(), "fma_peak: this CPU cannot run {isa}");
    let threads = threads.max(1);
    // Calibrate on one thread: iterations for about `time`.
    let mut iters = 1 << 10;
    let per_iter = loop {
        let t = Instant::now();
        run(isa, iters);
        let took = t.elapsed();
        if took >= time / 20 {
            break took.as_secs_f64() / iters as f64;
        }
        iters *= 4;
    };
    let iters = ((time.as_secs_f64() / per_iter) as usize).max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| run(isa, iters));
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let flops = threads * iters * CHAINS * isa_lanes(isa) * 2;
    flops as f64 / secs / 1e9
}

fn isa_lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Scalar => 1,
    }
}

fn run(isa: Isa, iters: usize) -> f32 {
    // SAFETY: fma_peak checked the ISA; chains touches no memory.
    black_box(unsafe { dispatch!(isa, chains(black_box(iters))) })
}

/// `iters` rounds of one FMA on each of `CHAINS` accumulators.
///
/// # Safety
/// The CPU has S's features.
#[inline(always)]
unsafe fn chains<S: Simd>(iters: usize) -> f32 {
    // A multiplier per chain, hidden from the optimiser: with one shared, LLVM merged two
    // of the chains.
    let seeds: [f32; CHAINS] = black_box(std::array::from_fn(|i| 1.0 - i as f32 * 1e-7));
    let mut acc = seeds.map(|s| S::splat(s));
    let m = seeds.map(|s| S::splat(s));
    let a = S::splat(1e-6);
    for _ in 0..iters {
        for (acc, &m) in acc.iter_mut().zip(&m) {
            *acc = S::fma(*acc, m, a);
        }
    }
    acc.iter().map(|&v| S::reduce_add(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_a_plausible_rate() {
        // Every ISA this CPU has: positive and finite, and (loosely, machines are shared)
        // no slower than a 500 MHz core's one FMA per cycle would give.
        for isa in Isa::available() {
            let g = fma_peak(isa, 1, Duration::from_millis(20));
            let floor = 0.5 * 2.0 * isa_lanes(isa) as f64;
            assert!(g.is_finite() && g > floor, "{isa}: {g} GFLOP/s");
        }
    }
}
