//! The one entry point of every CUDA kernel test: [`check`].
//!
//! Each case is checked on every backend this machine has, and a backend it lacks is
//! named in a skip line rather than passed silently:
//! - NVRTC (libnvrtc.so.13 on the loader path): every distinct launch compiles for sm_90.
//!   `KESTREL_REQUIRE_NVRTC=1` turns a skip into a failure.
//! - the CPU emulator (g++, `emu/`): every case runs and matches its reference output.
//!   `KESTREL_REQUIRE_EMU=1` turns a skip into a failure.
//! - a GPU (`device.rs`): every case runs and matches. `REQUIRE_CUDA=1` turns a skip into a
//!   failure.

use super::compile::Compiler;
use super::device::{self, Gpu};
use super::emu::{self, EmuCase};
use super::{CudaError, CudaOp};
use crate::testing::{compare, require_or_skip, Need, Tol};
use std::collections::HashSet;
use std::sync::OnceLock;

/// One specialisation to check: the op, its inputs and the reference output.
pub(crate) struct Case {
    /// Names the case in failure messages, e.g. "conv2d n1 c3x8 5x7 k3 s2 p1 d1 g1".
    pub name: String,
    pub op: CudaOp,
    pub inputs: Vec<Vec<f32>>,
    pub expected: Vec<f32>,
    /// Max |out - expected| allowed, relative to max |expected| (plus 1e-6 absolute).
    pub rtol: f64,
}

impl Case {
    /// The case's tolerance: rtol of max |expected|, plus 1e-6 for outputs that cancel to
    /// near zero.
    fn tol(&self) -> Tol<'static> {
        Tol::max(self.rtol, 1e-6)
    }
}

/// Compiles every launch with NVRTC, runs every case under the CPU emulator and, when a
/// GPU is present, on the GPU, asserting each output against `expected`.
pub(crate) fn check(label: &str, cases: &[Case]) {
    check_nvrtc(label, cases);
    check_emulator(label, cases);
    check_gpu(label, cases);
}

/// Why a backend is missing, without the "no CUDA device: " prefix of `Unavailable`.
fn reason(e: CudaError) -> String {
    match e {
        CudaError::Unavailable(why) => why,
        other => other.to_string(),
    }
}

/// One compiler for the whole test process: a module compiled by one test is not
/// compiled again by the next. Its disk cache (`$TMPDIR/kestrel-test-modules`) spares reruns
/// NVRTC's ~6 s of CPU for the conv2d tests; a hit is the CUBIN the same NVRTC made from
/// the same text (ptxas included), so it proves the same thing.
fn sm90_compiler() -> Result<&'static Compiler, String> {
    static COMPILER: OnceLock<Result<Compiler, String>> = OnceLock::new();
    COMPILER
        .get_or_init(|| {
            let cache = std::env::temp_dir().join("kestrel-test-modules");
            Compiler::new("sm_90", Some(cache)).map_err(reason)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn check_nvrtc(label: &str, cases: &[Case]) {
    let compiler = match sm90_compiler() {
        Ok(c) => c,
        Err(why) => {
            return require_or_skip(Need::Nvrtc, &format!("NVRTC compile of {label}"), &why)
        }
    };
    let mut seen = HashSet::new();
    for case in cases {
        for launch in &case.op.launches {
            if seen.insert(launch.module_text()) {
                if let Err(e) = compiler.module(launch) {
                    panic!("{label}: case '{}': {e}", case.name);
                }
            }
        }
    }
}

fn check_emulator(label: &str, cases: &[Case]) {
    if let Err(why) = emu::available() {
        return require_or_skip(Need::Emulator, &format!("CPU emulation of {label}"), &why);
    }
    let emu_cases: Vec<EmuCase<'_>> = cases
        .iter()
        .map(|c| EmuCase {
            op: &c.op,
            inputs: c.inputs.iter().map(Vec::as_slice).collect(),
            out_len: c.expected.len(),
        })
        .collect();
    let outputs = emu::run(&emu_cases).unwrap_or_else(|e| {
        let names: Vec<String> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| format!("  case {i}: {}", c.name))
            .collect();
        panic!(
            "{label}: CPU emulation failed: {e}\ncases:\n{}",
            names.join("\n")
        )
    });
    for (case, out) in cases.iter().zip(&outputs) {
        if let Err(e) = compare(out, &case.expected, case.tol()) {
            panic!("{label} (CPU emulator): case '{}': {e}", case.name);
        }
    }
}

fn check_gpu(label: &str, cases: &[Case]) {
    if let Err(e) = device::probe(0) {
        return require_or_skip(Need::Gpu, &format!("GPU run of {label}"), &reason(e));
    }
    let gpu = Gpu::new(0).unwrap_or_else(|e| panic!("{label}: opening the GPU: {e}"));
    let own;
    let compiler = match sm90_compiler() {
        Ok(c) if c.arch() == gpu.arch() => c,
        _ => {
            own = Compiler::new(gpu.arch(), None).unwrap_or_else(|e| panic!("{label}: {e}"));
            &own
        }
    };
    for case in cases {
        let inputs: Vec<&[f32]> = case.inputs.iter().map(Vec::as_slice).collect();
        let out = device::run_op(&gpu, compiler, &case.op, &inputs, case.expected.len())
            .unwrap_or_else(|e| panic!("{label} (GPU): case '{}': {e}", case.name));
        if let Err(e) = compare(&out, &case.expected, case.tol()) {
            panic!("{label} (GPU {}): case '{}': {e}", gpu.name(), case.name);
        }
    }
}
