//! The FMA peak of this CPU, measured: what the kernel benches hold their FLOP/s against.
//! A datasheet peak assumes a clock the VM may not give; this is what the cores deliver.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::quantize::QIsa;
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
    let (iters, secs) = timed(threads, time, |iters| {
        run(isa, iters);
    });
    let flops = threads * iters * CHAINS * isa_lanes(isa) * 2;
    flops as f64 / secs / 1e9
}

/// Runs `work(iters)` on `threads` threads of their own at once, `iters` calibrated on one
/// thread first for about `time`; returns `iters` and the seconds the threads took.
fn timed(threads: usize, time: Duration, work: impl Fn(usize) + Sync) -> (usize, f64) {
    let mut iters = 1 << 10;
    let per_iter = loop {
        let t = Instant::now();
        work(iters);
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
            s.spawn(|| work(iters));
        }
    });
    (iters, start.elapsed().as_secs_f64())
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

/// Int8 GOPS (2 per multiply-add, as FLOPs count them) of `threads` threads each running
/// `CHAINS` independent `vpdpbusd` chains for about `time`; None for the paths without a
/// dot-product instruction. Panics when this CPU cannot run `qisa`.
pub fn dot_peak(qisa: QIsa, threads: usize, time: Duration) -> Option<f64> {
    assert!(qisa.is_supported(), "dot_peak: this CPU cannot run {qisa}");
    let lanes = match qisa {
        QIsa::Avx512Vnni => 16,
        QIsa::AvxVnni => 8,
        _ => return None,
    };
    let threads = threads.max(1);
    let (iters, secs) = timed(threads, time, |iters| {
        black_box(dot_chains(qisa, black_box(iters)));
    });
    let ops = threads * iters * CHAINS * lanes * 4 * 2;
    Some(ops as f64 / secs / 1e9)
}

/// `iters` rounds of one `vpdpbusd` on each of `CHAINS` accumulators.
fn dot_chains(qisa: QIsa, iters: usize) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let seeds: [i32; CHAINS] = black_box(std::array::from_fn(|i| i as i32 + 1));
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn z(seeds: [i32; CHAINS], iters: usize) -> i32 {
            let mut acc = seeds.map(|s| _mm512_set1_epi32(s));
            let b = seeds.map(|s| _mm512_set1_epi32(s << 8));
            for _ in 0..iters {
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = _mm512_dpbusd_epi32(*acc, b, b);
                }
            }
            acc.iter().map(|&v| _mm512_reduce_add_epi32(v)).sum()
        }
        #[target_feature(enable = "avx2,avxvnni")]
        unsafe fn y(seeds: [i32; CHAINS], iters: usize) -> i32 {
            let mut acc = seeds.map(|s| _mm256_set1_epi32(s));
            let b = seeds.map(|s| _mm256_set1_epi32(s << 8));
            for _ in 0..iters {
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = _mm256_dpbusd_avx_epi32(*acc, b, b);
                }
            }
            acc.iter().map(|&v| _mm256_extract_epi32::<0>(v)).sum()
        }
        // SAFETY: dot_peak checked the path is supported.
        unsafe {
            match qisa {
                QIsa::Avx512Vnni => z(seeds, iters),
                _ => y(seeds, iters),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (qisa, iters);
        0
    }
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
        for qisa in QIsa::available() {
            let lanes = match qisa {
                QIsa::Avx512Vnni => 16.0,
                QIsa::AvxVnni => 8.0,
                _ => continue,
            };
            let g = dot_peak(qisa, 1, Duration::from_millis(20)).expect("a dot path");
            assert!(g.is_finite() && g > 0.5 * 8.0 * lanes, "{qisa}: {g} GOPS");
        }
    }
}
