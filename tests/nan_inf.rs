//! NaN and ±Inf inputs propagate as PyTorch propagates them: an output is NaN or infinite
//! exactly where an f64 plain-loop evaluation (the reference kernels, which follow
//! PyTorch's semantics op by op: NaN wins a max-pool window, relu(NaN) is NaN, 0·Inf is
//! NaN only where the window really multiplies them) says so, on every fast path. A fast
//! kernel that mixes values outside an output's window (a transform, a padded tile) would
//! spread a NaN to outputs PyTorch keeps finite; this catches that.

mod common;

use common::{fixture, FIXTURES};
use kestrel::compare::{diff, ATOL, DEFAULT_RTOL};
use kestrel::{Isa, Kernels, Model, SessionOptions};

/// A smooth input with a NaN, a +Inf and a -Inf planted in each image, away from the
/// edges and from each other.
fn input_with_specials(shape: &[usize]) -> Vec<f32> {
    let len: usize = shape.iter().product();
    let mut x: Vec<f32> = (0..len)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let per_image = len / shape[0];
    let (h, w) = (shape[2], shape[3]);
    for img in 0..shape[0] {
        let base = img * per_image;
        for (k, v) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY]
            .into_iter()
            .enumerate()
        {
            let (y, xx) = (h / 4 + k * h / 4, w / 3 + k * w / 5);
            let c = k % shape[1];
            x[base + (c * h + y) * w + xx] = v;
        }
    }
    x
}

/// Every step's output of one run, by step name.
fn layers(
    model: &Model,
    batch: usize,
    kernels: Kernels,
    threads: usize,
    x: &[f32],
) -> Vec<(String, Vec<f32>)> {
    let opts = SessionOptions::default()
        .with_batch(batch)
        .with_kernels(kernels)
        .with_threads(threads)
        .with_optimize(false);
    let mut session = model.session(&opts).unwrap();
    let mut out = Vec::new();
    session
        .run_with(&[x], |name, t| {
            out.push((name.to_string(), t.data.to_vec()))
        })
        .unwrap();
    out
}

#[test]
fn nan_and_inf_inputs_propagate_as_the_reference_says() {
    for name in FIXTURES {
        let model = Model::load(fixture(name)).unwrap();
        for batch in [1, 2] {
            let shape: Vec<usize> = std::iter::once(batch)
                .chain(model.inputs()[0].dims.iter().copied())
                .collect();
            let x = input_with_specials(&shape);
            let want = layers(&model, batch, Kernels::Reference, 1, &x);
            for isa in Isa::available() {
                for threads in [1, 2] {
                    let got = layers(&model, batch, Kernels::Isa(isa), threads, &x);
                    assert_eq!(got.len(), want.len());
                    for ((layer, g), (_, w)) in got.iter().zip(&want) {
                        let d = diff(g, w, DEFAULT_RTOL, ATOL);
                        let wrong = g
                            .iter()
                            .zip(w)
                            .filter(|(g, w)| {
                                g.is_nan() != w.is_nan() || (w.is_infinite() && g != w)
                            })
                            .count();
                        let special = w.iter().filter(|v| !v.is_finite()).count();
                        assert!(
                            d.ok(),
                            "{name} b{batch} {isa} t{threads} {layer}: {wrong} outputs non-finite \
                             where the reference is not or the other way ({special} of {} \
                             reference outputs non-finite); max abs {:.3e}",
                            w.len(),
                            d.max_abs
                        );
                    }
                }
            }
        }
    }
}

/// Subnormal values are flushed to zero while a CPU session runs (they would cost a
/// microcode assist per operation): `x * 1` of subnormals gives zeros (ordinary values
/// pass unchanged), on every kernel set and thread count, and the caller's own arithmetic
/// keeps its subnormals afterwards.
#[test]
fn subnormals_are_flushed_inside_a_run_only() {
    let g = serde_json::json!({
        "version": 2,
        "inputs": [{"name": "x", "shape": [-1, 64]}],
        "nodes": [{"name": "y", "op": "mul", "inputs": ["x"], "attrs": {"scalar": 1.0}}],
        "outputs": ["y"]
    });
    let model = Model::from_parts(&common::graph_def(&g), &Default::default()).unwrap();
    let x: Vec<f32> = (0..64)
        .map(|i| match i % 2 {
            0 => (i as f32 - 32.0) * 1e-40,
            _ => i as f32,
        })
        .collect();
    let want: Vec<f32> = x
        .iter()
        .map(|&v| if v.abs() < 1e-38 { 0.0 } else { v })
        .collect();
    let mut kernels = vec![Kernels::Reference];
    kernels.extend(Isa::available().into_iter().map(Kernels::Isa));
    for k in kernels {
        for threads in [1, 2] {
            let opts = SessionOptions::default()
                .with_kernels(k)
                .with_threads(threads);
            let mut session = model.session(&opts).unwrap();
            let got = session.run(&[&x]).unwrap().get(0).unwrap().data.to_vec();
            assert_eq!(got, want, "{k:?} threads={threads}");
            let tiny = std::hint::black_box(1e-39f32);
            assert!(
                std::hint::black_box(tiny * 1.0) != 0.0,
                "{k:?}: the mode leaked out"
            );
        }
    }
}
