//! Every distinct conv of a mobile net (batch 1, 224×224) through the kernel the planner
//! picks, one ISA and thread count, layer by layer:
//! `cargo run -p kestrel-kernels --release --example layer_speed -- mbv3 [--isa avx2]
//! [--threads 2] [--only dw|1x1|dense] [--shape SUBSTRING]
//! [--act none|relu|hardswish|silu] [--vs-act ACT] [--path blocked|padded|strided] [--vs PATH]`, models `mbv3` (MobileNetV3-Large, hardswish
//! epilogue), `effb0` (EfficientNet-B0, silu), `r18` (ResNet-18, relu), `r50` (ResNet-50, relu) and `yolo` (the YOLOv8n-sized
//! detector at 640², silu); `acts [--isa ISA]` times the activations
//! alone.
//!
//! The last line puts all the layers' FLOPs (direct-conv FLOPs, also for Winograd) over
//! their time against the FMA peak measured right after (`peak::fma_peak`).
//!
//! Each layer is timed warm (the same call repeated, weights and x in cache; with `COLD`
//! set, dense convs cycle over copies of their weights, 64 MiB in all): the fastest of 9
//! rounds of ~`ROUND_MS` ms (default 3), in thread CPU time at one thread. The totals weight each layer by how many
//! times the model runs it. On a shared machine, compare two builds by running their
//! binaries alternately, several times, and taking each layer's median; two depthwise
//! paths compare in one process with `--path A --vs B` (A defaults to blocked), which
//! prints B's time and its ratio to A's after A's.

use std::time::Instant;

use kestrel_kernels::activation::cpu::activate_in_place;
use kestrel_kernels::conv2d::cpu::depthwise::{DepthwiseCpu, DepthwisePath};
use kestrel_kernels::conv2d::cpu::{ConvAlgorithm, CpuConv};
use kestrel_kernels::conv2d::shapes::{
    shape_id, EFFICIENTNET_B0, MOBILENET_V3_LARGE, RESNET18, RESNET50, YOLOV8N_640,
};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::peak::fma_peak;
use kestrel_kernels::subnormals::FlushSubnormals;
use kestrel_kernels::{Activation, Isa};

/// Seconds per call of each of `fs`: the fastest of 9 rounds of about `round` seconds
/// each, the functions taking turns round by round, so that they share the machine's
/// moods. The fastest, not the median: on a shared machine the other rounds measure the
/// neighbours. With one thread the clock is this thread's CPU time, which stops while the
/// scheduler runs another process on its core; with more, wall time.
fn time(round: f64, threads: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let now = || match threads {
        1 => thread_cpu_secs(),
        _ => START.with(|s| s.elapsed().as_secs_f64()),
    };
    let reps: Vec<usize> = fs
        .iter_mut()
        .map(|f| {
            f();
            let (start, mut reps) = (now(), 0);
            while now() - start < round {
                f();
                reps += 1;
            }
            reps.max(1)
        })
        .collect();
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..9 {
        for ((f, &reps), best) in fs.iter_mut().zip(&reps).zip(&mut best) {
            let t = now();
            (0..reps).for_each(|_| f());
            *best = best.min((now() - t) / reps as f64);
        }
    }
    best
}

thread_local! {
    static START: Instant = Instant::now();
}

/// This thread's CPU time in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
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

/// Seconds per call of `p` with `acts[0]` fused, through the kernel the engine picks
/// (`CpuConv::new`), and for a dense conv with each of the other `acts` in turns; for a
/// depthwise conv through each of `paths` in turns (a path that cannot compute `p` is left
/// out), or the path the depthwise kernel picks.
fn layer_times(
    p: &Conv2dParams,
    isa: Isa,
    threads: usize,
    acts: &[Activation],
    round: f64,
    paths: &[DepthwisePath],
) -> Vec<f64> {
    let act = acts[0];
    let w = data(p.weight_shape().iter().product());
    let b = data(p.c_out);
    let x = data(p.c_in * p.h * p.w);
    let y_len: usize = p.output_shape().iter().product();
    if ConvAlgorithm::choose(p, false) != ConvAlgorithm::Depthwise {
        // Cold (COLD set): calls cycle over copies with 64 MiB of weights between them, as
        // in a whole-model run where the other layers evict this one's weights.
        let copies = match std::env::var("COLD") {
            Ok(_) => ((64 << 20) / (4 * w.len())).clamp(1, 256),
            Err(_) => 1,
        };
        let convs: Vec<CpuConv> = (0..copies)
            .map(|_| CpuConv::new(p, &w, Some(&b), isa, false))
            .collect();
        let mut fs: Vec<Box<dyn FnMut() + '_>> = acts
            .iter()
            .map(|&act| {
                let mut y = vec![0.0; y_len];
                let mut scratch = vec![0.0; convs[0].scratch_len(threads)];
                let (mut i, convs, x) = (0, &convs, &x);
                Box::new(move || {
                    i = (i + 1) % copies;
                    convs[i].run(x, None, act, &mut y, &mut scratch, threads)
                }) as Box<_>
            })
            .collect();
        let mut refs: Vec<&mut dyn FnMut()> = fs.iter_mut().map(|f| &mut **f as _).collect();
        return time(round, threads, &mut refs);
    }
    let dws: Vec<DepthwiseCpu> = match paths {
        [] => DepthwiseCpu::new(p, &w, Some(&b), isa)
            .into_iter()
            .collect(),
        _ => paths
            .iter()
            .filter_map(|&path| DepthwiseCpu::new(p, &w, Some(&b), isa)?.with_path(path))
            .collect(),
    };
    let mut fs: Vec<Box<dyn FnMut() + '_>> = dws
        .iter()
        .map(|dw| {
            let (mut y, mut scratch) = (vec![0.0; y_len], vec![0.0; dw.scratch_len(threads)]);
            let x = &x;
            Box::new(move || dw.run(x, None, act, &mut y, &mut scratch, threads)) as Box<_>
        })
        .collect();
    let mut refs: Vec<&mut dyn FnMut()> = fs.iter_mut().map(|f| &mut **f as _).collect();
    time(round, threads, &mut refs)
}

/// `layer_speed acts`: the epilogue activations alone, in place over 4096 floats in L1
/// (`activate_in_place`), in turns: ns per 16 floats.
fn acts(isa: Isa) {
    let acts = [
        Activation::Relu,
        Activation::HardSwish,
        Activation::Sigmoid,
        Activation::Silu,
        Activation::Tanh,
        Activation::Gelu,
    ];
    let mut bufs: Vec<Vec<f32>> = acts.iter().map(|_| data(4096)).collect();
    let mut fs: Vec<Box<dyn FnMut() + '_>> = acts
        .iter()
        .zip(&mut bufs)
        .map(|(&act, y)| Box::new(move || activate_in_place(isa, act, y, 1)) as Box<_>)
        .collect();
    let mut refs: Vec<&mut dyn FnMut()> = fs.iter_mut().map(|f| &mut **f as _).collect();
    for (act, secs) in acts.iter().zip(time(0.003, 1, &mut refs)) {
        println!(
            "act/cpu-{isa}/{act:?}  {:6.2} ns per 16 floats",
            secs * 1e9 / 256.0
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "acts") {
        let isa = args.get(2).map_or(Isa::best(), |s| s.parse().expect("ISA"));
        return acts(isa);
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (layers, act) = match args.first().map(String::as_str) {
        Some("effb0") => (&EFFICIENTNET_B0[..], Activation::Silu),
        Some("mbv3") => (&MOBILENET_V3_LARGE[..], Activation::HardSwish),
        Some("r18") => (&RESNET18[..], Activation::Relu),
        Some("r50") => (&RESNET50[..], Activation::Relu),
        Some("yolo") => (&YOLOV8N_640[..], Activation::Silu),
        _ => {
            panic!("usage: layer_speed mbv3|effb0|r18|r50|yolo [--isa ISA] [--threads N] [--only KIND]")
        }
    };
    // --act none|relu|hardswish|silu: another epilogue than the model's; --vs-act B: and
    // dense convs with B too, in turns.
    let parse_act = |a: &str| match a {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "hardswish" => Activation::HardSwish,
        "silu" => Activation::Silu,
        _ => panic!("activation {a}: none, relu, hardswish or silu"),
    };
    let act = opt("--act").map_or(act, |a| parse_act(&a));
    let acts: Vec<Activation> = [Some(act), opt("--vs-act").map(|a| parse_act(&a))]
        .into_iter()
        .flatten()
        .collect();
    let isa: Isa = opt("--isa").map_or(*Isa::available().last().unwrap(), |s| {
        s.parse().expect("--isa")
    });
    let threads: usize = opt("--threads").map_or(1, |s| s.parse().expect("--threads"));
    let only = opt("--only");
    let shape = opt("--shape");
    // --path P: depthwise layers through path P; --vs Q: and through Q, in turns.
    let path = |o: Option<String>| {
        o.map(|s| match s.as_str() {
            "blocked" => DepthwisePath::Blocked,
            "padded" => DepthwisePath::Padded,
            "strided" => DepthwisePath::Strided,
            _ => panic!("depthwise path {s}: blocked, padded or strided"),
        })
    };
    let paths: Vec<DepthwisePath> = match (path(opt("--path")), path(opt("--vs"))) {
        (a, Some(b)) => vec![a.unwrap_or(DepthwisePath::Blocked), b],
        (a, None) => a.into_iter().collect(),
    };
    let round = std::env::var("ROUND_MS").map_or(3.0, |s| s.parse().expect("ROUND_MS")) / 1e3;
    // As a CPU session runs its kernels (engine/exec/mod.rs): subnormals flushed.
    let _flush = (std::env::var("NO_FTZ").is_err()).then(FlushSubnormals::new);
    let mut totals: Vec<(&str, f64, f64)> = Vec::new();
    for (p, count) in layers {
        let k = kind(p);
        let skip = only.as_deref().is_some_and(|o| o != k)
            || shape.as_deref().is_some_and(|f| !shape_id(p).contains(f));
        if skip {
            continue;
        }
        let times = layer_times(p, isa, threads, &acts, round, &paths);
        let Some(&secs) = times.first() else {
            continue;
        };
        let rest: String = times[1..]
            .iter()
            .map(|t| format!("  {:8.1} µs ({:.2}×)", t * 1e6, t / secs))
            .collect();
        println!(
            "conv2d/cpu-{isa}/t{threads}/{:24} {k:5} x{count}  {:8.1} µs  {:6.1} GFLOP/s{rest}",
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
    for (k, secs, flops) in &totals {
        println!(
            "total/cpu-{isa}/t{threads}/{k:5}  {:8.1} µs  {:6.1} GFLOP/s",
            secs * 1e6,
            flops / secs / 1e9
        );
    }
    // Against the FMA peak measured now, on as many threads: the machine's mood changes
    // by the minute, so a peak from another run says little about this one; the best of
    // five short tries, as a shared VM takes a core away for a moment now and then.
    let (secs, flops) = totals
        .iter()
        .fold((0.0, 0.0), |(s, f), t| (s + t.1, f + t.2));
    let peak = (0..5)
        .map(|_| fma_peak(isa, threads, std::time::Duration::from_millis(100)))
        .fold(0.0, f64::max);
    println!(
        "all/cpu-{isa}/t{threads}  {:8.1} µs  {:6.1} GFLOP/s = {:.0}% of the FMA peak measured now ({peak:.0} GFLOP/s)",
        secs * 1e6,
        flops / secs / 1e9,
        100.0 * flops / secs / 1e9 / peak
    );
}
