//! After a criterion run: each CPU bench's FLOP/s as a share of the FMA peak measured on
//! this machine (`kestrel_kernels::peak::fma_peak`), for the ISA and thread count in its
//! id (`op/cpu-<isa>[-t<threads>]/shape`). Read back from criterion's own result files,
//! those written by this run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kestrel_kernels::peak::fma_peak;
use kestrel_kernels::Isa;

/// Where criterion writes its results (its own rule: `CRITERION_HOME`, else the cargo
/// target directory's `criterion/`).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    Path::new(&target).join("criterion")
}

/// Every `new/benchmark.json` under `dir` written since `since`.
fn results(dir: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            results(&path, since, out);
        } else if path.ends_with("new/benchmark.json")
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        {
            out.push(path);
        }
    }
}

/// (isa, threads) of a CPU bench id's backend part, e.g. `cpu-avx512-t2`.
fn backend(id: &str) -> Option<(Isa, usize)> {
    let mut parts = id.split('/').nth(1)?.strip_prefix("cpu-")?.split("-t");
    let isa: Isa = parts.next()?.parse().ok()?;
    let threads = parts.next().map_or(Some(1), |t| t.parse().ok())?;
    Some((isa, threads))
}

/// Prints `id  GFLOP/s  % of peak` for the CPU benches criterion ran since `since`.
pub fn print(since: SystemTime) {
    let mut files = Vec::new();
    results(&criterion_home(), since, &mut files);
    let mut peaks: BTreeMap<(Isa, usize), f64> = BTreeMap::new();
    let mut rows = Vec::new();
    for bench in files {
        let read = |p: &Path| -> Option<serde_json::Value> {
            serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
        };
        let (Some(b), Some(e)) = (read(&bench), read(&bench.with_file_name("estimates.json")))
        else {
            continue;
        };
        let id = b["full_id"].as_str().unwrap_or_default().to_string();
        let (Some(flops), Some(ns)) = (
            b["throughput"]["Elements"].as_f64(),
            e["mean"]["point_estimate"].as_f64(),
        ) else {
            continue;
        };
        let Some(key) = backend(&id) else { continue };
        let peak = *peaks
            .entry(key)
            .or_insert_with(|| fma_peak(key.0, key.1, Duration::from_millis(300)));
        rows.push((id, flops / ns, peak));
    }
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("\nFLOP/s against the FMA peak measured now (fma_peak, GFLOP/s):");
    for ((isa, threads), peak) in &peaks {
        println!("  peak {isa} {threads} thread(s): {peak:.1}");
    }
    for (id, gflops, peak) in rows {
        println!(
            "{id:60} {gflops:7.1} GFLOP/s {:5.1}%",
            100.0 * gflops / peak
        );
    }
}
