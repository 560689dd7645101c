//! Every distinct conv of a mobile net (batch 1, 224×224) through the kernel the planner
//! picks, one ISA and thread count, layer by layer:
//! `cargo run -p kestrel-kernels --release --example layer_speed -- mbv3 [--isa avx2]
//! [--threads 2] [--only dw|1x1|dense]`, models `mbv3` (MobileNetV3-Large, hardswish
//! epilogue) and `effb0` (EfficientNet-B0, silu).
//!
//! Each layer is timed warm (the same call repeated, weights and x in cache): the median
//! of 5 rounds of ~`ROUND_MS` ms (default 10). The totals weight each layer by how many
//! times the model runs it. On a shared machine, compare two builds by running their
//! binaries alternately, several times, and taking each layer's median.

use std::time::Instant;

use kestrel_kernels::conv2d::shapes::{shape_id, EFFICIENTNET_B0, MOBILENET_V3_LARGE};
use kestrel_kernels::conv2d::{cpu::Conv2dCpu, depthwise::DepthwiseCpu, Conv2dParams};
use kestrel_kernels::subnormals::FlushSubnormals;
use kestrel_kernels::{Activation, Isa};

/// Median seconds per call of `f` over 5 rounds of about `round` seconds.
fn time(round: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed().as_secs_f64() < round {
        f();
        reps += 1;
    }
    let reps = reps.max(1);
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            (0..reps).for_each(|_| f());
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// The layer's kind: `dw` (depthwise), `1x1` or `dense` (any other conv).
fn kind(p: &Conv2dParams) -> &'static str {
    if p.groups > 1 {
        "dw"
    } else if p.kh == 1 && p.kw == 1 {
        "1x1"
    } else {
        "dense"
    }
}

/// Seconds per call of `p` with `act` fused, through the kernel the planner picks.
fn layer_time(p: &Conv2dParams, isa: Isa, threads: usize, act: Activation, round: f64) -> f64 {
    let w = data(p.weight_shape().iter().product());
    let b = data(p.c_out);
    let x = data(p.c_in * p.h * p.w);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    match DepthwiseCpu::new(p, &w, Some(&b), isa) {
        Some(dw) => {
            let mut scratch = vec![0.0; dw.scratch_len(threads)];
            time(round, || {
                dw.run(&x, None, act, &mut y, &mut scratch, threads)
            })
        }
        None => {
            let conv = Conv2dCpu::new(p, &w, Some(&b), isa);
            let mut scratch = vec![0.0; conv.scratch_len(threads)];
            time(round, || {
                conv.run(&x, None, act, &mut y, &mut scratch, threads)
            })
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (layers, act) = match args.first().map(String::as_str) {
        Some("effb0") => (&EFFICIENTNET_B0[..], Activation::Silu),
        Some("mbv3") => (&MOBILENET_V3_LARGE[..], Activation::HardSwish),
        _ => panic!("usage: layer_speed mbv3|effb0 [--isa ISA] [--threads N] [--only KIND]"),
    };
    let isa: Isa = opt("--isa").map_or(*Isa::available().last().unwrap(), |s| {
        s.parse().expect("--isa")
    });
    let threads: usize = opt("--threads").map_or(1, |s| s.parse().expect("--threads"));
    let only = opt("--only");
    let round = std::env::var("ROUND_MS").map_or(10.0, |s| s.parse().expect("ROUND_MS")) / 1e3;
    // As a CPU session runs its kernels (engine/exec/mod.rs): subnormals flushed.
    let _flush = (std::env::var("NO_FTZ").is_err()).then(FlushSubnormals::new);
    let mut totals: Vec<(&str, f64, f64)> = Vec::new();
    for (p, count) in layers {
        let k = kind(p);
        if only.as_deref().is_some_and(|o| o != k) {
            continue;
        }
        let secs = layer_time(p, isa, threads, act, round);
        println!(
            "conv2d/cpu-{isa}/t{threads}/{:24} {k:5} x{count}  {:8.1} µs  {:6.1} GFLOP/s",
            shape_id(p),
            secs * 1e6,
            p.flops() as f64 / secs / 1e9
        );
        let flops = (p.flops() * *count as u64) as f64;
        match totals.iter_mut().find(|t| t.0 == k) {
            Some(t) => (t.1, t.2) = (t.1 + secs * *count as f64, t.2 + flops),
            None => totals.push((k, secs * *count as f64, flops)),
        }
    }
    for (k, secs, flops) in totals {
        println!(
            "total/cpu-{isa}/t{threads}/{k:5}  {:8.1} µs  {:6.1} GFLOP/s",
            secs * 1e6,
            flops / secs / 1e9
        );
    }
}
