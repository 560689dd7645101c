//! `Conv2dCpu` on every distinct conv of ResNet-18 and MobileNetV2 (batch 1, 224×224), on
//! every ISA this CPU has, 1 thread; plus the ResNet-18 shapes on the best ISA at 2 threads.
//! Ids: `conv2d/cpu-<isa>[-t2]/<shape>` (see `shapes::shape_id`). Throughput is reported
//! as Elements = FLOPs (2 × multiply-adds), so criterion's "elem/s" reads as FLOP/s.
//!
//! `cargo bench -p kestrel-kernels --bench conv2d -- cpu-avx512/` runs one ISA.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kestrel_kernels::conv2d::cpu::Conv2dCpu;
use kestrel_kernels::conv2d::shapes::{shape_id, MOBILENET_V2, RESNET18};
use kestrel_kernels::conv2d::Conv2dParams;
use kestrel_kernels::{Activation, Isa};

/// Deterministic inputs in [-1, 1): the values do not change the timing of dense f32 math.
fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 9) as f32 / (1 << 22) as f32 - 1.0)
        .collect()
}

fn bench_one(c: &mut Criterion, p: &Conv2dParams, isa: Isa, threads: usize) {
    let x = data(p.n * p.c_in * p.h * p.w, 1);
    let w = data(p.weight_shape().iter().product(), 2);
    let bias = data(p.c_out, 3);
    let conv = Conv2dCpu::new(p, &w, Some(&bias), isa);
    let mut y = vec![0.0; p.output_shape().iter().product()];
    let mut scratch = vec![0.0; conv.scratch_len(threads)];
    let backend = match threads {
        1 => format!("cpu-{isa}"),
        t => format!("cpu-{isa}-t{t}"),
    };
    let mut g = c.benchmark_group("conv2d");
    g.throughput(Throughput::Elements(p.flops()));
    g.bench_function(BenchmarkId::new(backend, shape_id(p)), |b| {
        b.iter(|| conv.run(&x, None, Activation::Relu, &mut y, &mut scratch, threads))
    });
    g.finish();
}

fn conv2d(c: &mut Criterion) {
    let resnet = RESNET18.iter().map(|(p, _)| p);
    let shapes: Vec<&Conv2dParams> = resnet.clone().chain(MOBILENET_V2.iter()).collect();
    for isa in Isa::available().into_iter().rev() {
        for p in &shapes {
            bench_one(c, p, isa, 1);
        }
    }
    for p in resnet {
        bench_one(c, p, Isa::best(), 2);
    }
}

criterion_group! {
    name = benches;
    // Short by default so the whole file runs in a few minutes on 2 cores.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500));
    targets = conv2d
}
criterion_main!(benches);
