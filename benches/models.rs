//! Whole-model latency at batch 1 on the shipped fixtures. Bench ids: model/backend/name.
//! This executor runs the reference kernels, so these numbers are the baseline the
//! SIMD kernels will be measured against.

use criterion::{criterion_group, criterion_main, Criterion};
use kestrel::{Model, SessionOptions};
use std::path::Path;

fn models(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut group = c.benchmark_group("model");
    group.sample_size(10);
    for name in ["cifarnet", "resnet18", "mobilenetv2"] {
        let model = Model::load(dir.join(format!("{name}.safetensors"))).expect("fixture loads");
        let mut session = model
            .session(&SessionOptions::default())
            .expect("session builds");
        let input = vec![0.5f32; session.input_shape(0).iter().product()];
        group.bench_function(format!("cpu-reference/{name}-b1"), |b| {
            b.iter(|| {
                let out = session.run(&[&input]).expect("runs");
                std::hint::black_box(out.get(0).map(|o| o.data[0]));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
