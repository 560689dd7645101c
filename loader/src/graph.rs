//! The graph JSON of `GRAPH_FORMAT.md`: its serde structs and a structural parser.
//!
//! [`parse_graph`] checks structure only: well-formed JSON without repeated keys, an
//! object, `version == 1`, field presence and types, no unknown fields, and input shapes.
//! Op names, attributes, references between nodes, cycles and weight shapes are checked by
//! the engine, which knows the ops.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::json::{self, describe, JsonError};
use crate::GraphJsonError;

/// The newest graph JSON version this build reads (from [`MIN_GRAPH_VERSION`] on), and the
/// one a graph built in code says. Version 2 adds activations and broadcasting binary ops,
/// version 3 layout ops, layer norm, resizing and transposed convs, version 4 quantization
/// (GRAPH_FORMAT.md).
pub const GRAPH_VERSION: u32 = 4;
/// The oldest graph JSON version this build reads.
pub const MIN_GRAPH_VERSION: u32 = 1;
/// The `__metadata__` key holding the graph JSON.
pub const GRAPH_KEY: &str = "kestrel.graph";
/// Most dimensions an input may have.
pub const MAX_INPUT_RANK: usize = 8;
/// Most elements one input may hold, counting a dynamic batch as 1: 2^31 − 1 (8 GiB of
/// f32), far above any real CNN input and small enough for 32-bit GPU index arithmetic.
pub const MAX_INPUT_ELEMENTS: u64 = i32::MAX as u64;

/// A whole graph: inputs, nodes in topological order, outputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDef {
    /// The schema version; this build reads `MIN_GRAPH_VERSION..=GRAPH_VERSION`.
    pub version: u32,
    /// The graph's inputs, in the order `run` takes them.
    pub inputs: Vec<InputDef>,
    /// The nodes, in topological order.
    pub nodes: Vec<NodeDef>,
    /// The names of the values the graph returns, in order.
    pub outputs: Vec<String>,
}

/// A graph input; `shape` is NCHW, with `-1` allowed as dimension 0 for a dynamic batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    /// The input's name, which nodes use to refer to it.
    pub name: String,
    /// NCHW; dimension 0 may be `-1` for a dynamic batch.
    pub shape: Vec<i64>,
}

/// One node: its output is named by `name`; `weights` maps weight roles to tensor names.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// The node's name, which is also the name of its output.
    pub name: String,
    /// The op, one of those `GRAPH_FORMAT.md` lists.
    pub op: String,
    /// The names of the values it reads: graph inputs or earlier nodes.
    pub inputs: Vec<String>,
    /// Weight role (such as `weight`, `bias`) to tensor name in the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, String>,
    /// The op's attributes, as `GRAPH_FORMAT.md` gives them per op.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attrs: Map<String, Value>,
}

const GRAPH_FIELDS: &str = "version, inputs, nodes, outputs";
const INPUT_FIELDS: &str = "name, shape";
const NODE_FIELDS: &str = "name, op, inputs, weights, attrs";

/// Parses and structurally checks a graph JSON string (see `GRAPH_FORMAT.md`).
pub fn parse_graph(json: &str) -> Result<GraphDef, GraphJsonError> {
    let value = json::parse_unique(json).map_err(|e| match e {
        JsonError::DuplicateKey(key) => GraphJsonError::DuplicateKey { key },
        JsonError::Syntax(e) => GraphJsonError::Malformed {
            line: e.line(),
            column: e.column(),
            detail: json::message_without_position(&e),
        },
    })?;
    let Value::Object(top) = value else {
        return Err(GraphJsonError::NotAnObject {
            found: describe(&value),
        });
    };
    // Version first: a newer file may have fields this build does not know.
    let version = field(&top, "", "version")?;
    let version = version
        .as_u64()
        .ok_or_else(|| wrong("version", "a non-negative integer", version))?;
    if !(u64::from(MIN_GRAPH_VERSION)..=u64::from(GRAPH_VERSION)).contains(&version) {
        return Err(GraphJsonError::UnknownVersion { found: version });
    }
    known_fields(&top, "", GRAPH_FIELDS)?;

    let inputs = array(field(&top, "", "inputs")?, "inputs")?
        .iter()
        .enumerate()
        .map(|(i, v)| parse_input(v, &format!("inputs[{i}]")))
        .collect::<Result<_, _>>()?;
    let nodes = array(field(&top, "", "nodes")?, "nodes")?
        .iter()
        .enumerate()
        .map(|(i, v)| parse_node(v, &format!("nodes[{i}]")))
        .collect::<Result<_, _>>()?;
    let outputs = strings(field(&top, "", "outputs")?, "outputs")?;
    Ok(GraphDef {
        version: version as u32,
        inputs,
        nodes,
        outputs,
    })
}

fn parse_input(v: &Value, at: &str) -> Result<InputDef, GraphJsonError> {
    let obj = object(v, at)?;
    known_fields(obj, at, INPUT_FIELDS)?;
    let name = string(field(obj, at, "name")?, &join(at, "name"))?;
    let shape_at = join(at, "shape");
    let shape: Vec<i64> = array(field(obj, at, "shape")?, &shape_at)?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_i64()
                .ok_or_else(|| wrong(&format!("{shape_at}[{i}]"), "an integer", d))
        })
        .collect::<Result<_, _>>()?;
    check_input_shape(&shape).map_err(|why| GraphJsonError::BadInputShape {
        input: name.clone(),
        shape: shape.clone(),
        why,
    })?;
    Ok(InputDef { name, shape })
}

/// `-1` (dynamic batch) only in dimension 0; every other dimension in 1..=2^31 − 1; at most
/// [`MAX_INPUT_RANK`] dimensions and [`MAX_INPUT_ELEMENTS`] elements per batch item.
fn check_input_shape(shape: &[i64]) -> Result<(), String> {
    if shape.is_empty() {
        return Err("an input needs at least the batch dimension".to_string());
    }
    if shape.len() > MAX_INPUT_RANK {
        return Err(format!(
            "{} dimensions, more than {MAX_INPUT_RANK}",
            shape.len()
        ));
    }
    let mut elements: Option<u64> = Some(1);
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if i == 0 => continue,
            -1 => {
                return Err(format!(
                    "-1 (the dynamic batch) is allowed only in dimension 0, not in dimension {i}"
                ))
            }
            d if d < 1 => {
                return Err(format!(
                    "dimension {i} is {d}; fixed dimensions must be at least 1"
                ))
            }
            d => elements = elements.and_then(|n| n.checked_mul(d as u64)),
        }
    }
    match elements {
        Some(n) if n <= MAX_INPUT_ELEMENTS => Ok(()),
        _ => Err(format!(
            "more than {MAX_INPUT_ELEMENTS} elements per batch item"
        )),
    }
}

fn parse_node(v: &Value, at: &str) -> Result<NodeDef, GraphJsonError> {
    let obj = object(v, at)?;
    known_fields(obj, at, NODE_FIELDS)?;
    let name = string(field(obj, at, "name")?, &join(at, "name"))?;
    let op = string(field(obj, at, "op")?, &join(at, "op"))?;
    let inputs = strings(field(obj, at, "inputs")?, &join(at, "inputs"))?;
    let weights = match obj.get("weights") {
        None => BTreeMap::new(),
        Some(w) => {
            let w_at = join(at, "weights");
            object(w, &w_at)?
                .iter()
                .map(|(role, t)| Ok((role.clone(), string(t, &format!("{w_at}.{role}"))?)))
                .collect::<Result<_, _>>()?
        }
    };
    let attrs = match obj.get("attrs") {
        None => Map::new(),
        Some(a) => object(a, &join(at, "attrs"))?.clone(),
    };
    Ok(NodeDef {
        name,
        op,
        inputs,
        weights,
        attrs,
    })
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn wrong(field: &str, expected: &'static str, found: &Value) -> GraphJsonError {
    GraphJsonError::WrongType {
        field: field.to_string(),
        expected,
        found: describe(found),
    }
}

fn field<'a>(
    obj: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'a Value, GraphJsonError> {
    obj.get(key).ok_or_else(|| GraphJsonError::MissingField {
        field: join(at, key),
    })
}

fn known_fields(
    obj: &Map<String, Value>,
    at: &str,
    allowed: &'static str,
) -> Result<(), GraphJsonError> {
    match obj
        .keys()
        .find(|k| !allowed.split(", ").any(|a| a == k.as_str()))
    {
        Some(k) => Err(GraphJsonError::UnknownField {
            field: join(at, k),
            allowed,
        }),
        None => Ok(()),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, GraphJsonError> {
    v.as_object().ok_or_else(|| wrong(at, "an object", v))
}

fn array<'a>(v: &'a Value, at: &str) -> Result<&'a Vec<Value>, GraphJsonError> {
    v.as_array().ok_or_else(|| wrong(at, "an array", v))
}

fn string(v: &Value, at: &str) -> Result<String, GraphJsonError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong(at, "a string", v))
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, GraphJsonError> {
    array(v, at)?
        .iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{at}[{i}]")))
        .collect()
}
