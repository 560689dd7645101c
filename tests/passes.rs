//! A CPU batch run as passes of fewer images (`SessionOptions::micro_batch`): the outputs,
//! every layer `run_with` shows and the step report are the whole batch's, whatever the
//! passes; the passes' choice and its limits. The fixtures against PyTorch in passes are in
//! tests/fixtures.rs.

mod common;

use common::fixture;
use kestrel::{Device, Error, Isa, Kernels, Model, Session, SessionOptions};

fn input(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn session(model: &Model, batch: usize, threads: usize, micro: Option<usize>) -> Session {
    let opts = SessionOptions::default()
        .with_batch(batch)
        .with_threads(threads)
        .with_kernels(Kernels::Isa(Isa::best()))
        .with_micro_batch(micro);
    model.session(&opts).unwrap()
}

/// Each image's outputs as a batch-1 session computes them, within float reassociation:
/// the passes change which images share a kernel call, never what one image gets.
#[test]
fn passes_compute_each_image_as_the_whole_batch_does() {
    for name in ["cifarnet", "mobilenetv2", "efficientnet_b0", "yolo"] {
        let model = Model::load(fixture(name)).unwrap();
        let mut one = session(&model, 1, 1, None);
        let per_image: usize = one.input_shape(0).unwrap().iter().product();
        let x = input(4 * per_image, 3);
        for (threads, micro) in [(1, Some(1)), (2, Some(2)), (2, Some(4)), (2, None)] {
            let mut s = session(&model, 4, threads, micro);
            assert_eq!(s.images_per_pass(), micro.unwrap_or(s.images_per_pass()));
            let outs: Vec<(Vec<usize>, Vec<f32>)> = s
                .run(&[&x])
                .unwrap()
                .iter()
                .map(|o| (o.shape.to_vec(), o.data.to_vec()))
                .collect();
            for img in 0..4 {
                let alone = one.run(&[&x[img * per_image..][..per_image]]).unwrap();
                for (k, (shape, all)) in outs.iter().enumerate() {
                    let want = alone.get(k).unwrap();
                    assert_eq!(shape[0], 4, "{name}: output {k}'s batch");
                    assert_eq!(&shape[1..], &want.shape[1..], "{name}: output {k}");
                    let got = &all[img * want.data.len()..][..want.data.len()];
                    let scale = want.data.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                    for (i, (g, w)) in got.iter().zip(want.data).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * scale,
                            "{name} threads {threads} micro {micro:?} image {img} output {k}[{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

/// `run_with` shows every step once, at the whole batch, with what a whole-batch run
/// shows; the step report counts every pass's kernel calls and times every step.
#[test]
fn layers_and_reports_are_the_whole_batchs() {
    let model = Model::load(fixture("mobilenetv2")).unwrap();
    let mut whole = session(&model, 3, 2, Some(3));
    let mut passes = session(&model, 3, 2, Some(1));
    assert_eq!((whole.images_per_pass(), passes.images_per_pass()), (3, 1));
    let x = input(whole.input_shape(0).unwrap().iter().product(), 5);
    let mut seen: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    whole
        .run_with(&[&x], |name, t| {
            seen.push((name.to_string(), t.shape.to_vec(), t.data.to_vec()))
        })
        .unwrap();
    let mut k = 0;
    passes
        .run_with(&[&x], |name, t| {
            let (want_name, shape, data) = &seen[k];
            assert_eq!((name, t.shape), (want_name.as_str(), &shape[..]));
            let scale = data.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let worst = t
                .data
                .iter()
                .zip(data)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-5 * scale,
                "{name}: {worst} off (max |y| {scale})"
            );
            k += 1;
        })
        .unwrap();
    assert_eq!(k, seen.len(), "every step shown once");
    assert_eq!(passes.steps(), whole.steps());
    assert_eq!(
        passes.kernel_count(),
        3 * session(&model, 1, 2, None).kernel_count()
    );
    let times = passes.profile_steps(&[&x], 2).unwrap();
    assert_eq!(times.seconds.len(), whole.steps().len());
    assert!(times.seconds.iter().sum::<f64>() > 0.0);
    // The passes' arena holds one image's activations, not three.
    assert!(passes.arena_bytes() < whole.arena_bytes());
}

/// Left to choose, a session runs the batch whole where its arena fits the threads' L2
/// caches, in passes of up to one image per thread where it does not, and a pass's images
/// divide the batch.
#[test]
fn the_passes_follow_the_caches_and_the_threads() {
    let cifar = Model::load(fixture("cifarnet")).unwrap();
    assert_eq!(session(&cifar, 4, 2, None).images_per_pass(), 4);
    // A batch whose arena is past two L2s (a CPU that reports none counts as 1 MiB).
    let l2 = match kestrel_kernels::cpu_info::cpu().l2 {
        0 => 1 << 20,
        l2 => l2,
    };
    let image = session(&cifar, 1, 1, None).arena_bytes();
    let batch = (2 * l2 / image + 2).next_multiple_of(2);
    assert!(session(&cifar, batch, 2, Some(batch)).arena_bytes() > 2 * l2);
    assert_eq!(session(&cifar, batch, 2, None).images_per_pass(), 2);
    assert_eq!(session(&cifar, batch, 1, None).images_per_pass(), 1);
    // An odd batch has no pass of 2.
    assert_eq!(session(&cifar, batch + 1, 2, None).images_per_pass(), 1);
    // The oracle runs the batch whole unless told.
    let opts = SessionOptions::default()
        .with_batch(batch)
        .with_threads(2)
        .with_kernels(Kernels::Reference);
    assert_eq!(cifar.session(&opts).unwrap().images_per_pass(), batch);
}

#[test]
fn micro_batches_are_for_the_cpu_only() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let opts = SessionOptions::default()
        .with_device(Device::Cuda(0))
        .with_micro_batch(Some(1));
    match model.session(&opts) {
        Err(Error::BadOption { option, detail }) => {
            assert_eq!(option, "micro_batch");
            assert!(detail.contains("CPU only"), "{detail}");
        }
        Err(other) => panic!("not BadOption: {other:?}"),
        Ok(_) => panic!("a CUDA session took micro_batch"),
    }
}
