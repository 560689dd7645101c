//! Typed reading of a node's JSON attributes. Every attribute an op does not know is an
//! error, so a misspelt `padding` cannot silently become the default.

use crate::error::GraphError;
use serde_json::{Map, Value};

/// Any integer attribute above this is refused as absurd before it reaches shape arithmetic
/// (where `h + 2 * pad` could otherwise overflow).
const MAX_ATTR: u64 = 1 << 31;

pub(crate) struct Attrs<'a> {
    node: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Attrs<'a> {
    /// Checks that every attribute present is one of `known`.
    pub(crate) fn new(
        node: &'a str,
        map: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, GraphError> {
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            let detail = if known.is_empty() {
                "this op takes no attributes".to_string()
            } else {
                format!("unknown attribute (this op takes: {})", known.join(", "))
            };
            return Err(GraphError::Attr {
                node: node.to_string(),
                attr: unknown.clone(),
                detail,
            });
        }
        Ok(Attrs { node, map })
    }

    pub(crate) fn err(&self, attr: &str, detail: impl Into<String>) -> GraphError {
        GraphError::Attr {
            node: self.node.to_string(),
            attr: attr.to_string(),
            detail: detail.into(),
        }
    }

    fn count(&self, attr: &str, v: &Value) -> Result<usize, GraphError> {
        match v.as_u64() {
            Some(n) if n <= MAX_ATTR => Ok(n as usize),
            Some(n) => Err(self.err(attr, format!("{n} is absurdly large"))),
            None => Err(self.err(attr, format!("expected a non-negative integer, got {v}"))),
        }
    }

    /// A pair like `stride`: `[a, b]` or one integer meaning `[a, a]`, as PyTorch accepts.
    pub(crate) fn pair(&self, attr: &str, default: [usize; 2]) -> Result<[usize; 2], GraphError> {
        self.pair_opt(attr).map(|p| p.unwrap_or(default))
    }

    pub(crate) fn pair_opt(&self, attr: &str) -> Result<Option<[usize; 2]>, GraphError> {
        let Some(v) = self.map.get(attr) else {
            return Ok(None);
        };
        match v {
            Value::Array(items) if items.len() == 2 => Ok(Some([
                self.count(attr, &items[0])?,
                self.count(attr, &items[1])?,
            ])),
            // PyTorch writes `stride=[]` for "same as kernel_size": the caller's default.
            Value::Array(items) if items.is_empty() => Ok(None),
            Value::Array(items) if items.len() == 1 => {
                let n = self.count(attr, &items[0])?;
                Ok(Some([n, n]))
            }
            Value::Number(_) => {
                let n = self.count(attr, v)?;
                Ok(Some([n, n]))
            }
            _ => Err(self.err(attr, format!("expected [int, int], got {v}"))),
        }
    }

    pub(crate) fn required_pair(&self, attr: &str) -> Result<[usize; 2], GraphError> {
        self.pair_opt(attr)?
            .ok_or_else(|| self.err(attr, "required attribute is missing"))
    }

    pub(crate) fn usize(&self, attr: &str, default: usize) -> Result<usize, GraphError> {
        match self.map.get(attr) {
            Some(v) => self.count(attr, v),
            None => Ok(default),
        }
    }

    /// A possibly negative dimension index.
    pub(crate) fn dim(&self, attr: &str, default: i64) -> Result<i64, GraphError> {
        match self.map.get(attr) {
            Some(v) => match v.as_i64() {
                Some(d) if d.unsigned_abs() <= 64 => Ok(d),
                _ => Err(self.err(attr, format!("expected a dimension index, got {v}"))),
            },
            None => Ok(default),
        }
    }

    /// A list of dimension indices, like `mean`'s `dims`.
    pub(crate) fn dims(&self, attr: &str) -> Result<Vec<i64>, GraphError> {
        let items = self.list(attr, "a list of dimensions")?;
        self.ints(attr, items, 64, "a dimension index")
    }

    /// A required list of non-negative integers, like `layer_norm`'s `normalized_shape`.
    pub(crate) fn counts(&self, attr: &str) -> Result<Vec<usize>, GraphError> {
        self.list(attr, "a list")?
            .iter()
            .map(|v| self.count(attr, v))
            .collect()
    }

    /// A required list of integers of either sign, like `reshape`'s `shape`.
    pub(crate) fn dims_any(&self, attr: &str) -> Result<Vec<i64>, GraphError> {
        let items = self.list(attr, "a list")?;
        self.ints(attr, items, MAX_ATTR, "an integer")
    }

    /// Each of `items` as an integer of magnitude at most `bound`; else an error saying
    /// it is not `what`.
    fn ints(
        &self,
        attr: &str,
        items: &[Value],
        bound: u64,
        what: &str,
    ) -> Result<Vec<i64>, GraphError> {
        items
            .iter()
            .map(|v| match v.as_i64() {
                Some(d) if d.unsigned_abs() <= bound => Ok(d),
                _ => Err(self.err(attr, format!("expected {what}, got {v}"))),
            })
            .collect()
    }

    /// The required attribute `attr`, any JSON value; else an error saying it is missing.
    pub(crate) fn required(&self, attr: &str) -> Result<&'a Value, GraphError> {
        self.map
            .get(attr)
            .ok_or_else(|| self.err(attr, "required attribute is missing"))
    }

    /// The required list `attr`; else an error saying it is not `what`.
    fn list(&self, attr: &str, what: &str) -> Result<&'a Vec<Value>, GraphError> {
        let v = self.required(attr)?;
        v.as_array()
            .ok_or_else(|| self.err(attr, format!("expected {what}, got {v}")))
    }

    pub(crate) fn bool(&self, attr: &str, default: bool) -> Result<bool, GraphError> {
        match self.map.get(attr) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(attr, format!("expected true or false, got {v}"))),
            None => Ok(default),
        }
    }

    pub(crate) fn f32(&self, attr: &str, default: f32) -> Result<f32, GraphError> {
        match self.map.get(attr) {
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(x as f32),
                _ => Err(self.err(attr, format!("expected a finite number, got {v}"))),
            },
            None => Ok(default),
        }
    }

    /// A required number, as the f64 the JSON holds (`fake_quant`'s scale).
    pub(crate) fn number(&self, attr: &str) -> Result<f64, GraphError> {
        let v = self.required(attr)?;
        v.as_f64()
            .ok_or_else(|| self.err(attr, format!("expected a number, got {v}")))
    }

    /// A required integer of either sign (`fake_quant`'s zero point and range).
    pub(crate) fn integer(&self, attr: &str) -> Result<i64, GraphError> {
        let v = self.required(attr)?;
        v.as_i64()
            .ok_or_else(|| self.err(attr, format!("expected an integer, got {v}")))
    }

    pub(crate) fn string(&self, attr: &str, default: &'a str) -> Result<&'a str, GraphError> {
        match self.map.get(attr) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(v) => Err(self.err(attr, format!("expected a string, got {v}"))),
            None => Ok(default),
        }
    }
}
