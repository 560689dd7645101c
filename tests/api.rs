//! The small parts of the public API a program holds on to: devices by name, input shapes
//! by index, outputs by name, and the names the model and its sessions agree on.

mod common;

use common::fixture;
use kestrel::compare::{ATOL, DEFAULT_RTOL};
use kestrel::{Device, Error, Model, Precision, SessionOptions, TensorView};

#[test]
fn devices_parse_from_the_names_they_print() {
    for (text, device) in [
        ("cpu", Device::Cpu),
        ("cuda", Device::Cuda(0)),
        ("cuda:3", Device::Cuda(3)),
    ] {
        assert_eq!(text.parse::<Device>(), Ok(device));
        assert_eq!(device.to_string(), text);
    }
    assert_eq!("cuda:0".parse::<Device>(), Ok(Device::Cuda(0)));
    for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""] {
        let err = bad.parse::<Device>().unwrap_err();
        assert!(err.contains(&format!("\"{bad}\"")), "{bad}: {err}");
    }
}

#[test]
fn input_shape_past_the_inputs_is_none() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let session = model
        .session(&SessionOptions::default().with_batch(2))
        .unwrap();
    assert_eq!(session.input_shape(0), Some(&[2, 3, 32, 32][..]));
    // The plan's next value is a node's output: never handed out as an input's shape.
    assert_eq!(session.input_shape(1), None);
}

#[test]
fn outputs_by_name_and_the_names_agree() {
    let model = Model::load(fixture("allops")).unwrap();
    let mut session = model.session(&SessionOptions::default()).unwrap();
    assert_eq!(model.output_names(), session.output_names());
    let names = session.output_names().to_vec();
    assert!(!names.is_empty());
    let len: usize = session.input_shape(0).unwrap().iter().product();
    let input: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
    let shapes: Vec<Vec<usize>> = (0..names.len())
        .map(|i| session.output_shape(i).unwrap().to_vec())
        .collect();
    assert_eq!(session.output_shape(names.len()), None);
    let outputs = session.run(&[&input]).unwrap();
    for (i, name) in names.iter().enumerate() {
        let by_name = outputs.by_name(name).unwrap();
        let by_index = outputs.get(i).unwrap();
        // Known before the run, as a caller sizing its buffers needs it.
        assert_eq!(by_index.shape, &shapes[i][..], "{name}");
        assert_eq!(by_name.shape, by_index.shape, "{name}");
        assert_eq!(by_name.data.as_ptr(), by_index.data.as_ptr(), "{name}");
    }
    assert!(outputs.by_name("no such output").is_none());
}

#[test]
fn the_default_tolerance_is_fp32s() {
    assert_eq!((DEFAULT_RTOL, ATOL), Precision::Fp32.tolerance());
}

#[test]
fn bad_session_options_name_the_option() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let cases = [
        ("batch", SessionOptions::default().with_batch(0)),
        ("threads", SessionOptions::default().with_threads(0)),
        (
            "precision",
            SessionOptions::default().with_precision(Precision::Fp16),
        ),
        // Passes that do not divide the batch, or none.
        (
            "micro_batch",
            SessionOptions::default()
                .with_batch(4)
                .with_micro_batch(Some(3)),
        ),
        (
            "micro_batch",
            SessionOptions::default().with_micro_batch(Some(0)),
        ),
    ];
    for (want, opts) in cases {
        match model.session(&opts) {
            Err(kestrel::Error::BadOption { option, detail }) => {
                assert_eq!(option, want, "{detail}")
            }
            Err(other) => panic!("{want}: not BadOption: {other:?}"),
            Ok(_) => panic!("{want}: a session was built"),
        }
    }
}

#[test]
fn shaped_inputs_run_as_slices_do_and_bad_ones_name_the_input() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let mut session = model
        .session(&SessionOptions::default().with_batch(2))
        .unwrap();
    assert_eq!(session.input_index("input"), Some(0));
    assert_eq!(session.input_index("nope"), None);
    let shape = [2, 3, 32, 32];
    let data: Vec<f32> = (0..2 * 3 * 32 * 32)
        .map(|i| (i % 11) as f32 * 0.1)
        .collect();
    let plain = session.run(&[&data]).unwrap().get(0).unwrap().to_tensor();
    let view = TensorView {
        shape: &shape,
        data: &data,
    };
    let shaped = session
        .run_tensors(&[view])
        .unwrap()
        .get(0)
        .unwrap()
        .to_tensor();
    assert_eq!(plain, shaped);

    let bad = |shape: &[usize], data: &[f32], count: usize| {
        let views = vec![TensorView { shape, data }; count];
        match session_error(&model, &views) {
            Error::Input { name, detail } => format!("{name}: {detail}"),
            other => panic!("not an input error: {other:?}"),
        }
    };
    // Wrong rank, wrong shape (the same number of values), wrong count, data not the shape.
    let rank = bad(&[2, 3, 1024], &data, 1);
    assert!(
        rank.contains("input: expected shape [2, 3, 32, 32], got [2, 3, 1024]"),
        "{rank}"
    );
    let swapped = bad(&[2, 32, 32, 3], &data, 1);
    assert!(swapped.contains("got [2, 32, 32, 3]"), "{swapped}");
    let count = bad(&shape, &data, 2);
    assert!(count.contains("takes 1 input(s), got 2"), "{count}");
    let short = bad(&shape, &data[1..], 1);
    assert!(
        short.contains("holds 6144 values, the data has 6143"),
        "{short}"
    );
}

fn session_error(model: &Model, views: &[TensorView<'_>]) -> Error {
    let mut session = model
        .session(&SessionOptions::default().with_batch(2))
        .unwrap();
    match session.run_tensors(views) {
        Err(e) => e,
        Ok(_) => panic!("ran with bad inputs"),
    }
}

#[test]
fn options_are_built_from_default_with_setters() {
    let opts = SessionOptions::default()
        .with_device(Device::Cuda(1))
        .with_batch(3)
        .with_optimize(false)
        .with_threads(2)
        .with_kernels(kestrel::Kernels::Reference)
        .with_cuda_cache(Some("/tmp/k".into()))
        .with_precision(Precision::Tf32);
    assert_eq!(opts.device, Device::Cuda(1));
    assert_eq!((opts.batch, opts.optimize, opts.threads), (3, false, 2));
    assert_eq!(opts.kernels, kestrel::Kernels::Reference);
    assert_eq!(
        opts.cuda_cache.as_deref(),
        Some(std::path::Path::new("/tmp/k"))
    );
    assert_eq!(opts.precision, Precision::Tf32);
    let default = SessionOptions::default();
    assert_eq!(
        (default.device, default.batch, default.threads),
        (Device::Cpu, 1, 1)
    );
}

/// Inputs by name, in any order: the same outputs as in the model's order, and each bad
/// call (an unknown name, an input missing or given twice, a wrong shape) an error
/// naming the input.
#[test]
fn inputs_by_name_in_any_order() {
    let graph = serde_json::json!({
        "version": 1,
        "inputs": [{"name": "a", "shape": [-1, 2, 3, 3]}, {"name": "b", "shape": [-1, 1, 3, 3]}],
        "nodes": [{"name": "cat", "op": "concat", "inputs": ["a", "b"], "attrs": {"dim": 1}}],
        "outputs": ["cat"]
    });
    let model = Model::from_parts(&common::graph_def(&graph), &Default::default()).unwrap();
    let mut session = model.session(&SessionOptions::default()).unwrap();
    let a: Vec<f32> = (0..18).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..9).map(|i| -(i as f32)).collect();
    let (sa, sb) = ([1, 2, 3, 3], [1, 1, 3, 3]);
    let view = |shape, data| TensorView { shape, data };
    let (va, vb) = (view(&sa[..], &a[..]), view(&sb[..], &b[..]));
    let want = session.run(&[&a, &b]).unwrap().get(0).unwrap().to_tensor();
    assert_eq!(&want.data()[..18], &a[..]);
    for order in [[("a", va), ("b", vb)], [("b", vb), ("a", va)]] {
        let got = session
            .run_named(&order)
            .unwrap()
            .get(0)
            .unwrap()
            .to_tensor();
        assert_eq!(got, want);
    }
    let bad = |session: &mut kestrel::Session, inputs: &[(&str, TensorView<'_>)]| match session
        .run_named(inputs)
    {
        Err(Error::Input { name, detail }) => format!("{name}: {detail}"),
        Err(other) => panic!("not an input error: {other:?}"),
        Ok(_) => panic!("ran with bad inputs"),
    };
    let unknown = bad(&mut session, &[("a", va), ("c", vb)]);
    assert_eq!(unknown, "c: the model has no such input (its inputs: a, b)");
    assert_eq!(bad(&mut session, &[("a", va)]), "b: not given");
    let twice = bad(&mut session, &[("a", va), ("b", vb), ("a", va)]);
    assert_eq!(twice, "a: given 2 times");
    let shape = bad(&mut session, &[("a", vb), ("b", vb)]);
    assert_eq!(shape, "a: expected shape [1, 2, 3, 3], got [1, 1, 3, 3]");
}
