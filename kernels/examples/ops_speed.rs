//! Quick speed check of the SIMD cpu kernels on every ISA, 1 and 2 threads, batch 1:
//! `cargo run -p kestrel-kernels --release --example ops_speed`.
//!
//! Prints the median of 7 rounds (each round repeats a call for ~20 ms). MobileNetV2's
//! depthwise layers are summed, since their total is the number a model run pays;
//! `-- depthwise` prints them layer by layer instead (and nothing else).
//!
//! `-- conv` times each distinct ResNet-18 conv through `CpuConv` (fastest ISA, 1 and 2
//! threads), warm (one conv called again and again, weights in cache) and cold (calls
//! cycled over copies with 64 MiB of weights between them, as in a whole-model run where
//! the other layers evict this one's weights), with the per-image total.

use std::time::Instant;

use kestrel_kernels::adaptive_avg_pool2d::{cpu::adaptive_avg_pool2d, AdaptiveAvgPool2dParams};
use kestrel_kernels::conv2d::cpu::{depthwise::DepthwiseCpu, CpuConv};
use kestrel_kernels::conv2d::shapes::{shape_id, RESNET18};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::linear::{cpu::LinearCpu, LinearParams};
use kestrel_kernels::mean::{cpu::mean_hw, MeanParams};
use kestrel_kernels::pool2d::{cpu::max_pool2d, Pool2dParams};
use kestrel_kernels::{Activation, Isa};

/// Median seconds per call of `f`.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed().as_secs_f64() < 0.02 {
        f();
        reps += 1;
    }
    let reps = reps.max(1);
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            (0..reps).for_each(|_| f());
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

/// (channels, input side, stride): MobileNetV2's depthwise layers at 224x224, each once
/// per block that has it.
const MBV2_DW: [(usize, usize, usize); 17] = [
    (32, 112, 1),
    (96, 112, 2),
    (144, 56, 1),
    (144, 56, 2),
    (192, 28, 1),
    (192, 28, 1),
    (192, 28, 2),
    (384, 14, 1),
    (384, 14, 1),
    (384, 14, 1),
    (384, 14, 1),
    (576, 14, 1),
    (576, 14, 1),
    (576, 14, 2),
    (960, 7, 1),
    (960, 7, 1),
    (960, 7, 1),
];

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// Seconds per call of each MobileNetV2 depthwise layer (ReLU6 epilogue, as in the model).
fn depthwise_layers(isa: Isa, threads: usize) -> Vec<(Conv2dParams, f64)> {
    MBV2_DW
        .iter()
        .filter(|&&(c, side, s)| {
            // DW_SHAPE=576x14s2 keeps only that layer (for a profiler).
            std::env::var("DW_SHAPE").map_or(true, |f| f == format!("{c}x{side}s{s}"))
        })
        .map(|&(c, side, s)| {
            let p = Conv2dParams {
                n: 1,
                c_in: c,
                h: side,
                w: side,
                c_out: c,
                kh: 3,
                kw: 3,
                stride: [s, s],
                pad: [1, 1],
                dilation: [1, 1],
                groups: c,
            };
            let dw = DepthwiseCpu::new(&p, &data(c * 9), Some(&data(c)), isa).unwrap();
            let x = data(c * side * side);
            let mut y = vec![0.0; p.output_shape().iter().product()];
            (p, {
                let mut scratch = vec![0.0; dw.scratch_len(threads)];
                time(|| dw.run(&x, None, Activation::Relu6, &mut y, &mut scratch, threads))
            })
        })
        .collect()
}

fn depthwise(isa: Isa, threads: usize) -> String {
    let layers = depthwise_layers(isa, threads);
    let secs: f64 = layers.iter().map(|l| l.1).sum();
    let flops: f64 = layers.iter().map(|l| l.0.flops() as f64).sum();
    format!("{:8.1} µs  {:6.1} GFLOP/s", secs * 1e6, flops / secs / 1e9)
}

/// Per layer: time, GFLOP/s, and GB/s of the bytes it must move (x read, y written once).
fn depthwise_report() {
    for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
        for threads in [1, 2] {
            let layers = depthwise_layers(isa, threads);
            let mut total = 0.0;
            for (p, secs) in &layers {
                let [_, c, oh, ow] = p.output_shape();
                let bytes = 4.0 * (c * p.h * p.w + c * oh * ow) as f64;
                println!(
                    "depthwise/cpu-{isa}/t{threads}/{:>3}x{:>3}x{:>3}s{}  {:7.1} µs  {:5.1} GFLOP/s  {:5.1} GB/s",
                    c, p.h, p.w, p.stride[0],
                    secs * 1e6,
                    p.flops() as f64 / secs / 1e9,
                    bytes / secs / 1e9
                );
                total += secs;
            }
            println!(
                "depthwise/cpu-{isa}/t{threads}/total  {:7.1} µs",
                total * 1e6
            );
        }
    }
}

fn max_pool(isa: Isa, threads: usize) -> String {
    let p = Pool2dParams {
        n: 1,
        c: 64,
        h: 112,
        w: 112,
        kernel: [3, 3],
        stride: [2, 2],
        pad: [1, 1],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let x = data(64 * 112 * 112);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let secs = time(|| max_pool2d(isa, &p, &x, &mut y, threads));
    let bytes = 4.0 * (x.len() + y.len()) as f64;
    format!("{:8.1} µs  {:6.1} GB/s", secs * 1e6, bytes / secs / 1e9)
}

fn global_avg(isa: Isa, threads: usize, c: usize, adaptive: bool) -> String {
    let x = data(c * 49);
    let mut y = vec![0.0; c];
    let secs = if adaptive {
        let p = AdaptiveAvgPool2dParams {
            n: 1,
            c,
            h: 7,
            w: 7,
            out: [1, 1],
        };
        time(|| adaptive_avg_pool2d(isa, &p, &x, &mut y, threads))
    } else {
        let p = MeanParams {
            n: 1,
            c,
            h: 7,
            w: 7,
        };
        time(|| mean_hw(isa, &p, &x, &mut y, threads))
    };
    format!(
        "{:8.2} µs  {:6.1} GB/s",
        secs * 1e6,
        4.0 * x.len() as f64 / secs / 1e9
    )
}

fn gemv(isa: Isa, threads: usize, k: usize) -> String {
    let p = LinearParams {
        rows: 1,
        in_features: k,
        out_features: 1000,
    };
    let lin = LinearCpu::new(&p, &data(1000 * k), Some(&data(1000)), isa);
    let x = data(k);
    let mut y = vec![0.0; 1000];
    let secs = time(|| lin.run(&x, Activation::None, &mut y, threads));
    format!(
        "{:8.1} µs  {:6.1} GB/s",
        secs * 1e6,
        4.0 * (1000 * k) as f64 / secs / 1e9
    )
}

/// Seconds per call of `p` with its weights warm in cache, and cold.
fn conv_times(p: &Conv2dParams, isa: Isa, threads: usize) -> (f64, f64) {
    let w_len: usize = p.weight_shape().iter().product();
    let copies = ((64 << 20) / (4 * w_len)).clamp(1, 64);
    let convs: Vec<CpuConv> = (0..copies)
        .map(|_| CpuConv::new(p, &data(w_len), Some(&data(p.c_out)), isa, false))
        .collect();
    let x = data(p.c_in * p.h * p.w);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let mut scratch = vec![0.0; convs[0].scratch_len(threads)];
    let warm = time(|| convs[0].run(&x, None, Activation::Relu, &mut y, &mut scratch, threads));
    let mut i = 0;
    let cold = time(|| {
        i = (i + 1) % copies;
        convs[i].run(&x, None, Activation::Relu, &mut y, &mut scratch, threads)
    });
    (warm, cold)
}

fn conv_report() {
    let isa = *Isa::available().last().unwrap();
    for threads in [1, 2] {
        let (mut warm_total, mut cold_total, mut flops) = (0.0, 0.0, 0.0);
        for (p, count) in &RESNET18 {
            let (warm, cold) = conv_times(p, isa, threads);
            let gf = |s: f64| p.flops() as f64 / s / 1e9;
            println!(
                "conv2d/cpu-{isa}/t{threads}/{:24} x{count}  warm {:7.1} µs {:5.1} GFLOP/s  cold {:7.1} µs {:5.1} GFLOP/s",
                shape_id(p),
                warm * 1e6,
                gf(warm),
                cold * 1e6,
                gf(cold)
            );
            warm_total += warm * *count as f64;
            cold_total += cold * *count as f64;
            flops += (p.flops() * *count as u64) as f64;
        }
        println!(
            "conv2d/cpu-{isa}/t{threads}/resnet18-all  warm {:.2} ms {:.1} GFLOP/s  cold {:.2} ms {:.1} GFLOP/s",
            warm_total * 1e3,
            flops / warm_total / 1e9,
            cold_total * 1e3,
            flops / cold_total / 1e9
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "depthwise") {
        return depthwise_report();
    }
    if std::env::args().any(|a| a == "conv") {
        return conv_report();
    }
    for isa in Isa::available() {
        for threads in [1, 2] {
            let id = |op: &str| format!("{op}/cpu-{isa}/t{threads}");
            println!(
                "{:44} {}",
                id("depthwise/mobilenet_v2-all-17"),
                depthwise(isa, threads)
            );
            println!(
                "{:44} {}",
                id("max_pool2d/1x64x112x112k3s2p1"),
                max_pool(isa, threads)
            );
            for c in [512, 1280] {
                println!(
                    "{:44} {}",
                    id(&format!("adaptive_avg_pool2d/1x{c}x7x7")),
                    global_avg(isa, threads, c, true)
                );
                println!(
                    "{:44} {}",
                    id(&format!("mean_hw/1x{c}x7x7")),
                    global_avg(isa, threads, c, false)
                );
            }
            for k in [512, 1280] {
                println!(
                    "{:44} {}",
                    id(&format!("linear/1x{k}to1000")),
                    gemv(isa, threads, k)
                );
            }
        }
    }
}
