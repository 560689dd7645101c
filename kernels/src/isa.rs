//! Run-time choice of instruction set. Kernels are compiled for every ISA (with
//! `#[target_feature]`) and the best one this CPU has is picked when a session is built;
//! no `target-cpu` flag is needed. `KESTREL_ISA=avx512|avx2|scalar` caps the choice, so
//! tests and benches can run every path on one machine.

use std::fmt;

/// An instruction set a kernel is written for, worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust: the fallback on any CPU.
    Scalar,
    /// x86-64 AVX2 + FMA: 8 f32 lanes.
    Avx2,
    /// x86-64 AVX-512F: 16 f32 lanes.
    Avx512,
}

impl Isa {
    /// Every ISA this CPU can run, worst first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }

    /// Whether this CPU can run it (detected at run time).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best ISA this CPU has.
    pub fn best() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Scalar)
    }

    /// The best ISA this CPU has, capped by `KESTREL_ISA` when it is set. An unknown
    /// value, or one this CPU cannot run, is an error rather than a silent fallback.
    pub fn from_env() -> Result<Isa, String> {
        match std::env::var("KESTREL_ISA") {
            Ok(v) => {
                let isa: Isa = v.parse()?;
                if isa.is_supported() {
                    Ok(isa)
                } else {
                    Err(format!("KESTREL_ISA={v}: this CPU does not support {isa}"))
                }
            }
            Err(_) => Ok(Isa::best()),
        }
    }

    /// The name used in bench ids and `KESTREL_ISA`: `avx512`, `avx2`, `scalar`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Isa, String> {
        match s {
            "scalar" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" => Ok(Isa::Avx512),
            other => Err(format!(
                "unknown ISA \"{other}\" (expected avx512, avx2 or scalar)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Isa;

    #[test]
    fn scalar_is_always_available_and_best_is_supported() {
        assert_eq!(Isa::available()[0], Isa::Scalar);
        assert!(Isa::best().is_supported());
        assert_eq!("avx2".parse::<Isa>(), Ok(Isa::Avx2));
        assert!("sse9".parse::<Isa>().is_err());
    }
}
