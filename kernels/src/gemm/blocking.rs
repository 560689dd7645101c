//! The GEMM's cache blocking for the CPU at hand (`Tiles::kc`, `Tiles::nc`).

/// (kc, nc) for this CPU, or `KESTREL_BLOCKING=kc,nc` when set (for tuning on a new CPU;
/// clamped to kc 1..=4096, nc 32..=65536). kc stays 256: the 8-row A micro-panel (8 KiB)
/// in a quarter of a 32 KiB L1d; on the Xeon model 207's 48 KiB, 384 measured no better
/// (ResNet-18's convs, `layer_speed`, 1 thread, 3 alternations: 1.01–1.02× the time). nc
/// fills half of L2 with the kc × nc block of packed B, never below the 512 measured on
/// Zen 4's 1 MiB (nor for a CPU that reports no L2): 1024 on the Xeon's 2 MiB, level there
/// with 512 (1.00×, same runs).
pub fn blocking(cpu: &crate::cpu_info::CpuInfo) -> (usize, usize) {
    blocking_with(cpu, std::env::var("KESTREL_BLOCKING").ok().as_deref())
}

/// `blocking` with the override given: `forced` is `KESTREL_BLOCKING`'s value.
fn blocking_with(cpu: &crate::cpu_info::CpuInfo, forced: Option<&str>) -> (usize, usize) {
    let forced = forced.and_then(|v| {
        let (kc, nc) = v.split_once(',')?;
        Some((
            kc.trim().parse::<usize>().ok()?,
            nc.trim().parse::<usize>().ok()?,
        ))
    });
    if let Some((kc, nc)) = forced {
        // Within what the packing scratch can hold: at least one k and one full panel of
        // the widest microkernel (32 columns) per block.
        return (kc.clamp(1, 4096), nc.clamp(32, 1 << 16));
    }
    let kc = 256;
    let nc = (cpu.l2 / 2 / (kc * 4)).clamp(512, 2048) / 32 * 32;
    (kc, nc)
}

/// How many A panels (`mr` rows × `kc`) meet each B micro-panel in turn, where the B
/// micro-panel (kc × nr floats) stays in L1 instead of the A one (`Tiles::mc`); `None` keeps
/// A's in L1. Per k, B's micro-panel is read nr floats at a time and A's only mr, so the
/// one that streams from L2 should be A; but B's must fit L1 with room for that stream:
/// two thirds of L1d. On the Xeon model 207 (48 KiB L1d, kc 256, avx512 32 KiB) ResNet-50's
/// 1×1 convs ran in 0.97× the time, 0.89–0.92× at 56² and 28² (`layer_speed r50`,
/// 1 thread, both orders interleaved in one process; avx2 0.98×); Zen 4's 32 KiB L1d
/// cannot hold the avx512 panel and keeps the order it was tuned with. The block of A
/// panels fills a quarter of L2 (512 KiB here: 64 panels; 8 to 64 measured level).
pub fn a_block(cpu: &crate::cpu_info::CpuInfo, kc: usize, mr: usize, nr: usize) -> Option<usize> {
    let b_panel = kc * nr * 4;
    (cpu.l1d >= 48 << 10 && 3 * b_panel <= 2 * cpu.l1d).then(|| (cpu.l2 / 4 / (kc * mr * 4)).max(1))
}

#[cfg(test)]
mod blocking_tests {
    use super::blocking_with;
    use crate::cpu_info::{CpuInfo, Fma512};

    fn cpu(l1d: usize, l2: usize) -> CpuInfo {
        CpuInfo {
            vendor: String::new(),
            brand: String::new(),
            family: 0,
            model: 0,
            l1d,
            l2,
            l3: 0,
            fma512: Fma512::None,
        }
    }

    #[test]
    fn blocking_follows_l2_and_the_override_stays_usable() {
        // Zen 4 (32 KiB, 1 MiB) keeps its measured 256 × 512; the Xeon's 2 MiB L2 doubles
        // nc; a CPU reporting no caches (or a small L2) gets Zen 4's.
        assert_eq!(blocking_with(&cpu(32 << 10, 1 << 20), None), (256, 512));
        assert_eq!(blocking_with(&cpu(48 << 10, 2 << 20), None), (256, 1024));
        assert_eq!(blocking_with(&cpu(0, 0), None), (256, 512));
        assert_eq!(blocking_with(&cpu(32 << 10, 512 << 10), None), (256, 512));
        let xeon = cpu(48 << 10, 2 << 20);
        assert_eq!(blocking_with(&xeon, Some("384, 672")), (384, 672));
        // Below one panel or one k, clamped; unparsable, ignored.
        assert_eq!(blocking_with(&xeon, Some("0,8")), (1, 32));
        assert_eq!(blocking_with(&xeon, Some("big")), (256, 1024));
    }

    #[test]
    fn b_stays_in_l1_where_it_fits() {
        // The Xeon's 48 KiB holds the avx512 and avx2 B panels (32 and 16 KiB); Zen 4's
        // 32 KiB holds neither with room to spare for A, nor does a CPU reporting none.
        let xeon = cpu(48 << 10, 2 << 20);
        assert_eq!(super::a_block(&xeon, 256, 8, 32), Some(64));
        assert_eq!(super::a_block(&xeon, 256, 6, 16), Some(85));
        assert_eq!(super::a_block(&cpu(32 << 10, 1 << 20), 256, 8, 32), None);
        assert_eq!(super::a_block(&cpu(32 << 10, 1 << 20), 256, 6, 16), None);
        assert_eq!(super::a_block(&cpu(0, 0), 256, 8, 32), None);
    }
}
