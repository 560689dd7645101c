//! The CUDA backend end to end (the fixtures on every device, the GPU included, are
//! tests/fixtures.rs). Without a GPU the device tests print
//! `skipping …: no CUDA device (…)` (REQUIRE_CUDA=1 turns that into a failure); the NVRTC
//! test needs no GPU, only libnvrtc, and KESTREL_REQUIRE_NVRTC=1 makes its skip a failure.

mod common;

use common::{cuda_session_or_skip, fixture, reference, temp_path, FIXTURES};
use kestrel::compare::{diff, ATOL, DEFAULT_RTOL};
use kestrel::CudaError;
use kestrel::{Device, Error, Model, Precision, SessionOptions};
use kestrel_kernels::testing::{require_or_skip, Need};
use kestrel_loader::read_tensors;
use std::process::Command;

fn cuda_opts(batch: usize, optimize: bool) -> SessionOptions {
    SessionOptions::default()
        .with_device(Device::Cuda(0))
        .with_batch(batch)
        .with_optimize(optimize)
        .with_cuda_cache(Some(temp_path("cuda-cache")))
}

/// Every kernel specialisation the fixtures need at batch 1 compiles with NVRTC to CUBIN
/// for the H100/H200's sm_90 (and a representative part for the A100's sm_80), with and
/// without the graph passes, in every precision: a kernel that does not compile, or that
/// ptxas cannot fit (registers, shared memory), fails here, on a machine with no GPU. Each
/// launch's registers and shared memory are checked against what a block may use on those
/// GPUs (the launch would fail with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES) and printed.
#[test]
fn nvrtc_compiles_every_fixture_kernel() {
    let cache = temp_path("nvrtc-fixtures");
    // Batch 3 gives the same kernels other shape constants (the emulator runs it), and
    // sm_80 differs from sm_90 in the code paths, not the shapes: every fixture on sm_90,
    // the op fixtures and two convnets on sm_80, each at batch 1 with and without the
    // passes in fp32 and with them in tf32 and fp16.
    let sm80 = [
        "allops",
        "activations",
        "binary",
        "v3ops",
        "resnet18",
        "mobilenetv2",
    ];
    for (arch, fixtures) in [("sm_90", FIXTURES), ("sm_80", &sm80[..])] {
        let mut modules = 0;
        let mut table = std::collections::BTreeMap::new();
        for name in fixtures {
            let model = Model::load(fixture(name)).unwrap();
            let runs = [
                (1, true, Precision::Fp32),
                (1, false, Precision::Fp32),
                (1, true, Precision::Tf32),
                (1, true, Precision::Fp16),
            ];
            for (batch, optimize, precision) in runs {
                let opts = SessionOptions::default()
                    .with_batch(batch)
                    .with_optimize(optimize)
                    .with_precision(precision)
                    .with_cuda_cache(Some(cache.clone()));
                let label = format!("{arch} {name} b{batch} optimize={optimize} {precision}");
                let build = match model.compile_cuda(&opts, arch) {
                    Ok(build) => build,
                    Err(Error::Cuda(CudaError::Unavailable(why))) => {
                        let what = "NVRTC compile of the fixtures";
                        return require_or_skip(Need::Nvrtc, what, &why);
                    }
                    Err(e) => panic!("{label}: {e}"),
                };
                assert_eq!(build.image, "CUBIN", "{label}: {}", build.nvrtc);
                modules += build.modules;
                for k in &build.kernels {
                    check_fits(&label, k);
                    let key = (
                        k.entry,
                        k.registers,
                        k.static_shared_bytes,
                        k.dynamic_shared_bytes,
                    );
                    table.entry(key).or_insert((
                        k.block.iter().product::<u32>(),
                        k.stack_bytes,
                        k.spill_stores + k.spill_loads,
                    ));
                }
            }
        }
        assert!(modules > 20, "{arch}: only {modules} modules compiled");
        println!("{arch}: ptxas per kernel (entry, registers, static smem, dynamic smem: threads, stack, spill bytes)");
        for (key, value) in &table {
            println!("  {key:?}: {value:?}");
        }
    }
    // The second pass finds every module in the disk cache.
    let model = Model::load(fixture("resnet18")).unwrap();
    let opts = SessionOptions::default().with_cuda_cache(Some(cache.clone()));
    assert!(model.compile_cuda(&opts, "sm_90").unwrap().modules > 0);
    let _ = std::fs::remove_dir_all(&cache);
}

/// A launch the device would refuse: more registers than a block may hold (64 K on
/// sm_80/sm_90), or more shared memory than a block may have (48 KiB static; dynamic
/// past that needs an opt-in none of the kernels makes).
fn check_fits(label: &str, k: &kestrel::CudaKernel) {
    let threads: u32 = k.block.iter().product();
    let what = format!(
        "{label}: node {} kernel {} ({} threads)",
        k.node, k.entry, threads
    );
    assert!(k.registers > 0, "{what}: ptxas reported no registers");
    // Registers are given out per warp, in units of 256.
    let per_warp = (k.registers * 32).div_ceil(256) * 256;
    assert!(
        per_warp * threads.div_ceil(32) <= 65536,
        "{what}: {} registers a thread is over the 64 K a block may use",
        k.registers
    );
    let shared = k.static_shared_bytes + k.dynamic_shared_bytes;
    assert!(
        shared <= 48 << 10,
        "{what}: {shared} bytes of shared memory, over 48 KiB"
    );
}

/// Two sessions of one model on one GPU, run from two threads at once, each get the
/// output a lone run gives.
#[test]
fn two_sessions_run_concurrently() {
    let model = Model::load(fixture("resnet18")).unwrap();
    let Some(mut lone) = cuda_session_or_skip(&model, &cuda_opts(1, true)) else {
        return;
    };
    let (inputs, expected) = common::inputs_and_lone_outputs(&mut lone, 2);
    std::thread::scope(|scope| {
        for (x, want) in inputs.iter().zip(&expected) {
            let model = &model;
            scope.spawn(move || {
                let mut s = model.session(&cuda_opts(1, true)).unwrap();
                for _ in 0..50 {
                    assert_eq!(s.run(&[x]).unwrap().get(0).unwrap().data, &want[..]);
                }
            });
        }
    });
}

/// With no GPU (or no driver), asking for one is an error that says so, never a panic.
#[test]
fn no_gpu_is_a_clear_error() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    match model.session(&cuda_opts(1, true)) {
        Ok(_) => println!("skipping: a CUDA device is present"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("no CUDA device: "), "{msg}");
        }
    }
    // A device ordinal that cannot exist is refused the same way, GPU or not.
    let opts = SessionOptions::default().with_device(Device::Cuda(1000));
    let msg = model.session(&opts).err().unwrap().to_string();
    assert!(msg.starts_with("no CUDA device: "), "{msg}");
}

/// The CLI turns that error into one line and exit 2.
#[test]
fn cli_without_gpu_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["run", "--device", "cuda:1000"])
        .arg(fixture("cifarnet"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: no CUDA device: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["run", "--device", "gpu"])
        .arg(fixture("cifarnet"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `kestrel info --device cuda --arch sm_80` lists every launch with ptxas's registers
/// and shared memory, without a GPU (NVRTC only).
#[test]
fn info_lists_each_kernels_registers_and_shared_memory() {
    let out = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["info", "--device", "cuda", "--arch", "sm_80"])
        .arg(fixture("cifarnet"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("NVRTC library") {
        return require_or_skip(Need::Nvrtc, "kestrel info --device cuda", &stderr);
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("CUBIN for sm_80"), "{stdout}");
    // Every launch row: node, kernel, grid, block, then registers > 0 and shared memory.
    // The kernel table is the last one; its header starts "node  kernel".
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.iter().rposition(|l| l.starts_with("node ")).unwrap();
    assert!(lines[header].contains("regs"), "{stdout}");
    let rows: Vec<Vec<&str>> = lines[header + 1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.len() >= 3, "{stdout}");
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
        let registers: u32 = row[4].parse().unwrap();
        assert!(registers > 0 && registers <= 255, "{row:?}");
    }
    assert!(rows.iter().any(|r| r[1] == "conv2d_igemm"), "{stdout}");
}

/// A batch whose activations outgrow the kernels' 32-bit indexing is an error naming the
/// node, found before NVRTC or a GPU is needed.
#[test]
fn too_large_for_32_bit_indexing_is_an_error() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    // conv1's output: 500k x 6 x 28 x 28 > 2^31
    let opts = SessionOptions::default().with_batch(500_000);
    let msg = model.compile_cuda(&opts, "sm_90").unwrap_err().to_string();
    assert!(msg.contains("conv1") && msg.contains("32-bit"), "{msg}");
}

/// `profile_steps` on the GPU: every step that moves data gets a positive GPU time, each
/// run is queued whole before the GPU starts it, the times add up to about one graph run,
/// and the session's graph still gives PyTorch's output afterwards.
#[test]
fn profile_steps_times_every_kernel_on_cuda() {
    for name in ["cifarnet", "resnet18"] {
        let model = Model::load(fixture(name)).unwrap();
        let Some(mut session) = cuda_session_or_skip(&model, &cuda_opts(1, true)) else {
            return;
        };
        let refs = read_tensors(&reference(name, 1)).unwrap();
        let input = refs.tensors["input"].data.clone().unwrap();
        session.warm_up(3).unwrap();
        let steps = session.steps();
        let times = session.profile_steps(&[&input], 20).unwrap();
        let table: Vec<String> = steps
            .iter()
            .zip(&times.seconds)
            .map(|(s, t)| format!("{} {} {:.1} µs", s.name, s.kernel, t * 1e6))
            .collect();
        println!("{name}: {table:#?}");
        assert_eq!(times.queued_ahead, Some(20), "{name}: {table:?}");
        for (s, &t) in steps.iter().zip(&times.seconds) {
            match s.moves_data {
                // No batch-1 layer of these takes 10 ms on an H100.
                true => assert!(t > 0.0 && t < 1e-2, "{name} {}: {t} s", s.name),
                false => assert_eq!(t, 0.0, "{name} {}", s.name),
            }
        }
        // One graph run's wall time, median of 50: the same kernels, plus the input and
        // output copies, the graph launch and the synchronize.
        let mut walls: Vec<f64> = (0..50)
            .map(|_| {
                let t = std::time::Instant::now();
                session.run(&[&input]).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        walls.sort_by(f64::total_cmp);
        let wall = walls[walls.len() / 2];
        let sum: f64 = times.seconds.iter().sum();
        // Queued ahead, eager kernels run back to back as the graph's do: their sum is
        // about the graph's kernel time, under its wall time (3x for a noisy GPU). A sum
        // under a 20th of it would mean the events timed next to nothing.
        assert!(
            sum > wall / 20.0 && sum < 3.0 * wall,
            "{name}: steps sum to {:.1} µs, a graph run takes {:.1} µs",
            sum * 1e6,
            wall * 1e6
        );
        let out = session.run(&[&input]).unwrap();
        let expected = refs.tensors["output"].data.as_ref().unwrap();
        let d = diff(out.get(0).unwrap().data, expected, DEFAULT_RTOL, ATOL);
        assert!(d.ok(), "{name} after profiling: max abs {:.3e}", d.max_abs);
    }
}
