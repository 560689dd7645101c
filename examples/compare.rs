//! Checks Kestrel against PyTorch from Rust: runs a reference file's `input` through the
//! model and compares every output, and every layer the file holds, with PyTorch's.
//!
//!     cargo run --release --example compare -- [MODEL] [REFERENCE]
//!
//! The reference comes from `save_reference(model, x, path, intermediates=True)` in
//! `loader/python/kestrel_export.py`: tensors `input`, `output` (`output.0`, … for several)
//! and `layer.<node name>`. Exits 0 within tolerance, 1 over it, 2 on any other error.

use kestrel::compare::{diff, Diff, ATOL, DEFAULT_RTOL};
use kestrel::{Model, SessionOptions};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args
        .first()
        .map_or("tests/fixtures/cifarnet.safetensors", |s| s);
    let reference = match args.get(1) {
        Some(path) => path.clone(),
        None => model.replace(".safetensors", ".b1.ref.safetensors"),
    };
    match compare(Path::new(model), Path::new(&reference)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// True when every output and layer is within tolerance.
fn compare(model_path: &Path, ref_path: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let model = Model::load(model_path)?;
    let reference = kestrel_loader::read_tensors(ref_path)?;
    // A float tensor of the reference: its shape and values.
    let tensor = |name: &str| {
        let t = reference.tensors.get(name);
        let found = t.and_then(|t| Some((&t.shape[..], t.data.as_deref()?)));
        found.ok_or_else(|| format!("{}: no float tensor \"{name}\"", ref_path.display()))
    };
    // One input, batch first: the session runs at the reference's batch, and the shape is
    // checked against the model's so that a file made for another model says so.
    let (shape, input) = tensor("input")?;
    let batch = model.check_input_shape(0, shape)?;
    let mut session = model.session(&SessionOptions::default().with_batch(batch))?;
    // run_with shows each layer's output as soon as it is computed. Layers the session
    // fused away (a batch norm folded into its conv) have no output of their own.
    let (mut compared, mut over) = (0, Vec::new());
    let outputs = session.run_with(&[input], |name, out| {
        if let Ok((_, r)) = tensor(&format!("layer.{name}")) {
            let d = diff(out.data, r, DEFAULT_RTOL, ATOL);
            compared += 1;
            if !d.ok() {
                over.push((name.to_string(), d));
            }
        }
    })?;
    println!("{} vs {}", model_path.display(), ref_path.display());
    let mut ok = true;
    for (i, out) in outputs.iter().enumerate() {
        let name = match outputs.len() {
            1 => "output".to_string(),
            _ => format!("output.{i}"),
        };
        let d = diff(out.data, tensor(&name)?.1, DEFAULT_RTOL, ATOL);
        print_diff(&name, &d);
        ok &= d.ok();
    }
    println!("{compared} layers compared, {} over tolerance", over.len());
    for (name, d) in &over {
        print_diff(name, d);
    }
    ok &= over.is_empty();
    let verdict = if ok {
        "MATCH"
    } else {
        "MISMATCH: over tolerance"
    };
    println!("{verdict}");
    Ok(ok)
}

fn print_diff(name: &str, d: &Diff) {
    let verdict = if d.ok() { "OK" } else { "OVER" };
    println!(
        "{name:<24} max abs err {:.3e}  tolerance {:.3e}  {verdict}",
        d.max_abs, d.tolerance
    );
}
