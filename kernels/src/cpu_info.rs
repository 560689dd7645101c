//! What the CPU says about itself, read once with CPUID: vendor, family and model, cache
//! sizes, and how it executes 512-bit FMAs. The GEMM's cache blocking is sized from it
//! (`gemm::tiles`), and `kestrel bench` prints it beside the kernels it chose.

use std::fmt;
use std::sync::OnceLock;

/// How a CPU runs 512-bit FMAs: what decides whether AVX-512's wider vectors pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fma512 {
    /// No AVX-512F.
    None,
    /// AVX-512 on 256-bit units, a zmm FMA taking a unit for two cycles (AMD Zen 4).
    Split,
    /// One 512-bit FMA unit per core (Intel client and some Xeon parts).
    One,
    /// Two 512-bit FMA units per core (Intel Xeon Scalable from Ice Lake on, AMD Zen 5).
    Two,
}

/// The CPU the process runs on, as CPUID reports it. Sizes are per core except `l3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// "GenuineIntel", "AuthenticAMD", ...; empty off x86-64.
    pub vendor: String,
    /// The brand string, e.g. "Intel(R) Xeon(R) Processor"; empty off x86-64.
    pub brand: String,
    /// Display family (base + extended), e.g. 6 for Intel Core/Xeon, 0x19 for Zen 3/4.
    pub family: u32,
    /// Display model (base + extended), e.g. 207 for 5th-generation Xeon Scalable.
    pub model: u32,
    /// L1 data cache, bytes (0 when unknown).
    pub l1d: usize,
    /// L2 cache, bytes (0 when unknown).
    pub l2: usize,
    /// L3 cache as reported (one slice or the whole, as the CPU says), bytes (0 when unknown).
    pub l3: usize,
    /// How 512-bit FMAs execute.
    pub fma512: Fma512,
}

/// The CPU this process runs on, detected on first use.
pub fn cpu() -> &'static CpuInfo {
    static CPU: OnceLock<CpuInfo> = OnceLock::new();
    CPU.get_or_init(detect)
}

impl fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = |b: usize| match b {
            0 => "?".to_string(),
            b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
            b => format!("{} KiB", b >> 10),
        };
        let fma = match self.fma512 {
            Fma512::None => "no AVX-512",
            Fma512::Split => "512-bit FMA split over 256-bit units",
            Fma512::One => "one 512-bit FMA unit",
            Fma512::Two => "two 512-bit FMA units",
        };
        write!(
            f,
            "{} ({}, family {} model {}), L1d {}, L2 {}, L3 {}, {fma}",
            if self.brand.is_empty() {
                "unknown CPU"
            } else {
                &self.brand
            },
            if self.vendor.is_empty() {
                "?"
            } else {
                &self.vendor
            },
            self.family,
            self.model,
            kib(self.l1d),
            kib(self.l2),
            kib(self.l3),
        )
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CpuInfo {
    CpuInfo {
        vendor: String::new(),
        brand: String::new(),
        family: 0,
        model: 0,
        l1d: 0,
        l2: 0,
        l3: 0,
        fma512: Fma512::None,
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CpuInfo {
    use std::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
    let regs = |r: CpuidResult| [r.eax, r.ebx, r.ecx, r.edx];
    let text = |words: &[u32]| {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        String::from_utf8_lossy(&bytes)
            .trim_matches(char::from(0))
            .trim()
            .to_string()
    };
    let leaf0 = __cpuid(0);
    let vendor = text(&[leaf0.ebx, leaf0.edx, leaf0.ecx]);
    let max_ext = __cpuid(0x8000_0000).eax;
    let brand = match max_ext >= 0x8000_0004 {
        true => text(
            &(0x8000_0002..=0x8000_0004)
                .flat_map(|l| regs(__cpuid(l)))
                .collect::<Vec<_>>(),
        ),
        false => String::new(),
    };
    let sig = __cpuid(1).eax;
    let (base_family, base_model) = ((sig >> 8) & 0xf, (sig >> 4) & 0xf);
    let family = match base_family {
        0xf => base_family + ((sig >> 20) & 0xff),
        f => f,
    };
    let model = match base_family {
        6 | 0xf => base_model + (((sig >> 16) & 0xf) << 4),
        _ => base_model,
    };
    // Deterministic cache parameters: leaf 4 on Intel, 0x8000001D on AMD, the same layout.
    let cache_leaf = match vendor.as_str() {
        "AuthenticAMD" if max_ext >= 0x8000_001d => Some(0x8000_001d),
        "GenuineIntel" if leaf0.eax >= 4 => Some(4),
        _ => None,
    };
    let (mut l1d, mut l2, mut l3) = (0, 0, 0);
    for sub in 0..16 {
        let Some(leaf) = cache_leaf else { break };
        let r = __cpuid_count(leaf, sub);
        let kind = r.eax & 0x1f; // 0 none, 1 data, 2 instruction, 3 unified
        if kind == 0 {
            break;
        }
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        let size = ways * partitions * line * sets;
        match ((r.eax >> 5) & 0x7, kind) {
            (1, 1) => l1d = size,
            (2, 1 | 3) => l2 = size,
            (3, 1 | 3) => l3 = size,
            _ => {}
        }
    }
    let fma512 = fma512(&vendor, family, model);
    CpuInfo {
        vendor,
        brand,
        family,
        model,
        l1d,
        l2,
        l3,
        fma512,
    }
}

/// CPUID does not say how many 512-bit FMA units a core has: this goes by vendor, family
/// and model. Intel's Xeon Scalable parts from Ice Lake on (models 0x6a, 0x6c, 0x8f
/// Sapphire Rapids, 0xcf Emerald Rapids, 0xad/0xae Granite Rapids) have two; Skylake-SP and
/// Cascade Lake (0x55) have two on most Gold and all Platinum parts, one on Silver and
/// Bronze, and are taken as two; Intel client parts with AVX-512 have one. AMD's Zen 4
/// (family 0x19) splits a zmm FMA over two 256-bit units; Zen 5 (0x1a) has full-width ones.
#[cfg(target_arch = "x86_64")]
fn fma512(vendor: &str, family: u32, model: u32) -> Fma512 {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return Fma512::None;
    }
    match (vendor, family, model) {
        ("GenuineIntel", 6, 0x55 | 0x6a | 0x6c | 0x8f | 0xcf | 0xad | 0xae) => Fma512::Two,
        ("GenuineIntel", _, _) => Fma512::One,
        ("AuthenticAMD", 0x19, _) => Fma512::Split,
        ("AuthenticAMD", _, _) => Fma512::Two,
        _ => Fma512::One,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_reports_sane_caches() {
        let c = cpu();
        let shown = c.to_string();
        assert!(shown.contains("L1d"), "{shown}");
        #[cfg(target_arch = "x86_64")]
        {
            assert!(!c.vendor.is_empty(), "{shown}");
            // Every x86-64 CPU Kestrel meets reports its data caches; a VM that hides them
            // would leave the blocking at its defaults, which this would flag.
            assert!((16 << 10..=1 << 20).contains(&c.l1d), "{shown}");
            assert!(c.l2 >= c.l1d, "{shown}");
            assert_eq!(
                c.fma512 == Fma512::None,
                !std::arch::is_x86_feature_detected!("avx512f"),
                "{shown}"
            );
        }
    }
}
