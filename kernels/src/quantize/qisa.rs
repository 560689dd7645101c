//! Which integer dot-product instructions the int8 kernels use, chosen at run time like
//! [`Isa`] and capped by it (`KESTREL_ISA=avx2` runs the 256-bit paths, `scalar` the
//! plain loops).

use std::fmt;

use crate::Isa;

/// An int8 kernel path, worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QIsa {
    /// Plain integer loops.
    Scalar,
    /// AVX2 without VNNI: bytes widened to i16 and `vpmaddwd`, which sums two i16
    /// products into i32 and so never saturates (`vpmaddubsw` would: two u8×s8 products
    /// reach 2·255·128 > i16::MAX).
    Avx2,
    /// AVX-VNNI: 256-bit `vpdpbusd`, four u8×s8 products into each i32 lane.
    AvxVnni,
    /// AVX512-VNNI: 512-bit `vpdpbusd`.
    Avx512Vnni,
}

impl QIsa {
    /// Every int8 path this CPU can run, worst first.
    pub fn available() -> Vec<QIsa> {
        [QIsa::Scalar, QIsa::Avx2, QIsa::AvxVnni, QIsa::Avx512Vnni]
            .into_iter()
            .filter(|q| q.is_supported())
            .collect()
    }

    /// Whether this CPU can run it (detected at run time).
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let has = |f: &str| match f {
            "avxvnni" => is_x86_feature_detected!("avxvnni"),
            "avx512vnni" => {
                is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw")
            }
            _ => false,
        };
        match self {
            QIsa::Scalar => true,
            QIsa::Avx2 => Isa::Avx2.is_supported(),
            #[cfg(target_arch = "x86_64")]
            QIsa::AvxVnni => Isa::Avx2.is_supported() && has("avxvnni"),
            #[cfg(target_arch = "x86_64")]
            QIsa::Avx512Vnni => Isa::Avx512.is_supported() && has("avx512vnni"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best int8 path whose vectors `isa` allows: 512-bit ones only under `Avx512`.
    pub fn for_isa(isa: Isa) -> QIsa {
        let fits = |q: &QIsa| match q {
            QIsa::Scalar => true,
            QIsa::Avx2 | QIsa::AvxVnni => isa >= Isa::Avx2,
            QIsa::Avx512Vnni => isa >= Isa::Avx512,
        };
        QIsa::available()
            .into_iter()
            .rfind(fits)
            .unwrap_or(QIsa::Scalar)
    }

    /// The f32 vectors its quantize and requantize steps run on.
    pub fn float_isa(self) -> Isa {
        match self {
            QIsa::Scalar => Isa::Scalar,
            QIsa::Avx2 | QIsa::AvxVnni => Isa::Avx2,
            QIsa::Avx512Vnni => Isa::Avx512,
        }
    }

    /// The name in bench ids and `kestrel info`.
    pub fn name(self) -> &'static str {
        match self {
            QIsa::Scalar => "scalar",
            QIsa::Avx2 => "avx2",
            QIsa::AvxVnni => "avx-vnni",
            QIsa::Avx512Vnni => "avx512-vnni",
        }
    }
}

impl fmt::Display for QIsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
