//! `kestrel bench`: latency of `Session::run` as a real-time caller sees it.

use crate::run::random_inputs;
use anyhow::{Context, Result};
use kestrel::{Model, SessionOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    model: PathBuf,
    /// cpu, cuda (GPU 0) or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = crate::parse_device)]
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
    #[command(flatten)]
    kernels: crate::KernelArgs,
}

/// Time budget when `--iters` is not given.
const BUDGET: Duration = Duration::from_secs(3);

pub fn bench(args: &BenchArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    let batch = args.batch.unwrap_or_else(|| model.default_batch());
    let opts = SessionOptions {
        device: args.device,
        batch,
        threads: args.threads,
        kernels: args.kernels.choice()?,
        ..SessionOptions::default()
    };
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
        "{}: {} ({isa}), batch {}, {} thread(s), {iters} runs after {} warm-up, {} inputs cycled, {:.1} s",
        args.model.display(),
        args.device,
        batch,
        args.threads,
        args.warmup,
        slices.len(),
        wall
    );
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
    if args.per_layer {
        per_layer(&mut session, &slices, iters.min(200))?;
        if args.device != kestrel::Device::Cpu {
            println!("(on CUDA each step runs eagerly and includes a synchronize and a copy of its output back)");
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "model": args.model.display().to_string(),
            "device": args.device.to_string(),
            "isa": isa,
            "batch": batch,
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
        std::fs::write(path, format!("{json:#}\n"))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// Times each step from one tap to the next over `runs` runs and prints the steps by time
/// spent, with their achieved FLOP/s: where a run's time goes.
fn per_layer(session: &mut kestrel::Session, inputs: &[Vec<&[f32]>], runs: usize) -> Result<()> {
    let steps = session.steps();
    let mut spent = vec![0f64; steps.len()];
    for r in 0..runs {
        let mut k = 0;
        let mut last = Instant::now();
        session.run_with(&inputs[r % inputs.len()], |_, _| {
            let now = Instant::now();
            spent[k] += (now - last).as_secs_f64();
            last = now;
            k += 1;
        })?;
    }
    let total: f64 = spent.iter().sum();
    let mut order: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].moves_data).collect();
    order.sort_by(|&a, &b| spent[b].total_cmp(&spent[a]));
    println!("\nper step, mean of {runs} runs, slowest first (top {SHOWN}):");
    println!(
        "{:<36} {:<22} {:>9} {:>10} {:>9} {:>6}",
        "step", "kernel", "MFLOP", "µs", "GFLOP/s", "%"
    );
    for &i in order.iter().take(SHOWN) {
        let (s, secs) = (&steps[i], spent[i] / runs as f64);
        let gflops = s.flops as f64 / secs / 1e9;
        let pct = 100.0 * spent[i] / total;
        println!(
            "{:<36} {:<22} {:>9.3} {:>10.1} {:>9.1} {:>6.1}",
            s.name,
            s.kernel,
            s.flops as f64 / 1e6,
            secs * 1e6,
            gflops,
            pct
        );
    }
    let mut by_kind: Vec<(String, f64, u64)> = Vec::new();
    for (s, t) in steps.iter().zip(&spent) {
        let kind: String = s
            .kernel
            .split(['+', '1', '3', '5', '7'])
            .next()
            .unwrap_or("")
            .to_string();
        match by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(e) => {
                e.1 += t;
                e.2 += s.flops;
            }
            None => by_kind.push((kind, *t, s.flops)),
        }
    }
    by_kind.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\nby kind:");
    for (kind, t, flops) in by_kind {
        let secs = t / runs as f64;
        println!(
            "{kind:<12} {:>10.1} µs {:>6.1}% {:>9.1} GFLOP/s",
            secs * 1e6,
            100.0 * t / total,
            flops as f64 / secs / 1e9
        );
    }
    Ok(())
}

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
