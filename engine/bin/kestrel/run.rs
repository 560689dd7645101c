use crate::info::join;
use anyhow::{Context, Result};
use kestrel::reference::{output_keys, Reference};
use kestrel::Model;
use kestrel_kernels::rng::Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RunArgs {
    model: PathBuf,
    /// safetensors file whose `input` tensor (`input.0`, `input.1`, … for several inputs)
    /// is fed to the model; default: a seeded random normal input of the model's shape.
    #[arg(long)]
    input: Option<PathBuf>,
    /// cpu, cuda (GPU 0) or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: kestrel::Device,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    kernels: crate::KernelArgs,
    /// Batch size of the random input (an `--input` file sets its own); default: the
    /// model's fixed batch, or 1.
    #[arg(long)]
    batch: Option<usize>,
    /// Seed of the random input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the outputs to this safetensors file as `output` (or `output.0`, …).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// The model's inputs, in graph order, and their batch size.
struct Inputs {
    pub data: Vec<Vec<f32>>,
    pub batch: usize,
}

impl Inputs {
    fn slices(&self) -> Vec<&[f32]> {
        self.data.iter().map(|d| &d[..]).collect()
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    let inputs = match &args.input {
        Some(path) => {
            let reference = Reference::load(&model, path)?;
            Inputs {
                data: reference.inputs,
                batch: reference.batch,
            }
        }
        None => {
            let batch = args.batch.unwrap_or_else(|| model.default_batch());
            Inputs {
                data: random_inputs(&model, batch, args.seed)?,
                batch,
            }
        }
    };
    let batch = inputs.batch;
    let opts = args.kernels.options(args.device, batch, args.threads)?;
    let mut session = model.session(&opts)?;
    let slices = inputs.slices();
    let start = Instant::now();
    let outputs = session.run(&slices)?;
    let elapsed = start.elapsed();
    let names = output_keys(outputs.len());
    for (name, out) in names.iter().zip(outputs.iter()) {
        println!("{name}: shape [{}]", join(out.shape));
        summarise(out.shape, out.data);
    }
    println!(
        "ran in {:.3} ms (batch {batch}, first run)",
        elapsed.as_secs_f64() * 1e3
    );
    if let Some(path) = &args.output {
        let tensors: Vec<(&str, &[usize], &[f32])> = names
            .iter()
            .zip(outputs.iter())
            .map(|(n, o)| (n.as_str(), o.shape, o.data))
            .collect();
        kestrel_loader::write_tensors(path, &tensors, &BTreeMap::new())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

pub fn random_inputs(model: &Model, batch: usize, seed: u64) -> Result<Vec<Vec<f32>>> {
    // The kernels' seeded xorshift64*: enough randomness for a test input, and the same on
    // every machine. The seed is spread over the state's bits first (and kept odd, never 0),
    // so seeds 0, 1, 2 start far apart.
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Uniform in (0, 1): 53 bits, centred, so ln(u) below is finite.
    let mut uniform = move || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    model
        .inputs()
        .iter()
        .map(|input| {
            let len = input
                .dims
                .iter()
                .try_fold(batch, |n, &d| n.checked_mul(d))
                .filter(|&n| n <= isize::MAX as usize / 4)
                .with_context(|| {
                    format!("input \"{}\" at batch {batch} is too large", input.name)
                })?;
            // Fallible: a huge --batch is an error message, not an abort.
            let mut data = Vec::new();
            data.try_reserve_exact(len).map_err(|_| {
                anyhow::anyhow!(
                    "out of memory: random input \"{}\" of {len} floats (batch {batch})",
                    input.name
                )
            })?;
            // Box–Muller: standard normal values, like torch.randn.
            data.extend((0..len).map(|_| {
                let (u, v) = (uniform(), uniform());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            }));
            Ok(data)
        })
        .collect()
}

/// Prints a line of statistics, and for (n, classes) outputs the top class of each row.
fn summarise(shape: &[usize], data: &[f32]) {
    let (min, max) = data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let mean = data.iter().map(|&v| f64::from(v)).sum::<f64>() / data.len().max(1) as f64;
    println!("  min {min:.6}  max {max:.6}  mean {mean:.6}");
    if let [rows, cols] = *shape {
        for (r, row) in data.chunks(cols).take(rows.min(8)).enumerate() {
            let (best, value) =
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
                    );
            println!("  row {r}: argmax {best} ({value:.6})");
        }
    }
}
