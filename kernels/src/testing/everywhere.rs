//! One op's cases on every backend: the one test body each op's tests call, [`check`].
//!
//! A case is its inputs, the reference output, the tolerance that holds on every backend,
//! and how the op runs: its CPU kernel (a closure of instruction set, threads, inputs and
//! output), its CUDA launches, or both. Each case is checked
//! - on the CPU, on every instruction set this CPU has ([`Isa::available`]), 1 and 2 threads;
//! - with NVRTC (libnvrtc.so.13 on the loader path): every distinct launch compiles for
//!   sm_90. `KESTREL_REQUIRE_NVRTC=1` turns a skip into a failure;
//! - on the CPU emulator of CUDA (g++, `cuda::emu`): every case runs and matches.
//!   `KESTREL_REQUIRE_EMU=1` turns a skip into a failure;
//! - on a GPU (`cuda::device`): every case runs and matches. `REQUIRE_CUDA=1` turns a skip
//!   into a failure.
//!
//! A backend this machine lacks is named in a skip line rather than passed silently.

use crate::cuda::compile::Compiler;
use crate::cuda::device::{self, Gpu};
use crate::cuda::emu::{self, EmuCase};
use crate::cuda::{CudaError, CudaOp};
use crate::testing::{compare, require_or_skip, Need, Tol};
use crate::Isa;
use std::collections::HashSet;
use std::sync::OnceLock;

/// How an op runs on the CPU: `(isa, threads, inputs, output)`.
pub(crate) type CpuRun = Box<dyn Fn(Isa, usize, &[&[f32]], &mut [f32])>;

/// The tolerance a case holds on every backend; [`Allow::tol`] is the comparison's.
pub(crate) enum Allow {
    /// Bit-identical, NaN matching NaN: the kernel computes what the reference does.
    Bits,
    /// rel `.0` of max |expected|, plus `.1` absolute.
    Max(f64, f64),
    /// rel `.0` of each element's magnitude `.1`: the sum of a reduction's |terms|, as the
    /// rounding of a sum scales with its terms, not its result.
    Given(f64, Vec<f32>),
}

impl Allow {
    /// The rule `compare` applies.
    pub(crate) fn tol(&self) -> Tol<'_> {
        match self {
            Allow::Bits => Tol::BITS,
            Allow::Max(rtol, atol) => Tol::max(*rtol, *atol),
            Allow::Given(rtol, mags) => Tol::given(*rtol, mags),
        }
    }
}

/// |v| element by element: a reference run on it gives a reduction's term magnitudes.
pub(crate) fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|v| v.abs()).collect()
}

/// One case of an op: its inputs, the reference output and how it runs.
pub(crate) struct Case {
    /// Names the case in failure messages, e.g. "conv2d n1 c3x8 5x7 k3 s2 p1 d1 g1".
    pub name: String,
    pub inputs: Vec<Vec<f32>>,
    pub expected: Vec<f32>,
    pub allow: Allow,
    /// The CUDA launches, when the op has them for this case.
    pub op: Option<CudaOp>,
    /// The CPU kernel, when the op has one for this case.
    pub cpu: Option<CpuRun>,
    /// The CPU's own tolerance, where its algorithm rounds otherwise than the CUDA
    /// kernel's precision (conv2d: Winograd on the CPU, tf32 and fp16 on CUDA).
    pub cpu_allow: Option<Allow>,
}

impl Case {
    /// A case with no kernel yet: add them with [`Case::cuda`] and [`Case::cpu`].
    pub(crate) fn new(
        name: impl Into<String>,
        inputs: Vec<Vec<f32>>,
        expected: Vec<f32>,
        allow: Allow,
    ) -> Case {
        Case {
            name: name.into(),
            inputs,
            expected,
            allow,
            op: None,
            cpu: None,
            cpu_allow: None,
        }
    }

    /// Runs on CUDA as `op`.
    pub(crate) fn cuda(mut self, op: CudaOp) -> Case {
        self.op = Some(op);
        self
    }

    /// Runs on the CPU as `run`.
    pub(crate) fn cpu(mut self, run: impl Fn(Isa, usize, &[&[f32]], &mut [f32]) + 'static) -> Case {
        self.cpu = Some(Box::new(run));
        self
    }

    /// On the CPU, within `allow` rather than the case's tolerance.
    pub(crate) fn cpu_allow(mut self, allow: Allow) -> Case {
        self.cpu_allow = Some(allow);
        self
    }

    fn inputs(&self) -> Vec<&[f32]> {
        self.inputs.iter().map(Vec::as_slice).collect()
    }
}

/// Runs every case on every backend this machine has (module doc), asserting each output
/// against `expected` within the case's tolerance. A case without a CPU kernel skips the
/// CPU, one without CUDA launches the CUDA backends.
pub(crate) fn check(label: &str, cases: &[Case]) {
    check_cpu(label, cases);
    let cuda: Vec<&Case> = cases.iter().filter(|c| c.op.is_some()).collect();
    if !cuda.is_empty() {
        check_nvrtc(label, &cuda);
        check_emulator(label, &cuda);
        check_gpu(label, &cuda);
    }
}

/// What an output holds before a kernel writes it: a finite value no reference makes, so
/// an element the kernel skips fails the comparison.
const UNWRITTEN: f32 = 3.0e38;

fn check_cpu(label: &str, cases: &[Case]) {
    for case in cases {
        let Some(run) = &case.cpu else { continue };
        let inputs = case.inputs();
        let allow = case.cpu_allow.as_ref().unwrap_or(&case.allow);
        for isa in Isa::available() {
            for threads in [1, 2] {
                let mut out = vec![UNWRITTEN; case.expected.len()];
                run(isa, threads, &inputs, &mut out);
                if let Err(e) = compare(&out, &case.expected, allow.tol()) {
                    panic!(
                        "{label} ({isa}, {threads} threads): case '{}': {e}",
                        case.name
                    );
                }
            }
        }
    }
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

fn check_nvrtc(label: &str, cases: &[&Case]) {
    let compiler = match sm90_compiler() {
        Ok(c) => c,
        Err(why) => {
            return require_or_skip(Need::Nvrtc, &format!("NVRTC compile of {label}"), &why)
        }
    };
    let mut seen = HashSet::new();
    for case in cases {
        for launch in &cuda_op(case).launches {
            if seen.insert(launch.module_text()) {
                if let Err(e) = compiler.module(launch) {
                    panic!("{label}: case '{}': {e}", case.name);
                }
            }
        }
    }
}

fn check_emulator(label: &str, cases: &[&Case]) {
    if let Err(why) = emu::available() {
        return require_or_skip(Need::Emulator, &format!("CPU emulation of {label}"), &why);
    }
    let emu_cases: Vec<EmuCase<'_>> = cases
        .iter()
        .map(|c| EmuCase {
            op: cuda_op(c),
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
        if let Err(e) = compare(out, &case.expected, case.allow.tol()) {
            panic!("{label} (CPU emulator): case '{}': {e}", case.name);
        }
    }
}

fn check_gpu(label: &str, cases: &[&Case]) {
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
        let inputs = case.inputs();
        let out = device::run_op(&gpu, compiler, cuda_op(case), &inputs, case.expected.len())
            .unwrap_or_else(|e| panic!("{label} (GPU): case '{}': {e}", case.name));
        if let Err(e) = compare(&out, &case.expected, case.allow.tol()) {
            panic!("{label} (GPU {}): case '{}': {e}", gpu.name(), case.name);
        }
    }
}

/// The launches of a case `check` passed to the CUDA backends.
fn cuda_op(case: &Case) -> &CudaOp {
    case.op
        .as_ref()
        .expect("only cases with CUDA launches reach the CUDA backends")
}
