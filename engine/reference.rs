//! PyTorch reference files (the exporter's `save_reference`): the inputs a model was run
//! on and the outputs PyTorch gave; and how far a session's outputs are from them, judged
//! as `kestrel compare` judges them. The command line, the Python module and the C ABI
//! all check models this way.

use crate::compare::{diff, steps, Diff, Steps};
use crate::{Error, Model, Outputs, SessionOptions};
use kestrel_loader::TensorFile;
use std::path::{Path, PathBuf};

/// A model's inputs read from a safetensors file, in graph order, with their batch size.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The file, with every tensor it holds (`output`, `layer.<node>`, …).
    pub file: TensorFile,
    /// One input per graph input, in the graph's order.
    pub inputs: Vec<Vec<f32>>,
    /// The batch size of the inputs.
    pub batch: usize,
}

impl Reference {
    /// Reads `path` and the model's inputs from it: `input` (`input.0`, `input.1`, … or the
    /// input's own name, for several inputs), each checked against the model's shape.
    pub fn load(model: &Model, path: impl AsRef<Path>) -> Result<Reference, Error> {
        let file = kestrel_loader::read_tensors(path.as_ref())?;
        Reference::from_file(model, file)
    }

    /// The model's inputs from a file already read.
    pub fn from_file(model: &Model, file: TensorFile) -> Result<Reference, Error> {
        let n = model.inputs().len();
        let mut batch = None;
        let mut inputs = Vec::with_capacity(n);
        for (i, input) in model.inputs().iter().enumerate() {
            let key = match n {
                1 => "input".to_string(),
                _ => format!("input.{i}"),
            };
            let Some((name, t)) = [key.as_str(), input.name.as_str()]
                .into_iter()
                .find_map(|k| file.tensors.get(k).map(|t| (k, t)))
            else {
                let have: Vec<&str> = file.tensors.keys().map(String::as_str).collect();
                return Err(bad(
                    &file.path,
                    format!(
                        "no tensor \"{key}\" for model input \"{}\" (the file has: {})",
                        input.name,
                        have.join(", ")
                    ),
                ));
            };
            let Some(data) = t.data.as_deref() else {
                let detail = format!("tensor \"{name}\" is {:?}, not a float type", t.dtype);
                return Err(bad(&file.path, detail));
            };
            let b = model
                .check_input_shape(i, &t.shape)
                .map_err(|e| bad(&file.path, format!("tensor \"{name}\": {e}")))?;
            if batch.is_some_and(|prev| prev != b) {
                return Err(bad(&file.path, "inputs have different batch sizes".into()));
            }
            batch = Some(b);
            inputs.push(data.to_vec());
        }
        Ok(Reference {
            file,
            inputs,
            batch: batch.unwrap_or(1),
        })
    }

    /// The inputs as `Session::run` takes them.
    pub fn slices(&self) -> Vec<&[f32]> {
        self.inputs.iter().map(Vec::as_slice).collect()
    }

    /// The float tensor `name` (`output`, `output.1`, `layer.conv1`, …), or None.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.file.tensors.get(name).and_then(|t| t.data.as_deref())
    }
}

/// How a reference file names a model's `n` outputs: `output`, or `output.0`, `output.1`, ….
pub fn output_keys(n: usize) -> Vec<String> {
    match n {
        1 => vec!["output".to_string()],
        _ => (0..n).map(|i| format!("output.{i}")).collect(),
    }
}

/// What passes: `max|out − ref| ≤ rtol · max|ref| + atol`, or for a quantized output (a
/// PT2E model's `fake_quant`), every element within `steps` quantization steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative to the reference's largest magnitude.
    pub rtol: f64,
    /// Absolute.
    pub atol: f64,
    /// Quantization steps allowed on a quantized output.
    pub steps: f64,
}

impl Tolerance {
    /// `kestrel compare`'s default for the session's precision, one step for quantized
    /// outputs.
    pub fn of(opts: &SessionOptions) -> Tolerance {
        let (rtol, atol) = opts.precision.tolerance();
        Tolerance {
            rtol,
            atol,
            steps: 1.0,
        }
    }

    /// `out` against `reference`, judged in quantization steps when `step` is given.
    pub fn judge(&self, out: &[f32], reference: &[f32], step: Option<f64>) -> Diff {
        let d = diff(out, reference, self.rtol, self.atol);
        match step {
            // The few ulp by which a dequantized value misses a whole step are allowed.
            Some(step) => Diff {
                tolerance: self.steps * step * (1.0 + 1e-5),
                ..d
            },
            None => d,
        }
    }
}

/// One output against its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputCheck {
    /// The output's name in the reference file (`output`, `output.0`, …).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The error and the tolerance it is judged by.
    pub diff: Diff,
    /// For a quantized output, the error in quantization steps.
    pub steps: Option<Steps>,
}

impl OutputCheck {
    /// Whether the output is within tolerance.
    pub fn ok(&self) -> bool {
        self.diff.ok()
    }
}

/// Every output of a run against the reference's.
pub fn check_outputs(
    model: &Model,
    reference: &Reference,
    outputs: &Outputs<'_>,
    tolerance: &Tolerance,
) -> Result<Vec<OutputCheck>, Error> {
    let keys = output_keys(outputs.len());
    let mut checks = Vec::with_capacity(keys.len());
    for (i, (name, out)) in keys.into_iter().zip(outputs.iter()).enumerate() {
        let Some(r) = reference.tensor(&name) else {
            let detail = format!("no float tensor \"{name}\" for output {i}");
            return Err(bad(&reference.file.path, detail));
        };
        let step = model.output_step(i);
        checks.push(OutputCheck {
            diff: tolerance.judge(out.data, r, step),
            steps: step.map(|s| steps(out.data, r, s)),
            shape: out.shape.to_vec(),
            name,
        });
    }
    Ok(checks)
}

/// Runs the model on the reference file's inputs with a session built from `opts` (its
/// batch taken from the file) and checks every output: what `kestrel compare` does
/// without `--per-layer`.
pub fn compare(
    model: &Model,
    path: impl AsRef<Path>,
    opts: &SessionOptions,
    tolerance: &Tolerance,
) -> Result<Vec<OutputCheck>, Error> {
    let reference = Reference::load(model, path)?;
    let mut session = model.session(&opts.clone().with_batch(reference.batch))?;
    let outputs = session.run(&reference.slices())?;
    check_outputs(model, &reference, &outputs, tolerance)
}

fn bad(path: &Path, detail: String) -> Error {
    Error::Reference {
        path: PathBuf::from(path),
        detail,
    }
}
