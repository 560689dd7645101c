//! One `Model` shared by 8 threads, each with its own `Session`, 1,000 runs each on
//! different inputs: every output is bit-identical to a single-threaded run of the same
//! input. `Model: Send + Sync` and `Session: Send` are checked by the compiler here too
//! (the model is borrowed by every thread, each session moved into its own).

mod common;

use common::fixture;
use kestrel::{Model, SessionOptions};

const THREADS: usize = 8;
const RUNS: usize = 1000;
const INPUTS: usize = 64;

#[test]
fn eight_threads_sharing_a_model_match_a_lone_run_bit_for_bit() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let lone_opts = SessionOptions::default();
    let mut lone = model.session(&lone_opts).unwrap();
    let (inputs, expected) = common::inputs_and_lone_outputs(&mut lone, INPUTS);
    // Distinct inputs give distinct outputs: a session returning a stale or another
    // thread's result could not pass.
    assert_ne!(expected[0], expected[1]);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (model, inputs, expected) = (&model, &inputs, &expected);
            scope.spawn(move || {
                // Half the sessions ask for 2 threads: they share the one worker pool.
                let opts = SessionOptions::default().with_threads(1 + t % 2);
                let mut session = model.session(&opts).unwrap();
                for r in 0..RUNS {
                    let i = (t * 13 + r * 7) % INPUTS;
                    let out = session.run(&[&inputs[i]]).unwrap();
                    let got = out.get(0).unwrap().data;
                    assert!(
                        got.iter()
                            .zip(&expected[i])
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "thread {t} run {r} input {i}: differs from the lone run"
                    );
                }
            });
        }
    });
}
