//! Sessions sharing one machine: several sessions, each asking for 2 threads, run at once
//! from different threads. They share one worker pool (a session finding it busy runs its
//! tasks alone), so they cannot oversubscribe the cores, and every output is bit-identical
//! to the same run made alone.

mod common;

use common::fixture;
use kestrel::{Model, SessionOptions};
use std::sync::Arc;

#[test]
fn concurrent_multithreaded_sessions_match_a_lone_run() {
    let model = Arc::new(Model::load(fixture("resnet18")).unwrap());
    let opts = SessionOptions::default().with_threads(2);
    let inputs: Vec<Vec<f32>> = (0..4)
        .map(|s| {
            (0..3 * 64 * 48)
                .map(|i| ((i * 7 + s * 13) % 29) as f32 / 14.0 - 1.0)
                .collect()
        })
        .collect();
    let alone: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| {
            let mut s = model.session(&opts).unwrap();
            s.run(&[x]).unwrap().get(0).unwrap().data.to_vec()
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (model, inputs, alone, opts) = (&model, &inputs, &alone, &opts);
            scope.spawn(move || {
                let mut s = model.session(opts).unwrap();
                for r in 0..25 {
                    let i = (t + r) % inputs.len();
                    let out = s.run(&[&inputs[i]]).unwrap();
                    assert_eq!(
                        out.get(0).unwrap().data,
                        &alone[i][..],
                        "thread {t} run {r}"
                    );
                }
            });
        }
    });
}
