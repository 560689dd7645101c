use anyhow::{bail, Result};
use kestrel::{Device, Model, Precision, SessionOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InfoArgs {
    model: PathBuf,
    /// Batch size the shapes and FLOPs are given for; default: the model's fixed batch,
    /// or 1.
    #[arg(long)]
    batch: Option<usize>,
    /// cuda or cuda:N also lists every CUDA kernel launch with the registers, shared
    /// memory, stack and spills ptxas gave it, and the device, driver and NVRTC in use.
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// With --device cuda: compile for this architecture (e.g. sm_80) without opening a
    /// GPU; default: the GPU's own.
    #[arg(long)]
    arch: Option<String>,
    /// With --device cuda: the convolutions' arithmetic (fp32, tf32, fp16).
    #[arg(long, default_value = "fp32")]
    precision: Precision,
}

pub fn info(args: &InfoArgs) -> Result<()> {
    let path = &args.model;
    let model = Model::load(path)?;
    let batch = args.batch.unwrap_or_else(|| model.default_batch());
    println!("model: {}", path.display());
    for input in model.inputs() {
        let batch = input.batch.map_or("N".to_string(), |b| b.to_string());
        println!("input  {:<24} [{batch}, {}]", input.name, join(&input.dims));
    }
    let layers = model.layers(batch)?;
    for name in model.output_names() {
        let shape = layers.iter().find(|l| &l.name == name).map(|l| &l.shape);
        println!(
            "output {name:<24} {}",
            shape.map_or(String::new(), |s| format!("[{}]", join(s)))
        );
    }
    println!();
    println!(
        "{:<32} {:<20} {:<20} {:>10} {:>10}  precision",
        "node", "op", "output shape", "params", "MFLOP"
    );
    for l in &layers {
        let shape = format!("[{}]", join(&l.shape));
        let mflop = l.flops as f64 / 1e6;
        println!(
            "{:<32} {:<20} {:<20} {:>10} {:>10.3}  {}",
            l.name, l.op, shape, l.params, mflop, l.precision
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
    let session = model.session(&SessionOptions::default().with_batch(batch))?;
    println!(
        "session (cpu, batch {batch}): {} kernel calls after folding, arena {:.2} MiB",
        session.kernel_count(),
        session.arena_bytes() as f64 / (1 << 20) as f64
    );
    if args.device != Device::Cpu {
        cuda_kernels(&model, args, batch)?;
    }
    Ok(())
}

/// The CUDA stack and each kernel launch's resources as ptxas compiled them.
fn cuda_kernels(model: &Model, args: &InfoArgs, batch: usize) -> Result<()> {
    let opts = SessionOptions::default()
        .with_device(args.device)
        .with_batch(batch)
        .with_precision(args.precision);
    let arch = match &args.arch {
        Some(arch) => arch.clone(),
        None => {
            let session = model.session(&opts).map_err(|e| match e {
                kestrel::Error::Cuda(kestrel::CudaError::Unavailable(_)) => {
                    anyhow::anyhow!(
                        "{e} (with --arch sm_90, say, the kernels compile without a GPU)"
                    )
                }
                e => e.into(),
            })?;
            let Some(cuda) = session.cuda_info() else {
                bail!("the session did not run on CUDA");
            };
            println!();
            println!("cuda: {}", cuda.describe());
            cuda.arch
        }
    };
    let build = model.compile_cuda(&opts, &arch)?;
    println!();
    println!(
        "{} kernel launches, {} modules: {} for {}, NVRTC {} ({}; ptxas's figures)",
        build.kernels.len(),
        build.modules,
        build.image,
        build.arch,
        build.nvrtc,
        args.precision
    );
    println!(
        "{:<28} {:<20} {:>14} {:>10} {:>5} {:>8} {:>8} {:>6} {:>7}",
        "node", "kernel", "grid", "block", "regs", "smem", "dyn smem", "stack", "spills"
    );
    for k in &build.kernels {
        let dims = |d: [u32; 3]| format!("{}x{}x{}", d[0], d[1], d[2]);
        println!(
            "{:<28} {:<20} {:>14} {:>10} {:>5} {:>8} {:>8} {:>6} {:>7}",
            k.node,
            k.entry,
            dims(k.grid),
            dims(k.block),
            k.registers,
            k.static_shared_bytes,
            k.dynamic_shared_bytes,
            k.stack_bytes,
            k.spill_stores + k.spill_loads
        );
    }
    Ok(())
}

pub fn join(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
