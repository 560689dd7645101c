//! `kestrel bench`: latency of `Session::run` as a real-time caller sees it.

use crate::run::random_inputs;
use anyhow::{Context, Result};
use kestrel::Model;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    model: PathBuf,
    /// cpu, cuda (GPU 0) or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: kestrel::Device,
    /// Default: the model's fixed batch, or 1.
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed runs; default: as many as fit in about 3 seconds (at least 10).
    #[arg(long)]
    iters: Option<usize>,
    /// Untimed runs first, to warm caches and the branch predictor.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Distinct random inputs, cycled: one fixed input lets the branch predictor learn
    /// max-pool branches and flatters every engine.
    #[arg(long, default_value_t = 8)]
    inputs: usize,
    /// Write the results as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also time every step (kernel call) of the plan and list the slowest.
    #[arg(long)]
    per_layer: bool,
    /// Pin this thread and the worker threads to cores, one each (Linux).
    #[arg(long)]
    pin: bool,
    /// On the CPU, run the batch as passes of this many images (a divisor of the batch);
    /// default: chosen from the model and the caches.
    #[arg(long)]
    micro_batch: Option<usize>,
    #[command(flatten)]
    kernels: crate::KernelArgs,
}

/// Time budget when `--iters` is not given.
const BUDGET: Duration = Duration::from_secs(3);

pub fn bench(args: &BenchArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    let batch = args.batch.unwrap_or_else(|| model.default_batch());
    let opts = args
        .kernels
        .options(args.device, batch, args.threads)?
        .with_micro_batch(args.micro_batch);
    let pinned = match args.pin {
        true => Some(kestrel::pin_threads()?),
        false => None,
    };
    let mut session = model.session(&opts)?;
    let inputs: Vec<Vec<Vec<f32>>> = (0..args.inputs.max(1) as u64)
        .map(|seed| random_inputs(&model, batch, seed))
        .collect::<Result<_>>()?;
    let slices: Vec<Vec<&[f32]>> = inputs
        .iter()
        .map(|i| i.iter().map(|d| &d[..]).collect())
        .collect();
    let mut run = |i: usize| -> Result<()> {
        session.run(&slices[i % slices.len()])?;
        Ok(())
    };
    let start = Instant::now();
    for i in 0..args.warmup {
        run(i)?;
    }
    let per_run = start.elapsed().as_secs_f64() / args.warmup.max(1) as f64;
    let iters = args.iters.unwrap_or_else(|| {
        ((BUDGET.as_secs_f64() / per_run.max(1e-7)) as usize).clamp(10, 100_000)
    });
    let mut samples = Vec::with_capacity(iters);
    let mut progress = Progress::new(iters);
    let timed = Instant::now();
    for i in 0..iters {
        let t = Instant::now();
        run(i)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        progress.tick(i + 1);
    }
    progress.finish();
    let wall = timed.elapsed().as_secs_f64();
    samples.sort_by(f64::total_cmp);
    let stats = Stats::of(&samples, batch);
    let isa = session.kernels_name().to_string();
    println!(
        "{}: {} ({isa}, {}), batch {}, {} thread(s), {iters} runs after {} warm-up, {} inputs cycled, {:.1} s",
        args.model.display(),
        args.device,
        session.precision(),
        batch,
        args.threads,
        args.warmup,
        slices.len(),
        wall
    );
    let cpu = cpu_report(&isa);
    if let Some((line, _)) = &cpu {
        println!("{line}");
    }
    let cuda = session.cuda_info();
    if let Some(cuda) = &cuda {
        println!("cuda: {}", cuda.describe());
    }
    if let Some(cores) = &pinned {
        println!(
            "pinned: this thread to core {}, workers to {:?}",
            cores[0],
            &cores[1..]
        );
    }
    println!(
        "median {:.1} µs   p90 {:.1}   p99 {:.1}   p99.9 {:.1}   min {:.1}   max {:.1}",
        stats.median, stats.p90, stats.p99, stats.p999, stats.min, stats.max
    );
    println!(
        "throughput {:.1} inferences/s ({} per run / median)",
        stats.throughput, batch
    );
    let per_pass = session.images_per_pass();
    if per_pass < batch {
        println!(
            "the batch runs as {} passes of {per_pass} image(s) through the network",
            batch / per_pass
        );
    }
    let layers = match args.per_layer {
        true => {
            let on_gpu = args.device != kestrel::Device::Cpu;
            Some(per_layer(&mut session, &slices, iters.min(200), on_gpu)?)
        }
        false => None,
    };
    if let Some(path) = &args.json {
        let mut json = serde_json::json!({
            "model": args.model.display().to_string(),
            "device": args.device.to_string(),
            "isa": isa,
            "precision": session.precision().as_str(),
            "batch": batch,
            "images_per_pass": session.images_per_pass(),
            "threads": args.threads,
            "iters": iters,
            "warmup": args.warmup,
            "inputs": slices.len(),
            "median_us": stats.median,
            "p90_us": stats.p90,
            "p99_us": stats.p99,
            "p999_us": stats.p999,
            "min_us": stats.min,
            "max_us": stats.max,
            "mean_us": stats.mean,
            "throughput_per_s": stats.throughput,
            "arena_bytes": session.arena_bytes(),
            "kernel_calls": session.kernel_count(),
            "pinned_cores": pinned,
            "samples_us": samples,
        });
        if let Some((_, cpu)) = cpu {
            json["cpu"] = cpu;
        }
        if let Some(cuda) = &cuda {
            json["cuda"] = serde_json::json!({
                "device": cuda.device,
                "arch": cuda.arch,
                "driver_version": format!("{}.{}", cuda.driver.0, cuda.driver.1),
                "nvrtc_version": format!("{}.{}", cuda.nvrtc.0, cuda.nvrtc.1),
                "nvrtc_library": cuda.nvrtc_library.as_ref().map(|p| p.display().to_string()),
                "modules": cuda.image,
            });
        }
        if let Some(rows) = layers {
            json["per_layer"] = serde_json::Value::Array(rows);
        }
        std::fs::write(path, format!("{json:#}\n"))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// For the SIMD kernels (`isa` names one): the CPU as it reports itself and the GEMM
/// blocking chosen for it, as a line and as JSON. None for the reference kernels and CUDA.
fn cpu_report(isa: &str) -> Option<(String, serde_json::Value)> {
    let isa: kestrel_kernels::Isa = isa.parse().ok()?;
    let cpu = kestrel_kernels::cpu_info::cpu();
    let t = kestrel_kernels::gemm::tiles(isa);
    let line = format!("cpu: {cpu}\nkernels: {isa}, {t}");
    let json = serde_json::json!({
        "vendor": cpu.vendor,
        "brand": cpu.brand,
        "family": cpu.family,
        "model": cpu.model,
        "l1d_bytes": cpu.l1d,
        "l2_bytes": cpu.l2,
        "l3_bytes": cpu.l3,
        "fma512": format!("{:?}", cpu.fma512),
        "gemm": { "mr": t.mr, "nr": t.nr, "kc": t.kc, "nc": t.nc, "mc_rows": t.mc.map(|p| p * t.mr) },
    });
    Some((line, json))
}

/// Times each step with `Session::profile_steps` over about `runs` runs, the inputs
/// cycled, and prints the steps by time spent with their achieved FLOP/s and bytes/s
/// (on CUDA also as a share of the H100's ceilings): where a run's time goes, and how far
/// each step is from its roofline. Returns one JSON row per step, in plan order.
fn per_layer(
    session: &mut kestrel::Session,
    inputs: &[Vec<&[f32]>],
    runs: usize,
    cuda: bool,
) -> Result<Vec<serde_json::Value>> {
    let steps = session.steps();
    let per_input = runs.div_ceil(inputs.len()).max(1);
    let (mut secs, mut ahead) = (vec![0f64; steps.len()], 0);
    for x in inputs {
        let t = session.profile_steps(x, per_input)?;
        secs.iter_mut().zip(&t.seconds).for_each(|(s, t)| *s += t);
        ahead += t.queued_ahead.unwrap_or(0);
    }
    secs.iter_mut().for_each(|s| *s /= inputs.len() as f64);
    let runs = per_input * inputs.len();
    let total: f64 = secs.iter().sum();
    let rate = |amount: u64, s: f64| if s > 0.0 { amount as f64 / s } else { 0.0 };
    // TFLOP/s on the GPU, GFLOP/s on the CPU.
    let (flop_unit, flop_scale) = if cuda {
        ("TFLOP/s", 1e12)
    } else {
        ("GFLOP/s", 1e9)
    };
    let mut order: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].moves_data).collect();
    order.sort_by(|&a, &b| secs[b].total_cmp(&secs[a]));
    match cuda {
        true => println!(
            "\nper step, GPU time (CUDA events), mean of {runs} runs, slowest first (top {SHOWN}):"
        ),
        false => println!("\nper step, mean of {runs} runs, slowest first (top {SHOWN}):"),
    }
    let mut head = format!(
        "{:<36} {:<22} {:<12} {:>9} {:>9} {:>9} {:>9}",
        "step", "kernel", "algorithm", "µs", "MFLOP", flop_unit, "GB/s"
    );
    if cuda {
        head += &format!(" {:>6} {:>6}", "%fma", "%hbm");
    }
    println!("{head} {:>6}", "%time");
    for &i in order.iter().take(SHOWN) {
        let (s, t) = (&steps[i], secs[i]);
        let (flops, bytes) = (rate(s.flops, t), rate(s.bytes, t));
        let mut row = format!(
            "{:<36} {:<22} {:<12} {:>9.1} {:>9.3} {:>9.3} {:>9.1}",
            s.name,
            s.kernel,
            s.algorithm.unwrap_or("-"),
            t * 1e6,
            s.flops as f64 / 1e6,
            flops / flop_scale,
            bytes / 1e9
        );
        if cuda {
            row += &format!(
                " {:>6.1} {:>6.1}",
                100.0 * flops / H100_FP32_FLOPS,
                100.0 * bytes / H100_BYTES_PER_S
            );
        }
        println!("{row} {:>6.1}", 100.0 * t / total.max(f64::MIN_POSITIVE));
    }
    if cuda {
        println!(
            "(%fma: of the H100's ~67 TFLOP/s fp32 FMA (tensor-core precisions can pass 100%); \
             %hbm: of its ~3.0 TB/s device copy, over 100% when the data comes from L2; the \
             larger of the two is how close a step is to its roofline)"
        );
        let late = match ahead < runs {
            true => format!(
                "; {} were not, and their times include launch gaps",
                runs - ahead
            ),
            false => String::new(),
        };
        println!("({ahead} of {runs} runs were queued whole before the GPU started them{late})");
    }
    let mut by_kind: Vec<(String, f64, u64, u64)> = Vec::new();
    for (s, &t) in steps.iter().zip(&secs).filter(|(s, _)| s.moves_data) {
        let kind: String = s
            .kernel
            .split(['+', '1', '3', '5', '7'])
            .next()
            .unwrap_or("")
            .to_string();
        match by_kind.iter_mut().find(|(k, ..)| *k == kind) {
            Some(e) => {
                e.1 += t;
                e.2 += s.flops;
                e.3 += s.bytes;
            }
            None => by_kind.push((kind, t, s.flops, s.bytes)),
        }
    }
    by_kind.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\nby kind:");
    for (kind, t, flops, bytes) in by_kind {
        println!(
            "{kind:<20} {:>10.1} µs {:>6.1}% {:>9.3} {flop_unit} {:>9.1} GB/s",
            t * 1e6,
            100.0 * t / total.max(f64::MIN_POSITIVE),
            rate(flops, t) / flop_scale,
            rate(bytes, t) / 1e9
        );
    }
    Ok(steps
        .iter()
        .zip(&secs)
        .map(|(s, t)| {
            serde_json::json!({
                "name": s.name,
                "kernel": s.kernel,
                "algorithm": s.algorithm,
                "us": t * 1e6,
                "flops": s.flops,
                "bytes": s.bytes,
            })
        })
        .collect())
}

/// The H100's ceilings, from docs/performance.md ("H100 ceilings"): fp32 FMA throughput is
/// the datasheet's ~67 TFLOP/s (not measured); device memory moves ~3.0 TB/s, measured as a
/// device-to-device copy, reads plus writes (HBM3's peak is 3.35 TB/s), which is how
/// `StepInfo::bytes` counts too.
const H100_FP32_FLOPS: f64 = 67e12;
const H100_BYTES_PER_S: f64 = 3.0e12;

/// Steps `--per-layer` lists.
const SHOWN: usize = 20;

/// Latency percentiles in microseconds over sorted samples.
struct Stats {
    median: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    min: f64,
    max: f64,
    mean: f64,
    throughput: f64,
}

impl Stats {
    fn of(sorted: &[f64], batch: usize) -> Stats {
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let q =
            |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        let median = q(0.5);
        Stats {
            median,
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            throughput: batch as f64 * 1e6 / median,
        }
    }
}

/// A progress bar on stderr for runs longer than a second, when stderr is a terminal.
struct Progress {
    total: usize,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            start: now,
            last: now,
            shown: false,
        }
    }

    fn tick(&mut self, done: usize) {
        // Checking the clock every 64 runs keeps the bar's cost out of the samples.
        if !done.is_multiple_of(64)
            || self.start.elapsed() < Duration::from_secs(1)
            || !std::io::stderr().is_terminal()
        {
            return;
        }
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let width = 40;
        let filled = width * done / self.total;
        eprint!(
            "\r[{}{}] {done}/{}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
