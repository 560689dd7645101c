//! The real-time knobs: `Session::warm_up` and `pin_threads`. Its own test binary,
//! because pinning changes the whole process's worker pool.

mod common;

use common::fixture;
use kestrel::{Model, SessionOptions};

fn input(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 17) % 23) as f32 / 11.0 - 1.0)
        .collect()
}

#[test]
fn warm_up_leaves_results_unchanged() {
    let model = Model::load(fixture("resnet18")).unwrap();
    let opts = SessionOptions::default().with_threads(2);
    let mut cold = model.session(&opts).unwrap();
    let x = input(cold.input_shape(0).unwrap().iter().product());
    let want = cold.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
    let mut warm = model.session(&opts).unwrap();
    warm.warm_up(3).unwrap();
    assert_eq!(warm.run(&[&x]).unwrap().get(0).unwrap().data, &want[..]);
}

#[cfg(target_os = "linux")]
#[test]
fn pinned_threads_stay_on_their_cores_and_compute_the_same() {
    let model = Model::load(fixture("resnet18")).unwrap();
    let opts = SessionOptions::default().with_threads(2);
    let x = input(3 * 64 * 48);
    let want = {
        let mut s = model.session(&opts).unwrap();
        s.run(&[&x]).unwrap().get(0).unwrap().data.to_vec()
    };
    std::thread::spawn(move || {
        let allowed = kestrel_kernels::affinity::allowed_cores();
        let cores = kestrel::pin_threads().unwrap();
        assert_eq!(cores[0], allowed[0]);
        assert_eq!(kestrel_kernels::affinity::allowed_cores(), [allowed[0]]);
        if allowed.len() > 1 {
            assert_eq!(cores[1..], allowed[1..cores.len()]);
        }
        let mut s = model.session(&opts).unwrap();
        for _ in 0..20 {
            assert_eq!(s.run(&[&x]).unwrap().get(0).unwrap().data, &want[..]);
        }
    })
    .join()
    .unwrap();
}
