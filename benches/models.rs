//! Whole-model latency at batch 1 on the shipped fixtures, on the best ISA this CPU has
//! at 1 and 2 threads, the reference kernels for scale, and GPU 0 when there is one.
//! Bench ids: `model/cpu-<kernels>-t<threads>/<fixture>-b1`, `model/cuda/<fixture>-b1`
//! (a whole `Session::run`: input copy, graph replay, output copy, synchronize).
//! Full-size models: `kestrel bench`.

use criterion::{criterion_group, criterion_main, Criterion};
use kestrel::{CudaError, Device, Error, Kernels, Model, Precision, SessionOptions};
use std::path::Path;

fn models(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut group = c.benchmark_group("model");
    group.sample_size(20);
    let cpu = |kernels, threads| {
        SessionOptions::default()
            .with_kernels(kernels)
            .with_threads(threads)
    };
    let cuda = |precision| {
        SessionOptions::default()
            .with_device(Device::Cuda(0))
            .with_precision(precision)
    };
    let configs = [
        cpu(Kernels::Auto, 1),
        cpu(Kernels::Auto, 2),
        cpu(Kernels::Reference, 1),
        cuda(Precision::Fp32),
        cuda(Precision::Tf32),
        cuda(Precision::Fp16),
    ];
    for name in ["cifarnet", "resnet18", "mobilenetv2"] {
        let model = Model::load(dir.join(format!("{name}.safetensors"))).expect("fixture loads");
        for opts in &configs {
            let mut session = match model.session(opts) {
                Ok(s) => s,
                Err(Error::Cuda(CudaError::Unavailable(why))) => {
                    println!("skipping model/cuda/{name}-b1: no CUDA device ({why})");
                    continue;
                }
                Err(e) => panic!("{name} on {}: {e}", opts.device),
            };
            // Eight inputs cycled: one fixed input lets the branch predictor learn max-pool branches.
            let len: usize = session.input_shape(0).unwrap().iter().product();
            let inputs: Vec<Vec<f32>> = (0..8)
                .map(|s| {
                    (0..len)
                        .map(|i| ((i * 31 + s * 17) % 97) as f32 / 48.0 - 1.0)
                        .collect()
                })
                .collect();
            let id = match opts.device {
                Device::Cpu => {
                    format!("cpu-{}-t{}/{name}-b1", session.kernels_name(), opts.threads)
                }
                _ => format!("cuda-{}/{name}-b1", opts.precision),
            };
            let mut i = 0;
            group.bench_function(id, |b| {
                b.iter(|| {
                    i += 1;
                    let out = session.run(&[&inputs[i % 8]]).expect("runs");
                    std::hint::black_box(out.get(0).map(|o| o.data[0]));
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
