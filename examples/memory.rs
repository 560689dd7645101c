//! Where a model's memory goes: resident set size after each stage of one load, session
//! build and run, as one JSON line (Linux: reads /proc/self/status).
//!
//!     cargo run --release --example memory -- MODEL [--threads N] [--sessions N]
//!
//! `file_bytes`: the model file; `arena_bytes`: the session's activation arena;
//! `rss_*`: VmRSS after `Model::load`, after the session is built and after one run on a
//! seeded random input (the steady state); `peak`: VmHWM at the end. `--sessions 2`
//! builds and runs a second session from the same model after the first (dropped), and
//! reports its RSS too. Numbers in bytes. How they were used: docs/performance.md,
//! "Memory (peak and steady-state RSS)".

use kestrel::{Model, Session, SessionOptions};
use kestrel_kernels::rng::Rng;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// VmRSS and VmHWM of this process, in bytes (0 where /proc is missing).
fn rss_and_peak() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One run of `session` on seeded random inputs.
fn run_once(model: &Model, session: &mut Session) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(0);
    let inputs: Vec<Vec<f32>> = (0..model.inputs().len())
        .map(|i| {
            let len = session.input_shape(i).unwrap_or(&[]).iter().product();
            rng.vec(len)
        })
        .collect();
    let slices: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    session.run(&slices)?;
    Ok(())
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut model_path, mut threads, mut sessions) = (None, 1, 1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().ok_or("--threads N")?.parse()?,
            "--sessions" => sessions = args.next().ok_or("--sessions N")?.parse()?,
            _ => model_path = Some(PathBuf::from(a)),
        }
    }
    let path = model_path.ok_or("usage: memory MODEL [--threads N] [--sessions N]")?;
    let file_bytes = std::fs::metadata(&path)?.len();
    let model = Model::load(&path)?;
    let (rss_load, _) = rss_and_peak();
    let opts = SessionOptions::default().with_threads(threads);
    let mut fields = vec![
        format!("\"model\":{:?}", path.display().to_string()),
        format!("\"file_bytes\":{file_bytes}"),
        format!("\"rss_load\":{rss_load}"),
    ];
    for s in 0..sessions {
        let mut session = model.session(&opts)?;
        let (rss_session, _) = rss_and_peak();
        run_once(&model, &mut session)?;
        let (rss_run, _) = rss_and_peak();
        let tag = if s == 0 {
            String::new()
        } else {
            format!("_{s}")
        };
        fields.push(format!("\"arena_bytes{tag}\":{}", session.arena_bytes()));
        fields.push(format!("\"rss_session{tag}\":{rss_session}"));
        fields.push(format!("\"rss_run{tag}\":{rss_run}"));
    }
    let (_, peak) = rss_and_peak();
    fields.push(format!("\"peak\":{peak}"));
    Ok(format!("{{{}}}", fields.join(",")))
}
