//! `Session::steps`' bytes and `Session::profile_steps` on the CPU: what
//! `bench --per-layer` prints. The CUDA side is in tests/cuda.rs.

mod common;

use common::{fixture, tiny_model};
use kestrel::{Model, SessionOptions};

fn opts(batch: usize, optimize: bool) -> SessionOptions {
    SessionOptions::default()
        .with_batch(batch)
        .with_optimize(optimize)
}

/// (name, kernel, bytes) of every step.
fn bytes(model: &Model, opts: &SessionOptions) -> Vec<(String, String, u64)> {
    let session = model.session(opts).unwrap();
    session
        .steps()
        .into_iter()
        .map(|s| (s.name, s.kernel, s.bytes))
        .collect()
}

#[test]
fn step_bytes_count_inputs_output_and_weights_once() {
    // tiny_graph: x (n, 2, 5, 5) → conv 2→4 3x3 pad 1 (+relu) → flatten → linear 100→3.
    // conv: x 50n + y 100n + weight 72 + bias 4 floats; linear: 100n + 3n + 300 + 3.
    let f = |floats: usize| 4 * floats as u64;
    let step = |name: &str, kernel: &str, b: u64| (name.to_string(), kernel.to_string(), b);
    let model = tiny_model();
    assert_eq!(
        bytes(&model, &opts(1, true)),
        [
            step("relu", "conv3x3s1+relu", f(50 + 100 + 72 + 4)), // 904
            step("flatten", "alias", 0),
            step("fc", "linear", f(100 + 3 + 300 + 3)), // 1624
        ]
    );
    assert_eq!(
        bytes(&model, &opts(2, true)),
        [
            step("relu", "conv3x3s1+relu", f(100 + 200 + 76)), // 1504
            step("flatten", "alias", 0),
            step("fc", "linear", f(200 + 6 + 303)), // 2036
        ]
    );
    // Unfused, the relu reads and writes its 100 floats (in place: the same storage).
    assert_eq!(
        bytes(&model, &opts(1, false)),
        [
            step("conv", "conv3x3s1", 904),
            step("relu", "relu", f(100 + 100)),
            step("flatten", "alias", 0),
            step("fc", "linear", 1624),
        ]
    );
}

#[test]
fn profile_steps_times_every_step_that_moves_data_on_the_cpu() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let mut session = model.session(&opts(1, true)).unwrap();
    let x: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let steps = session.steps();
    let times = session.profile_steps(&[&x], 5).unwrap();
    assert_eq!((times.runs, times.queued_ahead), (5, None));
    assert_eq!(times.seconds.len(), steps.len());
    for (s, &t) in steps.iter().zip(&times.seconds) {
        match s.moves_data {
            // cifarnet's whole run takes ~0.1–1 ms here: no step takes a second.
            true => assert!(t > 0.0 && t < 1.0, "{}: {t} s", s.name),
            false => assert_eq!(t, 0.0, "{} moves no data", s.name),
        }
    }
    // No runs still times one; a wrong input is the same error `run` gives.
    assert_eq!(session.profile_steps(&[&x], 0).unwrap().runs, 1);
    let err = session
        .profile_steps(&[&x[1..]], 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected 3072 values"), "{err}");
    // The session still runs as before.
    let profiled = session.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
    let mut fresh = model.session(&opts(1, true)).unwrap();
    assert_eq!(
        fresh.run(&[&x]).unwrap().get(0).unwrap().data,
        &profiled[..]
    );
}
