//! The `kestrel` command line: inspect a model, run it, and compare it with PyTorch.
//! Exit codes: 0 success, 1 `compare` over tolerance, 2 any usage, file or model error.

mod bench;
mod compare;
mod info;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kestrel",
    version,
    about = "Low-latency inference for PyTorch-trained CNNs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the model's inputs, outputs and every node: op, shape, parameters, FLOPs.
    Info(info::InfoArgs),
    /// Run the model once and print (or save) its outputs.
    Run(run::RunArgs),
    /// Run the model on a PyTorch reference file's input and diff every output against it.
    /// Exits 0 within tolerance, 1 over it, 2 on any error.
    Compare(compare::CompareArgs),
    /// Time repeated runs: median, p90, p99, p99.9, min, max latency and throughput.
    Bench(bench::BenchArgs),
}

/// Which CPU kernels to run, for the commands that run a model.
#[derive(clap::Args)]
struct KernelArgs {
    /// SIMD instruction set (default: the best this CPU has, or KESTREL_ISA).
    #[arg(long, value_parser = ["avx512", "avx2", "scalar"])]
    isa: Option<String>,
    /// Run the reference kernels (plain loops, f64 sums) instead of the SIMD ones.
    #[arg(long, conflicts_with = "isa")]
    reference_kernels: bool,
    /// The convolutions' arithmetic on CUDA: fp32, or tf32 / fp16 on tensor cores with
    /// fp32 accumulation (inputs and outputs stay f32). The CPU runs fp32 only.
    #[arg(long, default_value = "fp32")]
    precision: kestrel::Precision,
}

impl KernelArgs {
    /// The session options of a command that runs a model with these kernels.
    fn options(
        &self,
        device: kestrel::Device,
        batch: usize,
        threads: usize,
    ) -> anyhow::Result<kestrel::SessionOptions> {
        Ok(kestrel::SessionOptions::default()
            .with_device(device)
            .with_batch(batch)
            .with_threads(threads)
            .with_kernels(self.choice()?)
            .with_precision(self.precision))
    }

    fn choice(&self) -> anyhow::Result<kestrel::Kernels> {
        Ok(match (&self.isa, self.reference_kernels) {
            (_, true) => kestrel::Kernels::Reference,
            (Some(isa), _) => kestrel::Kernels::Isa(isa.parse().map_err(anyhow::Error::msg)?),
            (None, false) => kestrel::Kernels::Auto,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::info(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Compare(args) => compare::compare(&args),
        Command::Bench(args) => bench::bench(&args).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", one_line(&e));
        ExitCode::from(2)
    })
}

/// The error and its causes on one line, each cause once: many errors already print their
/// cause's text themselves.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}
