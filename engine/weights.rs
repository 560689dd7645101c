//! Named weight tensors, as loaded from a file or handed over by a program.

use crate::error::Error;
use crate::graph::{Weight, WeightRef};
use kestrel_loader::TensorFile;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Weights by name: float tensors as f32, and the names and dtypes of the rest (a
/// state_dict's `num_batches_tracked` is I64), so an op that names one gets a clear error.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    float: BTreeMap<String, WeightRef>,
    other: BTreeMap<String, String>,
    /// I8 tensors (quantized weights) and I32 ones (their zero points): shape and values.
    ints: BTreeMap<String, IntTensor>,
}

/// An integer tensor of a model file: its dtype, shape and values.
#[derive(Debug, Clone)]
pub(crate) struct IntTensor {
    pub dtype: kestrel_loader::Dtype,
    pub shape: Vec<usize>,
    pub values: Arc<[i32]>,
}

impl Weights {
    /// Loads every tensor of a safetensors file, such as a plain PyTorch `state_dict`.
    pub fn load(path: impl AsRef<Path>) -> Result<Weights, Error> {
        let file = kestrel_loader::read_tensors(path.as_ref())?;
        Ok(Weights::from_file(file))
    }

    pub(crate) fn from_file(file: TensorFile) -> Weights {
        let mut weights = Weights::default();
        for (name, t) in file.tensors {
            match t.data {
                Some(data) => {
                    let w = Weight {
                        name: name.clone(),
                        shape: t.shape,
                        data,
                        quant: None,
                    };
                    weights.float.insert(name, Arc::new(w));
                }
                None => {
                    if let Some(values) = t.ints {
                        let int = IntTensor {
                            dtype: t.dtype,
                            shape: t.shape,
                            values: values.into(),
                        };
                        weights.ints.insert(name.clone(), int);
                    }
                    weights.other.insert(name, format!("{:?}", t.dtype));
                }
            }
        }
        weights
    }

    /// Adds or replaces one f32 tensor; the data's length must match the shape.
    pub fn insert(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<(), Error> {
        let elems = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elems != Some(data.len()) {
            return Err(Error::Weight {
                name: name.to_string(),
                detail: format!("shape {shape:?} does not hold {} values", data.len()),
            });
        }
        self.other.remove(name);
        self.ints.remove(name);
        let w = Weight {
            name: name.to_string(),
            shape: shape.to_vec(),
            data: data.into(),
            quant: None,
        };
        self.float.insert(name.to_string(), Arc::new(w));
        Ok(())
    }

    /// The float tensor named `name`, if the file held one.
    pub fn get(&self, name: &str) -> Option<&WeightRef> {
        self.float.get(name)
    }

    /// The integer tensor named `name` (I8, U8 or I32), if the file held one.
    pub(crate) fn int(&self, name: &str) -> Option<&IntTensor> {
        self.ints.get(name)
    }

    /// The dtype of a tensor that is present but not float, if `name` is one.
    pub fn non_float_dtype(&self, name: &str) -> Option<&str> {
        self.other.get(name).map(String::as_str)
    }

    /// Names of the float tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.float.keys().map(String::as_str)
    }

    /// The number of float tensors.
    pub fn len(&self) -> usize {
        self.float.len()
    }

    /// Whether there are no float tensors.
    pub fn is_empty(&self) -> bool {
        self.float.is_empty()
    }
}
