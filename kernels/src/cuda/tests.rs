//! Tests of the CUDA infrastructure itself (compiler cache, device probe, emulator,
//! `testing::check`) with tiny inline kernels.

use super::compile::{default_cache_dir, Compiler};
use super::device::{self, Gpu};
use super::emu::{self, EmuCase};
use super::nvrtc::ImageKind;
use super::{blocks, Arg, CudaError, CudaOp, Launch, Source};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::{compare, require_or_skip, Need, Tol};
use std::path::PathBuf;

static SAXPY: Source = Source {
    name: "saxpy.cu",
    code: r#"
// y[i] = A * x[i] + y0[i]  (A in thousandths, a define)
extern "C" __global__ void saxpy_f32(const float* __restrict__ x,
                                     const float* __restrict__ y0,
                                     float* __restrict__ y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    y[i] = fmaf(A_MILLI / 1000.0f, x[i], y0[i]);
}
"#,
};

/// One block per row: each thread sums a strided slice of the row, the block reduces in
/// shared memory down to one warp, which finishes with shuffles. Threads past the row
/// length return before any barrier, as range checks in real kernels do.
static ROW_SUM: Source = Source {
    name: "row_sum.cu",
    code: r#"
#define WARPS (THREADS / 32)
extern "C" __global__ void __launch_bounds__(THREADS) row_sum_f32(
        const float* __restrict__ x, float* __restrict__ y) {
    __shared__ float partial[WARPS];
    const float* row = x + (long long)blockIdx.x * COLS;
    int t = threadIdx.x;
    // Warps wholly past the row exit early: __syncthreads counts only live threads.
    // (Whole warps: a shuffle must not name a lane that has returned.)
    if (t / 32 * 32 >= COLS) return;
    float s = 0.f;
    for (int c = t; c < COLS; c += THREADS) s += __ldg(&row[c]);
    for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffff, s, off);
    if (t % 32 == 0) partial[t / 32] = s;
    __syncthreads();
    if (t < 32) {
        int live_warps = COLS < THREADS ? (COLS + 31) / 32 : WARPS;
        float v = t < live_warps ? partial[t] : 0.f;
        for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffff, v, off);
        if (t == 0) y[blockIdx.x] = v;
    }
}
"#,
};

fn saxpy(n: usize, a_milli: i64) -> CudaOp {
    CudaOp {
        consts: vec![(0..n).map(|i| i as f32 * 0.5).collect()],
        launches: vec![Launch {
            source: &SAXPY,
            entry: "saxpy_f32",
            defines: vec![("N", n as i64), ("A_MILLI", a_milli)],
            grid: [blocks(n, 128), 1, 1],
            block: [128, 1, 1],
            shared_bytes: 0,
            args: vec![Arg::Input(0), Arg::Const(0), Arg::Output],
        }],
    }
}

fn row_sum(rows: usize, cols: usize, threads: u32) -> CudaOp {
    CudaOp {
        consts: vec![],
        launches: vec![Launch {
            source: &ROW_SUM,
            entry: "row_sum_f32",
            defines: vec![("COLS", cols as i64), ("THREADS", threads as i64)],
            grid: [rows as u32, 1, 1],
            block: [threads, 1, 1],
            shared_bytes: 0,
            args: vec![Arg::Input(0), Arg::Output],
        }],
    }
}

fn ramp(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 16777216.0 - 0.5
        })
        .collect()
}

#[test]
fn saxpy_matches_on_every_backend() {
    let mut cases = Vec::new();
    for n in [1, 7, 127, 128, 129, 1000] {
        for a in [0, 1500, -250] {
            let x = ramp(n, 1);
            let op = saxpy(n, a);
            let expected = x
                .iter()
                .zip(&op.consts[0])
                .map(|(x, y0)| (a as f32 / 1000.0).mul_add(*x, *y0))
                .collect();
            cases.push(
                Case::new(
                    format!("saxpy n{n} a{a}"),
                    vec![x],
                    expected,
                    Allow::Max(1e-6, 1e-6), // one fma per element, the same on every backend
                )
                .cuda(op),
            );
        }
    }
    check("saxpy", &cases);
}

#[test]
fn shared_memory_barriers_and_shuffles_reduce_rows() {
    let mut cases = Vec::new();
    for (rows, cols) in [
        (1, 1),
        (3, 5),
        (2, 31),
        (4, 32),
        (3, 33),
        (2, 100),
        (5, 257),
        (2, 1000),
    ] {
        for threads in [32, 64, 256] {
            let x = ramp(rows * cols, 7);
            let expected = x.chunks(cols).map(|r| r.iter().sum()).collect();
            cases.push(
                Case::new(
                    format!("row_sum {rows}x{cols} threads {threads}"),
                    vec![x],
                    expected,
                    Allow::Max(1e-5, 1e-6), // the tree reorders the row's sum
                )
                .cuda(row_sum(rows, cols, threads)),
            );
        }
    }
    check("row_sum", &cases);
}

/// A tiled transpose of each plane: 2-D blocks, a 3-D grid, a padded shared tile.
static TRANSPOSE: Source = Source {
    name: "transpose.cu",
    code: r#"
// x: (PLANES, ROWS, COLS) -> y: (PLANES, COLS, ROWS); block (TILE, TILE / 2), each
// thread moves two rows of the tile.
extern "C" __global__ void transpose_f32(const float* __restrict__ x, float* __restrict__ y) {
    __shared__ float tile[TILE][TILE + 1];  // +1: no bank conflicts on the column read
    const float* src = x + (long long)blockIdx.z * ROWS * COLS;
    float* dst = y + (long long)blockIdx.z * ROWS * COLS;
    int c = blockIdx.x * TILE + threadIdx.x;
    for (int r = threadIdx.y; r < TILE; r += blockDim.y) {
        int row = blockIdx.y * TILE + r;
        if (row < ROWS && c < COLS) tile[r][threadIdx.x] = src[row * COLS + c];
    }
    __syncthreads();
    int r_out = blockIdx.y * TILE + threadIdx.x;
    for (int k = threadIdx.y; k < TILE; k += blockDim.y) {
        int c_out = blockIdx.x * TILE + k;
        if (c_out < COLS && r_out < ROWS) dst[c_out * ROWS + r_out] = tile[threadIdx.x][k];
    }
}
"#,
};

#[test]
fn two_dimensional_blocks_and_three_dimensional_grids_transpose() {
    const TILE: usize = 8;
    let mut cases = Vec::new();
    for (planes, rows, cols) in [(1, 1, 1), (2, 3, 5), (1, 8, 8), (3, 9, 17), (2, 31, 6)] {
        let x = ramp(planes * rows * cols, 11);
        let mut expected = vec![0.0; x.len()];
        for p in 0..planes {
            for r in 0..rows {
                for c in 0..cols {
                    expected[(p * cols + c) * rows + r] = x[(p * rows + r) * cols + c];
                }
            }
        }
        let op = CudaOp {
            consts: vec![],
            launches: vec![Launch {
                source: &TRANSPOSE,
                entry: "transpose_f32",
                defines: vec![
                    ("ROWS", rows as i64),
                    ("COLS", cols as i64),
                    ("TILE", TILE as i64),
                ],
                grid: [blocks(cols, TILE), blocks(rows, TILE), planes as u32],
                block: [TILE as u32, TILE as u32 / 2, 1],
                shared_bytes: 0,
                args: vec![Arg::Input(0), Arg::Output],
            }],
        };
        cases.push(
            Case::new(
                format!("transpose {planes}x{rows}x{cols}"),
                vec![x],
                expected,
                Allow::Max(0.0, 1e-6), // a copy
            )
            .cuda(op),
        );
    }
    check("transpose", &cases);
}

/// atomicAdd, __syncthreads_count, __ballot_sync, __shfl_up_sync and __shfl_sync.
static VOTES: Source = Source {
    name: "votes.cu",
    code: r#"
// y[0]: sum of x; y[1]: count of x > 0; y[2]: count of x < 0;
// y[3 + i]: x[i - 1] within the warp (lane 0 keeps its own); y[3 + N + i]: lane 3's x.
extern "C" __global__ void votes(const float* __restrict__ x, float* __restrict__ y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < N ? x[i] : 0.f;
    atomicAdd(&y[0], v);
    int positives = __syncthreads_count(v > 0.f);
    if (threadIdx.x == 0) atomicAdd(&y[1], (float)positives);
    unsigned int negatives = __ballot_sync(0xffffffff, v < 0.f);
    if (threadIdx.x % 32 == 0) atomicAdd(&y[2], (float)__popc(negatives));
    float up = __shfl_up_sync(0xffffffff, v, 1);
    float lane3 = __shfl_sync(0xffffffff, v, 3);
    if (i < N) {
        y[3 + i] = up;
        y[3 + N + i] = lane3;
    }
}
"#,
};

#[test]
fn atomics_votes_and_shuffles() {
    let mut cases = Vec::new();
    for n in [1, 5, 32, 33, 100, 300] {
        let x = ramp(n, 5);
        let mut expected = vec![0.0; 3 + 2 * n];
        expected[0] = x.iter().sum();
        expected[1] = x.iter().filter(|v| **v > 0.0).count() as f32;
        expected[2] = x.iter().filter(|v| **v < 0.0).count() as f32;
        for i in 0..n {
            let lane = i % 32;
            expected[3 + i] = x[if lane == 0 { i } else { i - 1 }];
            // Lane 3 of a warp past the end of x holds the 0 the kernel loads there.
            expected[3 + n + i] = x.get(i - lane + 3).copied().unwrap_or(0.0);
        }
        let op = CudaOp {
            consts: vec![],
            launches: vec![Launch {
                source: &VOTES,
                entry: "votes",
                defines: vec![("N", n as i64)],
                grid: [blocks(n, 64), 1, 1],
                block: [64, 1, 1],
                shared_bytes: 0,
                args: vec![Arg::Input(0), Arg::Output],
            }],
        };
        cases.push(
            Case::new(
                format!("votes n{n}"),
                vec![x],
                expected,
                Allow::Max(1e-5, 1e-6), // atomicAdd order differs between backends
            )
            .cuda(op),
        );
    }
    check("votes", &cases);
}

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

static BROKEN: Source = Source {
    name: "broken.cu",
    code: "extern \"C\" __global__ void broken(float* y) {\n    y[0] = undeclared_name;\n}\n",
};

#[test]
fn broken_source_is_a_compile_error_naming_the_file() {
    let compiler = match Compiler::new("sm_90", None) {
        Ok(c) => c,
        Err(e) => {
            return require_or_skip(Need::Nvrtc, "NVRTC compile of broken.cu", &e.to_string())
        }
    };
    let launch = Launch {
        source: &BROKEN,
        entry: "broken",
        defines: vec![("SOME_DEFINE", 3)],
        grid: [1, 1, 1],
        block: [1, 1, 1],
        shared_bytes: 0,
        args: vec![Arg::Output],
    };
    let err = compiler.module(&launch).unwrap_err();
    assert!(matches!(err, CudaError::Compile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("broken.cu"), "{msg}");
    assert!(
        msg.contains("undeclared_name") && msg.contains("undefined"),
        "{msg}"
    );
    assert!(msg.contains("SOME_DEFINE=3"), "{msg}");
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-cuda-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn disk_cache_serves_a_second_compiler_and_survives_corruption() {
    let dir = temp_dir("module-cache");
    let first = match Compiler::new("sm_90", Some(dir.clone())) {
        Ok(c) => c,
        Err(e) => return require_or_skip(Need::Nvrtc, "NVRTC disk cache test", &e.to_string()),
    };
    let launch = &saxpy(100, 2000).launches[0];
    let module = first.module(launch).unwrap();
    assert_eq!(module.kind, ImageKind::Cubin);
    assert!(module.image.starts_with(b"\x7fELF"), "not an ELF CUBIN");
    let used = module.resources();
    assert_eq!(used.len(), 1, "{}", module.ptxas);
    assert_eq!(used[0].entry, "saxpy_f32");
    assert!(used[0].registers > 0, "{}", module.ptxas);
    assert_eq!(first.compiled_count(), 1);
    first.module(launch).unwrap();
    assert_eq!(first.compiled_count(), 1, "the memory cache missed");

    let second = Compiler::new("sm_90", Some(dir.clone())).unwrap();
    assert!(
        *second.module(launch).unwrap() == *module,
        "second compiler: another module"
    );
    assert_eq!(second.compiled_count(), 0, "the disk cache missed");

    // A different specialisation is a different file.
    second.module(&saxpy(101, 2000).launches[0]).unwrap();
    assert_eq!(second.compiled_count(), 1);

    // Corrupt every cache file: a third compiler recompiles and rewrites them.
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cubin"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        let mut bytes = std::fs::read(f).unwrap();
        if i == 0 {
            bytes.truncate(bytes.len() / 2);
        } else {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
        std::fs::write(f, bytes).unwrap();
    }
    let third = Compiler::new("sm_90", Some(dir.clone())).unwrap();
    assert!(
        *third.module(launch).unwrap() == *module,
        "third compiler: another module"
    );
    third.module(&saxpy(101, 2000).launches[0]).unwrap();
    assert_eq!(third.compiled_count(), 2);
    let fourth = Compiler::new("sm_90", Some(dir.clone())).unwrap();
    assert!(
        *fourth.module(launch).unwrap() == *module,
        "fourth compiler: another module"
    );
    assert_eq!(
        fourth.compiled_count(),
        0,
        "the recompiled files were not rewritten"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_cache_dir_does_not_fail_compilation() {
    let file = temp_dir("not-a-dir");
    std::fs::write(&file, b"a file where the cache dir should be").unwrap();
    let compiler = match Compiler::new("sm_90", Some(file.join("sub"))) {
        Ok(c) => c,
        Err(e) => return require_or_skip(Need::Nvrtc, "NVRTC cache error test", &e.to_string()),
    };
    assert!(compiler.module(&saxpy(10, 1000).launches[0]).is_ok());
    let _ = std::fs::remove_file(&file);
}

#[test]
fn default_cache_dir_follows_the_environment() {
    // Only reads the environment this process was started with: no set_var (tests run
    // in parallel threads).
    let dir = default_cache_dir();
    match std::env::var_os("KESTREL_CUDA_CACHE").filter(|v| !v.is_empty()) {
        Some(v) => assert_eq!(dir, Some(PathBuf::from(v))),
        None if std::env::var_os("XDG_CACHE_HOME").is_some_and(|v| !v.is_empty()) => {
            assert!(dir.unwrap().ends_with("kestrel/cuda"))
        }
        None if std::env::var_os("HOME").is_some_and(|v| !v.is_empty()) => {
            assert!(dir.unwrap().ends_with(".cache/kestrel/cuda"))
        }
        None => assert_eq!(dir, None),
    }
}

/// Without libcuda (this machine) opening a GPU is an `Unavailable` error, not a panic.
#[test]
fn gpu_without_a_driver_is_unavailable() {
    match device::probe(0) {
        Ok(name) => println!("skipping the no-driver test: found {name}"),
        Err(probe) => {
            assert!(matches!(probe, CudaError::Unavailable(_)), "{probe:?}");
            let err = Gpu::new(0)
                .err()
                .expect("probe failed but Gpu::new succeeded");
            assert!(matches!(err, CudaError::Unavailable(_)), "{err:?}");
            assert!(err.to_string().starts_with("no CUDA device"), "{err}");
            println!("no GPU here, as expected: {err}");
        }
    }
}

/// Sessions are built and run from any thread: both must cross threads.
#[test]
fn compiler_and_gpu_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Compiler>();
    send_sync::<Gpu>();
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
// the pattern issue 13 found in depthwise.cu) or unsigned.
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
/// past 2^31 - 1 and passes a bounds test (issue 13). Such an index is unsigned.
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
