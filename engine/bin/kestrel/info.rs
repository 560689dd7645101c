use anyhow::Result;
use kestrel::{Model, SessionOptions};
use std::path::Path;

pub fn info(path: &Path, batch: Option<usize>) -> Result<()> {
    let model = Model::load(path)?;
    let batch = batch.unwrap_or_else(|| model.default_batch());
    println!("model: {}", path.display());
    for input in model.inputs() {
        let batch = input.batch.map_or("N".to_string(), |b| b.to_string());
        println!("input  {:<24} [{batch}, {}]", input.name, join(&input.dims));
    }
    let layers = model.layers(batch)?;
    for name in model.output_names() {
        let shape = layers.iter().find(|l| l.name == name).map(|l| &l.shape);
        println!(
            "output {name:<24} {}",
            shape.map_or(String::new(), |s| format!("[{}]", join(s)))
        );
    }
    println!();
    println!(
        "{:<32} {:<20} {:<20} {:>10} {:>10}",
        "node", "op", "output shape", "params", "MFLOP"
    );
    for l in &layers {
        let shape = format!("[{}]", join(&l.shape));
        let mflop = l.flops as f64 / 1e6;
        println!(
            "{:<32} {:<20} {:<20} {:>10} {:>10.3}",
            l.name, l.op, shape, l.params, mflop
        );
    }
    let flops: u64 = layers.iter().map(|l| l.flops).sum();
    println!();
    println!(
        "{} nodes, {} parameters, {:.2} MFLOP at batch {batch}",
        layers.len(),
        model.parameter_count(),
        flops as f64 / 1e6
    );
    let session = model.session(&SessionOptions {
        batch,
        ..SessionOptions::default()
    })?;
    println!(
        "session (cpu, batch {batch}): {} kernel calls after folding, arena {:.2} MiB",
        session.kernel_count(),
        session.arena_bytes() as f64 / (1 << 20) as f64
    );
    Ok(())
}

pub fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
