//! Reference files through the library (`kestrel::reference`), as the Python module and the
//! C ABI use them: a fixture passes against PyTorch, a quantized output is counted in steps,
//! and a file that lacks or misshapes a tensor is an error naming the file and the tensor.

mod common;

use common::{fixture, reference, temp_path};
use kestrel::reference::{compare, Reference, Tolerance};
use kestrel::{Error, Model, SessionOptions};
use std::collections::BTreeMap;

#[test]
fn fixtures_pass_against_their_references() {
    let opts = SessionOptions::default();
    for (name, batch) in [("cifarnet", 3), ("allops", 1)] {
        let model = Model::load(fixture(name)).unwrap();
        let checks = compare(&model, reference(name, batch), &opts, &Tolerance::of(&opts)).unwrap();
        assert_eq!(checks.len(), model.output_names().len(), "{name}");
        for c in &checks {
            assert!(c.ok(), "{name} {}: {:?}", c.name, c.diff);
            assert_eq!(c.shape[0], batch, "{name}");
            assert!(c.steps.is_none());
        }
    }
}

#[test]
fn quantized_outputs_are_judged_in_steps() {
    let model = Model::load(fixture("cifarnet_int8")).unwrap();
    let opts = SessionOptions::default();
    let strict = Tolerance {
        steps: 0.0,
        ..Tolerance::of(&opts)
    };
    let path = reference("cifarnet_int8", 1);
    let [check] = &compare(&model, &path, &opts, &Tolerance::of(&opts)).unwrap()[..] else {
        panic!("one output");
    };
    let steps = check.steps.expect("a quantized output");
    assert!(check.ok() && steps.within(1.0), "{steps:?}");
    // The tolerance is the step count: with none allowed, any step off fails.
    let [zero] = &compare(&model, &path, &opts, &strict).unwrap()[..] else {
        panic!("one output");
    };
    assert_eq!(zero.ok(), steps.one + steps.beyond == 0, "{steps:?}");
}

#[test]
fn a_file_without_the_input_or_output_names_both() {
    let model = Model::load(fixture("cifarnet")).unwrap();
    let path = temp_path("reference-wrong-names.safetensors");
    let write = |name: &str, shape: &[usize]| {
        let data = vec![0.5f32; shape.iter().product()];
        let tensors: Vec<(&str, &[usize], &[f32])> = vec![(name, shape, &data)];
        kestrel_loader::write_tensors(&path, &tensors, &BTreeMap::new()).unwrap();
    };
    let message = |e: Error| {
        assert!(matches!(e, Error::Reference { .. }), "{e:?}");
        e.to_string()
    };
    write("x", &[1, 3, 32, 32]);
    let e = message(Reference::load(&model, &path).unwrap_err());
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(
        e.contains("no tensor \"input\"") && e.contains("the file has: x"),
        "{e}"
    );

    write("input", &[1, 3, 32, 16]);
    let e = message(Reference::load(&model, &path).unwrap_err());
    assert!(
        e.contains("tensor \"input\"") && e.contains("32, 16"),
        "{e}"
    );

    // Inputs fit, but there is no output to compare with.
    write("input", &[1, 3, 32, 32]);
    let opts = SessionOptions::default();
    let e = message(compare(&model, &path, &opts, &Tolerance::of(&opts)).unwrap_err());
    assert!(e.contains("no float tensor \"output\""), "{e}");
    std::fs::remove_file(&path).ok();
}
