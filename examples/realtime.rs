//! A real-time loop as an application would write it: load the model once, give each
//! worker thread its own session, feed every worker frames at a fixed rate, and report
//! the latency percentiles and missed deadlines at the end.
//!
//!     cargo run --release --example realtime -- [MODEL] [--rate HZ] [--seconds S]
//!         [--workers N] [--device cpu|cuda]
//!
//! Frame k of a worker is released at `start + k / rate` (a camera delivering it) and is due
//! when frame k + 1 is released. Latency runs from release to output ready, so a late
//! wake-up or a queue behind an overrun frame counts against it, as it would in a product.

use clap::Parser;
use kestrel::{Device, Model, Session, SessionOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(default_value = "tests/fixtures/cifarnet.safetensors")]
    model: PathBuf,
    /// Frames per second each worker receives.
    #[arg(long, default_value_t = 60.0)]
    rate: f64,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Worker threads, each running its own session (one stream of frames each).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// cpu, cuda (GPU 0) or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: Device,
}

/// What one worker measured.
struct Stats {
    latencies: Vec<Duration>,
    misses: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if !(args.rate > 0.0 && args.seconds > 0.0 && args.workers > 0) {
        return Err("--rate, --seconds and --workers must be positive".into());
    }
    // Loaded once: a Model is Send + Sync, so the workers borrow it.
    let model = Model::load(&args.model)?;
    // One thread per session: the workers are the parallelism, not the kernels.
    let opts = SessionOptions::default()
        .with_device(args.device)
        .with_threads(1);
    // Every session is built and warmed before the clock starts: building one compiles
    // nothing later, and the first runs fault in the arena and load the caches.
    let mut sessions = Vec::with_capacity(args.workers);
    for _ in 0..args.workers {
        let mut session = model.session(&opts)?;
        session.warm_up(3)?;
        sessions.push(session);
    }
    println!(
        "{}: {} worker(s) at {} Hz for {} s on {} ({})",
        args.model.display(),
        args.workers,
        args.rate,
        args.seconds,
        args.device,
        sessions[0].kernels_name()
    );
    let frames = (args.rate * args.seconds).round() as usize;
    let period = 1.0 / args.rate;
    // Released a little ahead so that every worker has started by its first frame.
    let start = Instant::now() + Duration::from_millis(10);
    let results: Vec<Result<Stats, kestrel::Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .map(|session| scope.spawn(move || worker(session, start, period, frames)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all = Stats {
        latencies: Vec::new(),
        misses: 0,
    };
    for (i, stats) in results.into_iter().enumerate() {
        let mut stats = stats?;
        report(&format!("worker {i}"), &mut stats);
        all.latencies.extend(&stats.latencies);
        all.misses += stats.misses;
    }
    report("overall", &mut all);
    Ok(())
}

/// Runs `frames` frames on the frame clock. Allocates nothing once the loop starts.
fn worker(
    mut session: Session,
    start: Instant,
    period: f64,
    frames: usize,
) -> Result<Stats, kestrel::Error> {
    // input: the model's input shape, batch 1; reused for every frame.
    let mut input = vec![
        0.0f32;
        session
            .input_shape(0)
            .expect("a model has an input")
            .iter()
            .product()
    ];
    let mut stats = Stats {
        latencies: Vec::with_capacity(frames),
        misses: 0,
    };
    for k in 0..frames {
        // Each release time is computed from the start, never from the previous frame,
        // so sleep overshoot does not accumulate into drift.
        let release = start + Duration::from_secs_f64(k as f64 * period);
        let deadline = start + Duration::from_secs_f64((k + 1) as f64 * period);
        if let Some(wait) = release.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // A camera would write frame k into `input` here.
        input[0] = k as f32;
        session.run(&[&input])?;
        let done = Instant::now();
        stats.latencies.push(done - release);
        stats.misses += usize::from(done > deadline);
    }
    Ok(stats)
}

fn report(name: &str, stats: &mut Stats) {
    let lat = &mut stats.latencies;
    lat.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Nearest-rank percentile.
    let pct =
        |p: f64| lat[((p / 100.0 * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    if lat.is_empty() {
        println!("{name:<9} no frames");
        return;
    }
    println!(
        "{name:<9} {:>6} frames  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  {} deadline miss(es)",
        lat.len(),
        ms(pct(50.0)),
        ms(pct(90.0)),
        ms(pct(99.0)),
        ms(lat[lat.len() - 1]),
        stats.misses
    );
}
