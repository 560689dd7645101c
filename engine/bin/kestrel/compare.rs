use crate::info::join;
use anyhow::Result;
use kestrel::compare::Diff;
use kestrel::reference::{check_outputs, Reference, Tolerance};
use kestrel::Model;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CompareArgs {
    model: PathBuf,
    /// PyTorch reference file: `input`, `output` (or `output.0`, …), and with
    /// intermediates `layer.<node name>` for every node.
    reference: PathBuf,
    /// cpu, cuda (GPU 0) or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: kestrel::Device,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    kernels: crate::KernelArgs,
    /// Also compare every layer the reference holds, and list the worst ones.
    #[arg(long)]
    per_layer: bool,
    /// Relative tolerance: pass when max|out − ref| ≤ rtol · max|ref| + atol. Default by
    /// --precision: fp32 1e-4 (atol 1e-6), tf32 5e-3, fp16 1e-2 (atol 0).
    #[arg(long)]
    rtol: Option<f64>,
    /// A quantized output or layer (a PT2E model's `fake_quant`) passes when every element
    /// is within this many quantization steps of the reference, whatever --rtol says.
    #[arg(long, default_value_t = 1.0)]
    steps: f64,
}

/// How many of the worst layers `--per-layer` lists.
const WORST: usize = 5;

pub fn compare(args: &CompareArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        args.steps.is_finite() && args.steps >= 0.0,
        "--steps must be a number of quantization steps, 0 or more, got {}",
        args.steps
    );
    let model = Model::load(&args.model)?;
    let reference = Reference::load(&model, &args.reference)?;
    let batch = reference.batch;
    let opts = args.kernels.options(args.device, batch, args.threads)?;
    let mut session = model.session(&opts)?;
    let (rtol, atol) = args.kernels.precision.tolerance();
    let tolerance = Tolerance {
        rtol: args.rtol.unwrap_or(rtol),
        atol,
        steps: args.steps,
    };
    let (kernels, threads) = (session.kernels_name().to_string(), session.threads());
    let slices = reference.slices();
    let mut layers: Vec<(String, Diff)> = Vec::new();
    let mut unmatched = 0;
    let outputs = session.run_with(&slices, |name, out| {
        if !args.per_layer {
            return;
        }
        match reference.tensor(&format!("layer.{name}")) {
            Some(r) => {
                let d = tolerance.judge(out.data, r, model.layer_step(name));
                layers.push((name.to_string(), d))
            }
            None => unmatched += 1,
        }
    })?;
    println!(
        "{} vs {} (batch {batch}, {} {}, {}, {} thread(s), rtol {:e})",
        args.model.display(),
        args.reference.display(),
        args.device,
        kernels,
        args.kernels.precision,
        threads,
        tolerance.rtol
    );
    println!(
        "{:<12} {:<18} {:>12} {:>12} {:>12}",
        "output", "shape", "max abs err", "max rel err", "tolerance"
    );
    let checks = check_outputs(&model, &reference, &outputs, &tolerance)?;
    let mut all_ok = true;
    for check in &checks {
        let d = &check.diff;
        all_ok &= d.ok();
        let shape = format!("[{}]", join(&check.shape));
        println!(
            "{:<12} {shape:<18} {:>12.3e} {:>12.3e} {:>12.3e} {}",
            check.name,
            d.max_abs,
            d.rel(),
            d.tolerance,
            verdict(d)
        );
    }
    for (name, s) in checks.iter().filter_map(|c| Some((&c.name, c.steps?))) {
        let n = (s.equal + s.one + s.beyond).max(1) as f64;
        println!(
            "{name}: quantized, in steps of {:.4e} (tolerance {} step(s)): {:.2}% equal, {:.2}% one step off, {:.2}% further",
            s.step,
            args.steps,
            100.0 * s.equal as f64 / n,
            100.0 * s.one as f64 / n,
            100.0 * s.beyond as f64 / n
        );
    }
    if args.per_layer {
        let over = layers.iter().filter(|(_, d)| !d.ok()).count();
        all_ok &= over == 0;
        println!(
            "\nlayers: {} compared, {over} over tolerance, {unmatched} without a reference (folded or renamed); worst:",
            layers.len()
        );
        layers.sort_by(|a, b| {
            (b.1.max_abs / b.1.tolerance).total_cmp(&(a.1.max_abs / a.1.tolerance))
        });
        println!(
            "{:<40} {:>12} {:>12} {:>12}",
            "layer", "max abs err", "max rel err", "tolerance"
        );
        for (name, d) in layers.iter().take(WORST) {
            println!(
                "{name:<40} {:>12.3e} {:>12.3e} {:>12.3e} {}",
                d.max_abs,
                d.rel(),
                d.tolerance,
                verdict(d)
            );
        }
    }
    if all_ok {
        println!("\nMATCH: Kestrel agrees with PyTorch within tolerance");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nMISMATCH: Kestrel is over tolerance against PyTorch");
        Ok(ExitCode::from(1))
    }
}

fn verdict(d: &Diff) -> &'static str {
    if d.ok() {
        "ok"
    } else {
        "OVER"
    }
}
