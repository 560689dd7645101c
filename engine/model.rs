//! `Model`: a validated graph with its weights, immutable and shareable across threads.

use crate::error::{Error, GraphError};
use crate::exec::cuda::CudaBuild;
use crate::graph::{build_graph, Graph, GraphInput};
use crate::plan::{lower_graph, split_broadcast_adds};
use crate::session::{Session, SessionOptions};
use crate::weights::Weights;
use kestrel_loader::GraphDef;
use std::path::{Path, PathBuf};

/// A model: the graph and its weights, checked through and through. `Send + Sync`: load it
/// once, share it (e.g. behind an `Arc`), and build one `Session` per thread and shape.
#[derive(Debug, Clone)]
pub struct Model {
    graph: Graph,
    path: Option<PathBuf>,
    /// The graph's output names, in order: what `Session::output_names` gives too.
    output_names: Vec<String>,
}

/// One node as `kestrel info` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// The node's name.
    pub name: String,
    /// Its op's name in the graph JSON.
    pub op: &'static str,
    /// The names of the values it reads.
    pub inputs: Vec<String>,
    /// Its output's shape, batch first.
    pub shape: Vec<usize>,
    /// Number of weight values it holds.
    pub params: usize,
    /// Floating-point operations per run (2 × multiply-adds).
    pub flops: u64,
    /// What it computes in: "fp32"; "fp32, int8 weights" where the file stores its
    /// weights as int8 (dequantized at load, computed in fp32 until the int8 kernels
    /// exist); "int8" or "uint8" for a `fake_quant`, the quantization it applies.
    pub precision: &'static str,
}

impl Model {
    /// Loads a model file: safetensors weights plus the `kestrel.graph` metadata. The file
    /// is memory-mapped (on unix) and its weights read in place: the model costs memory
    /// only for what a session build reads, and each session releases those pages once it
    /// has packed them (docs/architecture.md, "Weights in memory"). Replace model files by
    /// renaming a new one over them: one truncated in place while mapped kills the process
    /// with SIGBUS at the next session build (`kestrel_loader::read_tensors`).
    pub fn load(path: impl AsRef<Path>) -> Result<Model, Error> {
        let path = path.as_ref();
        Model::from_file(path, kestrel_loader::read_model(path)?)
    }

    /// [`Model::load`] on a file already in memory (embedded in a binary, received over a
    /// network, or read by a program that must survive its file being rewritten in place);
    /// `name` stands for the file in error messages. The model keeps owned copies of the
    /// weights, which its sessions read without copying.
    pub fn from_bytes(name: impl AsRef<Path>, bytes: &[u8]) -> Result<Model, Error> {
        let path = name.as_ref();
        Model::from_file(path, kestrel_loader::read_model_from_bytes(path, bytes)?)
    }

    fn from_file(path: &Path, file: kestrel_loader::ModelFile) -> Result<Model, Error> {
        let def = file.graph.ok_or_else(|| Error::NoGraph {
            path: path.to_path_buf(),
        })?;
        let weights = Weights::from_file(file.tensors);
        Model::build(&def, &weights, Some(path.to_path_buf()))
    }

    /// Builds a model from a graph made in code and weights bound by name (for example
    /// those of a plain `state_dict` file read with `Weights::load`).
    pub fn from_parts(def: &GraphDef, weights: &Weights) -> Result<Model, Error> {
        Model::build(def, weights, None)
    }

    fn build(def: &GraphDef, weights: &Weights, path: Option<PathBuf>) -> Result<Model, Error> {
        let in_file = |e: GraphError| Error::graph(path.clone(), e);
        let versions = kestrel_loader::MIN_GRAPH_VERSION..=kestrel_loader::GRAPH_VERSION;
        if !versions.contains(&def.version) {
            return Err(in_file(GraphError::Version {
                found: def.version,
                supported: kestrel_loader::GRAPH_VERSION,
            }));
        }
        let graph = build_graph(def, weights).map_err(in_file)?;
        let output_names = graph
            .outputs
            .iter()
            .map(|&v| graph.value_name(v).to_string())
            .collect();
        let mut model = Model {
            graph,
            path,
            output_names,
        };
        // Lowering at the smallest batch checks every shape, attribute and weight now,
        // so that a bad file fails at load rather than at session build.
        let (shapes, _) =
            lower_graph(&model.graph, model.default_batch()).map_err(|e| model.in_file(e))?;
        split_broadcast_adds(&mut model.graph, &shapes);
        Ok(model)
    }

    /// Names the model's file in graph errors that arise after load.
    fn in_file(&self, e: Error) -> Error {
        match e {
            Error::Graph { path: None, error } => Error::Graph {
                path: self.path.clone(),
                error,
            },
            other => other,
        }
    }

    /// The batch to run at when none is asked for: the fixed batch of any input (they all
    /// agree), or 1 when the batch is free.
    pub fn default_batch(&self) -> usize {
        self.graph.inputs.iter().find_map(|i| i.batch).unwrap_or(1)
    }

    /// The validated graph.
    #[cfg(test)]
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph's inputs.
    pub fn inputs(&self) -> &[GraphInput] {
        &self.graph.inputs
    }

    /// The names of the graph's outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// The quantization step of output `index`, where a `fake_quant` node computes it (a
    /// PT2E model's dequantized output): its scale, as f32. None for a float output or past
    /// the last output. `kestrel compare` counts such an output's errors in these steps.
    pub fn output_step(&self, index: usize) -> Option<f64> {
        match *self.graph.outputs.get(index)? {
            crate::graph::Value::Node(i) => self.layer_step(&self.graph.nodes[i].name),
            crate::graph::Value::Input(_) => None,
        }
    }

    /// The quantization step of the node named `name` where it is a `fake_quant`, else None.
    pub fn layer_step(&self, name: &str) -> Option<f64> {
        let node = self.graph.nodes.iter().find(|n| n.name == name)?;
        match &node.op {
            crate::graph::Op::FakeQuant(p) => Some(f64::from(p.scale)),
            _ => None,
        }
    }

    /// Total number of weight values.
    pub fn parameter_count(&self) -> usize {
        crate::graph::parameter_count(&self.graph)
    }

    /// Prepares a session: passes, shapes, kernels and the arena, all done here once.
    pub fn session(&self, opts: &SessionOptions) -> Result<Session, Error> {
        self.check_batch(opts)?;
        Session::new(&self.graph, opts).map_err(|e| self.in_file(e))
    }

    /// Compiles every CUDA kernel specialisation a session with `opts` would run, for the
    /// GPU architecture `arch` (e.g. "sm_90"), with NVRTC only: no GPU or driver needed.
    /// Compiled to CUBIN for `arch` (PTX where this NVRTC cannot emit it), so ptxas's
    /// errors (too many registers or too much shared memory) show here too. Fills the
    /// disk cache (`opts.cuda_cache`, else the default) so that sessions built later skip
    /// NVRTC; returns the distinct module count and each launch's registers, shared
    /// memory, stack and spills.
    pub fn compile_cuda(&self, opts: &SessionOptions, arch: &str) -> Result<CudaBuild, Error> {
        self.check_batch(opts)?;
        let plan = crate::session::session_plan(&self.graph, opts).map_err(|e| self.in_file(e))?;
        let cache = crate::session::cuda_cache(opts);
        let choice = crate::exec::cuda::OpChoice::of(opts);
        crate::exec::cuda::compile_plan(&plan, choice, arch, cache)
    }

    fn check_batch(&self, opts: &SessionOptions) -> Result<(), Error> {
        if opts.batch == 0 {
            return Err(Error::BadOption {
                option: "batch",
                detail: "must be at least 1".into(),
            });
        }
        for input in &self.graph.inputs {
            if let Some(b) = input.batch.filter(|&b| b != opts.batch) {
                let detail = format!(
                    "the model's batch is fixed at {b}, asked for {}",
                    opts.batch
                );
                return Err(Error::Input {
                    name: input.name.clone(),
                    detail,
                });
            }
        }
        Ok(())
    }

    /// Checks a caller's input shape against input `index` and returns its batch. The
    /// error says which dimension is wrong: rank, channels, height or width.
    pub fn check_input_shape(&self, index: usize, shape: &[usize]) -> Result<usize, Error> {
        let input = self.graph.inputs.get(index).ok_or_else(|| Error::Input {
            name: format!("#{index}"),
            detail: format!("the model has {} input(s)", self.graph.inputs.len()),
        })?;
        let mut expected = vec![input.batch.map_or("N".to_string(), |b| b.to_string())];
        expected.extend(input.dims.iter().map(|d| d.to_string()));
        let err = |what: String| Error::Input {
            name: input.name.clone(),
            detail: format!(
                "expected shape [{}], got {shape:?}: {what}",
                expected.join(", ")
            ),
        };
        if shape.len() != input.dims.len() + 1 {
            return Err(err(format!(
                "rank {} instead of {}",
                shape.len(),
                input.dims.len() + 1
            )));
        }
        const NAMES: [&str; 3] = ["channels", "height", "width"];
        for (i, (&got, &want)) in shape[1..].iter().zip(&input.dims).enumerate() {
            if got != want {
                let what = NAMES
                    .get(i)
                    .map_or(format!("dimension {}", i + 1), |n| n.to_string());
                return Err(err(format!("{what} {got} instead of {want}")));
            }
        }
        match input.batch {
            Some(b) if b != shape[0] => Err(err(format!("batch {} instead of {b}", shape[0]))),
            _ if shape[0] == 0 => Err(err("batch 0".into())),
            _ => Ok(shape[0]),
        }
    }

    /// Every node of the graph as loaded (before session passes), lowered at `batch`.
    pub fn layers(&self, batch: usize) -> Result<Vec<LayerInfo>, Error> {
        let (shapes, steps) = lower_graph(&self.graph, batch).map_err(|e| self.in_file(e))?;
        Ok(self
            .graph
            .nodes
            .iter()
            .zip(&steps)
            .map(|(node, step)| {
                let shape = shapes[step.output].clone();
                LayerInfo {
                    name: node.name.clone(),
                    op: node.op.name(),
                    inputs: node
                        .inputs
                        .iter()
                        .map(|&v| self.graph.value_name(v).to_string())
                        .collect(),
                    params: node.op.weights().iter().map(|w| w.data.len()).sum(),
                    flops: step.kernel.flops(shape.iter().product()),
                    shape,
                    precision: match &node.op {
                        crate::graph::Op::FakeQuant(p) => p.dtype.name(),
                        op if op.weights().iter().any(|w| w.quant.is_some()) => {
                            "fp32, int8 weights"
                        }
                        _ => "fp32",
                    },
                }
            })
            .collect())
    }
}
