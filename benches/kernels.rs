//! Kernel microbenchmarks. Bench ids read `op/backend-isa/shape`:
//! - `conv2d/cpu-<isa>/<shape>`: every distinct conv of ResNet-18 and MobileNetV2 at batch
//!   1, 224×224, on every ISA this CPU has, 1 thread, through the kernel the engine picks
//!   (`CpuConv::new`: GEMM, Winograd, direct or depthwise);
//!   `conv2d/cpu-<isa>-t2/<shape>` for the ResNet-18 convs on 2 threads.
//! - `max_pool2d`, `linear`, `mean`: the other hot ops of those models.
//! - `conv2d/cuda/<shape>`: the same convs on GPU 0 with Kestrel's CUDA kernels (bias and
//!   activation fused), each sample enqueuing its iterations and synchronizing once, so
//!   launch overhead overlaps kernels as in a graph; skipped (with a line saying why) when
//!   there is no GPU, driver or NVRTC.
//!
//! Throughput is criterion's Elements = FLOPs (2 × multiply-adds), so "elem/s" reads as
//! FLOP/s; at the end every CPU bench is listed with its GFLOP/s as a share of the FMA
//! peak measured on this machine for its ISA and thread count (`peak_report.rs`).
//! One ISA: `cargo bench --bench kernels -- cpu-avx512/`.

use criterion::{criterion_group, Criterion, Throughput};
use kestrel_kernels::conv2d::cpu::{ConvAlgorithm, CpuConv};
use kestrel_kernels::conv2d::shapes::{shape_id, MOBILENET_V2, RESNET18};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::cuda::compile::{default_cache_dir, Compiler};
use kestrel_kernels::cuda::device::{Gpu, PreparedOp};
use kestrel_kernels::cuda::CudaError;
use kestrel_kernels::linear::cpu::LinearCpu;
use kestrel_kernels::linear::LinearParams;
use kestrel_kernels::mean::MeanParams;
use kestrel_kernels::pool2d::Pool2dParams;
use kestrel_kernels::{mean, pool2d, Activation, Isa, Precision};
use std::time::{Duration, Instant};

/// Deterministic values in [-1, 1): dense f32 math times the same on any data.
fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 9) as f32 / (1 << 22) as f32 - 1.0)
        .collect()
}

fn backend(isa: Isa, threads: usize) -> String {
    match threads {
        1 => format!("cpu-{isa}"),
        t => format!("cpu-{isa}-t{t}"),
    }
}

fn conv(c: &mut Criterion, p: &Conv2dParams, isa: Isa, threads: usize) {
    let x = data(p.n * p.c_in * p.h * p.w, 1);
    let w = data(p.weight_shape().iter().product(), 2);
    let bias = data(p.c_out, 3);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let mut g = c.benchmark_group("conv2d");
    g.throughput(Throughput::Elements(p.flops()));
    let id = format!("{}/{}", backend(isa, threads), shape_id(p));
    let conv = CpuConv::new(p, &w, Some(&bias), isa, false);
    // Depthwise convs fuse relu6 (MobileNetV2's), the others relu.
    let act = match conv.algorithm() {
        ConvAlgorithm::Depthwise => Activation::Relu6,
        _ => Activation::Relu,
    };
    let mut scratch = vec![0.0; conv.scratch_len(threads)];
    g.bench_function(id, |b| {
        b.iter(|| conv.run(&x, None, act, &mut y, &mut scratch, threads))
    });
    g.finish();
}

fn other_ops(c: &mut Criterion, isa: Isa) {
    let pool = Pool2dParams {
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
    let x = data(64 * 112 * 112, 4);
    let mut y = vec![0.0; pool.output_shape().iter().product()];
    let mut g = c.benchmark_group("max_pool2d");
    g.throughput(Throughput::Elements((y.len() * 9) as u64));
    g.bench_function(format!("{}/1x64x112x112k3s2", backend(isa, 1)), |b| {
        b.iter(|| pool2d::cpu::max_pool2d(isa, &pool, &x, &mut y, 1))
    });
    g.finish();

    let lp = LinearParams {
        rows: 1,
        in_features: 512,
        out_features: 1000,
    };
    let fc = LinearCpu::new(&lp, &data(512 * 1000, 5), Some(&data(1000, 6)), isa);
    let (x, mut y) = (data(512, 7), vec![0.0; 1000]);
    let mut g = c.benchmark_group("linear");
    g.throughput(Throughput::Elements(lp.flops()));
    g.bench_function(format!("{}/1x512o1000", backend(isa, 1)), |b| {
        b.iter(|| fc.run(&x, Activation::None, &mut y, 1))
    });
    g.finish();

    let mp = MeanParams {
        n: 1,
        c: 1280,
        h: 7,
        w: 7,
    };
    let (x, mut y) = (data(1280 * 49, 8), vec![0.0; 1280]);
    let mut g = c.benchmark_group("mean");
    g.throughput(Throughput::Elements((1280 * 49) as u64));
    g.bench_function(format!("{}/1x1280x7x7", backend(isa, 1)), |b| {
        b.iter(|| mean::cpu::mean_hw(isa, &mp, &x, &mut y, 1))
    });
    g.finish();
}

/// The convs of `shapes` on GPU 0, or a line saying why not.
fn cuda_convs(c: &mut Criterion, shapes: &[&Conv2dParams]) {
    let gpu = match Gpu::new(0) {
        Ok(gpu) => gpu,
        Err(e) => return println!("skipping conv2d/cuda: {e}"),
    };
    let compiler = match Compiler::new(gpu.arch(), default_cache_dir()) {
        Ok(compiler) => compiler,
        Err(e) => return println!("skipping conv2d/cuda: {e}"),
    };
    let act = |p: &Conv2dParams| match p.groups == p.c_in && p.groups > 1 {
        true => Activation::Relu6,
        false => Activation::Relu,
    };
    for (p, precision) in shapes
        .iter()
        .flat_map(|p| Precision::ALL.map(|precision| (p, precision)))
    {
        let x = data(p.n * p.c_in * p.h * p.w, 1);
        let w = data(p.weight_shape().iter().product(), 2);
        let bias = data(p.c_out, 3);
        let op =
            kestrel_kernels::conv2d::cuda::conv2d(p, &w, Some(&bias), false, act(p), precision)
                .unwrap_or_else(|e| panic!("conv2d/cuda-{precision}/{}: {e}", shape_id(p)));
        let out_len = p.output_shape().iter().product();
        let prepared = PreparedOp::new(&gpu, &compiler, &op, &[&x], out_len)
            .unwrap_or_else(|e| panic!("conv2d/cuda-{precision}/{}: {e}", shape_id(p)));
        let mut g = c.benchmark_group("conv2d");
        g.throughput(Throughput::Elements(p.flops()));
        g.bench_function(format!("cuda-{precision}/{}", shape_id(p)), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let enqueued: Result<(), CudaError> =
                    (0..iters).try_for_each(|_| prepared.enqueue(&gpu));
                enqueued
                    .and_then(|()| gpu.synchronize())
                    .expect("conv runs");
                start.elapsed()
            })
        });
        g.finish();
    }
}

fn kernels(c: &mut Criterion) {
    let resnet = RESNET18.iter().map(|(p, _)| p);
    let shapes: Vec<&Conv2dParams> = resnet.clone().chain(MOBILENET_V2.iter()).collect();
    for isa in Isa::available().into_iter().rev() {
        for p in &shapes {
            conv(c, p, isa, 1);
        }
        other_ops(c, isa);
    }
    for p in resnet {
        conv(c, p, Isa::best(), 2);
    }
    cuda_convs(c, &shapes);
}

criterion_group! {
    name = benches;
    // Short by default so the whole file runs in a few minutes on 2 cores.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500));
    targets = kernels
}
mod peak_report;

fn main() {
    // criterion_main!, then the share of the peak.
    let start = std::time::SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    peak_report::print(start);
}
