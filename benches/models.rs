//! Whole-model latency at batch 1 on the shipped fixtures, on the best ISA this CPU has
//! at 1 and 2 threads, and the reference kernels for scale. Bench ids:
//! `model/cpu-<kernels>-t<threads>/<fixture>-b1`. Full-size models: `kestrel bench`.

use criterion::{criterion_group, criterion_main, Criterion};
use kestrel::{Kernels, Model, SessionOptions};
use std::path::Path;

fn models(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut group = c.benchmark_group("model");
    group.sample_size(20);
    let configs = [
        (Kernels::Auto, 1),
        (Kernels::Auto, 2),
        (Kernels::Reference, 1),
    ];
    for name in ["cifarnet", "resnet18", "mobilenetv2"] {
        let model = Model::load(dir.join(format!("{name}.safetensors"))).expect("fixture loads");
        for (kernels, threads) in configs {
            let opts = SessionOptions {
                kernels,
                threads,
                ..SessionOptions::default()
            };
            let mut session = model.session(&opts).expect("session builds");
            // Eight inputs cycled: one fixed input lets the branch predictor learn max-pool branches.
            let len: usize = session.input_shape(0).iter().product();
            let inputs: Vec<Vec<f32>> = (0..8)
                .map(|s| {
                    (0..len)
                        .map(|i| ((i * 31 + s * 17) % 97) as f32 / 48.0 - 1.0)
                        .collect()
                })
                .collect();
            let id = format!("cpu-{}-t{threads}/{name}-b1", session.kernels_name());
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
