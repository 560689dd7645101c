//! The CPU emulator of CUDA launches itself: what it reports as undefined behaviour, what
//! it cannot compile, and the tail runs that reach the top of the 32-bit index range.

use super::{self as emu, EmuCase};
use crate::cuda::tests::ramp;
use crate::cuda::{blocks, Arg, CudaOp, Launch, Source};
use crate::testing::{compare, require_or_skip, Need, Tol};
use std::path::PathBuf;

/// The emulator turns kernel bugs that are undefined behaviour on the GPU into errors.
static BUGS: Source = Source {
    name: "bugs.cu",
    code: r#"
extern "C" __global__ void bug(float* y) {
    int t = threadIdx.x;
#if BUG == 0
    y[t] = 1.f;  // the launch has one thread more than y has floats
#elif BUG == 1
    y[t - 1] = 1.f;  // thread 0 writes y[-1]
#elif BUG == 2
    if (t < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
#elif BUG == 3
    if (t == 5) return;
    y[t] = __shfl_down_sync(0xffffffff, 1.f, 1);  // lane 5 has returned
#endif
}
"#,
};

fn emulate_bug(bug: i64) -> String {
    let op = CudaOp {
        consts: vec![],
        launches: vec![Launch {
            source: &BUGS,
            entry: "bug",
            defines: vec![("BUG", bug)],
            grid: [1, 1, 1],
            block: [32, 1, 1],
            shared_bytes: 0,
            args: vec![Arg::Output],
        }],
    };
    let case = EmuCase {
        op: &op,
        inputs: vec![],
        out_len: 31,
    };
    match emu::run(&[case]) {
        Ok(out) => panic!("bug {bug} ran without an error: {out:?}"),
        Err(e) => e,
    }
}

#[test]
fn emulator_reports_undefined_behaviour() {
    if let Err(why) = emu::available() {
        let what = "CPU emulation of emulator_reports_undefined_behaviour";
        return require_or_skip(Need::Emulator, what, &why);
    }
    let past_end = emulate_bug(0);
    assert!(
        past_end.contains("memory fault") && past_end.contains("bug in bugs.cu"),
        "{past_end}"
    );
    assert!(past_end.contains("thread (31,0,0)"), "{past_end}");
    let before_start = emulate_bug(1);
    assert!(
        before_start.contains("argument 0 was written before its start"),
        "{before_start}"
    );
    let divergent = emulate_bug(2);
    assert!(divergent.contains("divergent barriers"), "{divergent}");
    let shuffle = emulate_bug(3);
    assert!(shuffle.contains("lane 5 has returned"), "{shuffle}");
}

static UNSUPPORTED: Source = Source {
    name: "unsupported.cu",
    code: "extern \"C\" __global__ void dynamic_shared(float* y) {\n    extern __shared__ float dyn[];\n    y[0] = dyn[0];\n}\n",
};

/// What the emulator cannot take (here dynamic shared memory, which the .cu rules forbid)
/// fails with g++'s message pointing into the .cu file.
#[test]
fn emulator_compile_errors_name_the_source_line() {
    if let Err(why) = emu::available() {
        let what = "CPU emulation of emulator_compile_errors_name_the_source_line";
        return require_or_skip(Need::Emulator, what, &why);
    }
    let op = CudaOp {
        consts: vec![],
        launches: vec![Launch {
            source: &UNSUPPORTED,
            entry: "dynamic_shared",
            defines: vec![],
            grid: [1, 1, 1],
            block: [1, 1, 1],
            shared_bytes: 4,
            args: vec![Arg::Output],
        }],
    };
    let case = EmuCase {
        op: &op,
        inputs: vec![],
        out_len: 1,
    };
    let err = emu::run(&[case]).unwrap_err();
    assert!(
        err.contains("g++ could not compile") && err.contains("unsupported.cu:2"),
        "{err}"
    );
}

static TWICE: Source = Source {
    name: "twice.cu",
    code: r#"
// y[i] = 2 x[i] for i < LEN, one thread per element, with the index signed (SIGNED 1,
// the pattern that once let depthwise.cu wrap) or unsigned.
extern "C" __global__ void twice(const float* x, float* y) {
#if SIGNED
    const int i = blockIdx.x * THREADS + threadIdx.x;
#else
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;
#endif
    if (i >= LEN) return;
    y[i] = 2.f * x[i];
}
"#,
};

/// `twice` over 2^31 - 1 elements, run from block `first` to the end, x and y windows
/// holding the elements from `at` on; Err when the emulator does, or y is wrong.
fn twice_tail(threads: usize, signed: bool, first: u32, at: usize) -> Result<(), String> {
    let len = i32::MAX as usize;
    let launch = Launch {
        source: &TWICE,
        entry: "twice",
        defines: vec![
            ("LEN", len as i64),
            ("THREADS", threads as i64),
            ("SIGNED", signed as i64),
        ],
        grid: [blocks(len, threads), 1, 1],
        block: [threads as u32, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Input(0), Arg::Output],
    };
    let x = ramp(len - at, 3);
    let y = vec![0.0; len - at];
    let windows = [emu::Window { at, data: &x }, emu::Window { at, data: &y }];
    let out = emu::run_tail(&launch, first as u64, &windows, 1)?;
    let expected: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
    compare(&out, &expected, Tol::max(0.0, 1e-6))
}

/// `run_tail` reaches the top of the 32-bit range on small windows: the last blocks of
/// a launch over 2^31 - 1 elements. An index that wraps negative faults instead of
/// landing in other memory, as does any element outside the windows.
#[test]
fn tail_of_a_huge_grid_runs_on_windows_and_a_wrapped_index_faults() {
    if let Err(why) = emu::available() {
        return require_or_skip(Need::Emulator, "CPU emulation of the tail tests", &why);
    }
    // From block `b` on, on windows from its first element.
    let run =
        |threads: usize, signed: bool, b: u32| twice_tail(threads, signed, b, b as usize * threads);
    let last = |threads: usize| blocks(i32::MAX as usize, threads) - 1;
    // 384 threads: the last block's reach 2^31 + 256, which only an unsigned index
    // survives; the signed one wraps negative and passes the `i >= LEN` test.
    run(384, false, last(384) - 1).unwrap();
    let wrapped = run(384, true, last(384)).unwrap_err();
    assert!(wrapped.contains("memory fault"), "{wrapped}");
    // 256 threads (any power of two) divide 2^31: the last thread's index is 2^31 - 1,
    // so even a signed index holds up to the 2^31 - 1 elements the executor allows.
    run(256, true, last(256)).unwrap();
    // The windows are all the memory there is: blocks 16 KB below them fault (the page
    // under a window's start is its padding, as for every emulated buffer).
    let outside = twice_tail(256, false, last(256) - 16, last(256) as usize * 256);
    assert!(outside.unwrap_err().contains("memory fault"));
}

/// Every `.cu` and `.cuh` file under `dir`, recursively.
fn cuda_sources(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            cuda_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "cu" || e == "cuh") {
            found.push(path);
        }
    }
}

/// A guard beside the emulated tests: no kernel declares a signed int from the grid
/// position (`int i = blockIdx.x * N + threadIdx.x`), the pattern that wraps negative
/// past 2^31 - 1 and passes a bounds test. Such an index is unsigned.
#[test]
fn no_kernel_takes_a_signed_int_index_from_the_grid() {
    let mut files = Vec::new();
    cuda_sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() >= 14, "found only {files:?}");
    let mut signed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let Some((decl, value)) = code.split_once('=') else {
                continue;
            };
            let words: Vec<&str> = decl
                .split(|c: char| c.is_whitespace() || c == '(')
                .filter(|w| !w.is_empty())
                .collect();
            let int = words
                .iter()
                .enumerate()
                .any(|(i, w)| *w == "int" && (i == 0 || words[i - 1] != "unsigned"));
            if int && value.contains("blockIdx") && value.contains("threadIdx") {
                signed.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        signed.is_empty(),
        "signed grid indices:\n{}",
        signed.join("\n")
    );
}
