//! Tests of the CUDA infrastructure itself (compiler cache, device probe,
//! `testing::everywhere::check`) with tiny inline kernels; the emulator's own are in
//! `emu/tests.rs`.

use super::compile::{default_cache_dir, Compiler};
use super::device::{self, Gpu};
use super::nvrtc::ImageKind;
use super::{blocks, Arg, CudaError, CudaOp, Launch, Source};
use crate::testing::everywhere::{check, Allow, Case};
use crate::testing::{require_or_skip, Need};
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

/// Deterministic values in [-0.5, 0.5): a hash of the index, for inputs that need no Rng.
pub(super) fn ramp(n: usize, seed: u32) -> Vec<f32> {
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
