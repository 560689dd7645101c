//! Ways to break a valid random graph (`random_graph/`), one function per kind, and the
//! check that a broken graph is refused as it must be. Each kind returns the broken
//! graph, where the error is due (load, session build, or run) and the names the error
//! must quote: the node, tensor or input at fault. A kind that does not apply to the graph
//! at hand (no conv to break, say) returns None.

mod attrs;
mod runtime;
mod shapes;
mod structure;
mod weights;

use crate::random_graph::{weights_of, RandomGraph, Rng, Tensor};
use kestrel::{GraphDef, Model, NodeDef, SessionOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A broken graph and the error it must give.
pub struct Broken {
    pub what: String,
    pub def: GraphDef,
    pub tensors: Vec<Tensor>,
    pub stage: Stage,
    /// The error's text must contain every one of these...
    pub culprits: Vec<String>,
    /// ...and, when not empty, at least one of these (the nodes of a cycle).
    pub one_of: Vec<String>,
}

/// Where the error is due. A graph that is valid until the session or the run must load.
pub enum Stage {
    Load,
    Session(SessionOptions),
    /// A session with these options, run on inputs of these lengths.
    Run(SessionOptions, Vec<usize>),
}

pub type Make = fn(&RandomGraph, &mut Rng) -> Option<Broken>;

/// Every kind of breakage, by name.
pub const KINDS: &[(&str, Make)] = &[
    ("input naming an unknown value", structure::unknown_input),
    ("output naming nothing", structure::unknown_output),
    ("no outputs", structure::no_outputs),
    ("no inputs", structure::no_inputs),
    ("unsupported version", structure::version),
    ("cycle", structure::cycle),
    ("node reading itself", structure::self_loop),
    ("duplicate name", structure::duplicate_name),
    ("bad input shape", structure::bad_input_shape),
    ("unknown op", structure::unknown_op),
    ("wrong number of inputs", structure::wrong_arity),
    ("unknown attribute", attrs::unknown_attr),
    ("attribute of the wrong type", attrs::wrong_attr_type),
    ("attribute value PyTorch refuses", attrs::bad_attr_value),
    ("required attribute missing", attrs::missing_attr),
    ("tensor missing from the weights", weights::missing_tensor),
    ("weight naming a misspelt tensor", weights::misnamed_tensor),
    ("required weight not given", weights::missing_role),
    ("weight role the op has not", weights::unexpected_role),
    ("weight of the wrong shape", weights::wrong_weight_shape),
    ("weight naming another node's tensor", weights::other_tensor),
    ("add of unequal shapes", shapes::add_unequal),
    ("concat of mismatched dims", shapes::concat_mismatch),
    ("NCHW op on a value of another rank", shapes::wrong_rank),
    ("conv input channels", shapes::conv_channels),
    ("linear in_features", shapes::linear_in_features),
    ("flatten of the batch dimension", shapes::flatten_batch),
    (
        "pool window larger than the padded input",
        shapes::pool_too_big,
    ),
    (
        "conv kernel larger than the padded input",
        shapes::conv_too_big,
    ),
    (
        "session batch other than the fixed one",
        runtime::fixed_batch_mismatch,
    ),
    ("session batch or threads 0", runtime::zero_session),
    ("absurd session batch", runtime::absurd_batch),
    ("run input of the wrong length", runtime::wrong_input_len),
];

fn q(name: &str) -> String {
    format!("\"{name}\"")
}

fn broken(g: &RandomGraph, what: impl Into<String>) -> Broken {
    Broken {
        what: what.into(),
        def: g.def.clone(),
        tensors: g.tensors.clone(),
        stage: Stage::Load,
        culprits: Vec::new(),
        one_of: Vec::new(),
    }
}

/// A random node (its index) for which `keep` holds.
fn pick_node(g: &RandomGraph, rng: &mut Rng, keep: impl Fn(&NodeDef) -> bool) -> Option<usize> {
    let found: Vec<usize> = (0..g.def.nodes.len())
        .filter(|&i| keep(&g.def.nodes[i]))
        .collect();
    (!found.is_empty()).then(|| *rng.pick(&found))
}

fn is_op(ops: &'static [&'static str]) -> impl Fn(&NodeDef) -> bool {
    move |n| ops.contains(&n.op.as_str())
}

/// Values defined before node `i` in the file (graph inputs, then earlier nodes): reading
/// one of them cannot make a cycle. With their dims after the batch.
fn earlier(g: &RandomGraph, i: usize) -> Vec<(String, Vec<usize>)> {
    let inputs = g.def.inputs.iter().map(|x| &x.name);
    let nodes = g.def.nodes[..i].iter().map(|n| &n.name);
    inputs
        .chain(nodes)
        .map(|name| (name.clone(), g.shapes[name].clone()))
        .collect()
}

fn dims_of<'a>(g: &'a RandomGraph, name: &str) -> &'a [usize] {
    &g.shapes[name]
}

fn session_at_batch(g: &RandomGraph) -> SessionOptions {
    SessionOptions::default().with_batch(g.batch)
}

/// What happened to a broken graph.
enum Outcome {
    Refused(String),
    Accepted,
    /// Refused, but before the stage where its fault lies (a valid graph refused at load).
    TooEarly(String),
}

fn attempt(b: &Broken) -> Outcome {
    let model = match Model::from_parts(&b.def, &weights_of(&b.tensors)) {
        Ok(model) => model,
        Err(e) if matches!(b.stage, Stage::Load) => return Outcome::Refused(e.to_string()),
        Err(e) => return Outcome::TooEarly(e.to_string()),
    };
    let (opts, lens) = match &b.stage {
        Stage::Load => {
            // Say whether the session would have caught it, at least.
            let batch = b.def.inputs[0].shape[0].max(1) as usize;
            let opts = SessionOptions::default().with_batch(batch);
            return match model.session(&opts) {
                Ok(_) => Outcome::Accepted,
                Err(e) => Outcome::TooEarly(format!("load accepted it, the session refused: {e}")),
            };
        }
        Stage::Session(opts) => {
            return match model.session(opts) {
                Ok(_) => Outcome::Accepted,
                Err(e) => Outcome::Refused(e.to_string()),
            }
        }
        Stage::Run(opts, lens) => (opts, lens),
    };
    let mut session = match model.session(opts) {
        Ok(s) => s,
        Err(e) => return Outcome::TooEarly(e.to_string()),
    };
    let data: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.5; n]).collect();
    let inputs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
    match session.run(&inputs) {
        Ok(_) => Outcome::Accepted,
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// None if `b` is refused with an error naming its culprits; else what went wrong. A graph
/// broken at load is also written as a model file: read back, it must be refused naming
/// the same culprits, and the file.
pub fn check(b: &Broken) -> Option<String> {
    let msg = match catch_unwind(AssertUnwindSafe(|| attempt(b))) {
        Err(p) => return Some(format!("panicked: {}", panic_text(&*p))),
        Ok(Outcome::Accepted) => return Some("accepted".into()),
        Ok(Outcome::TooEarly(e)) => return Some(format!("refused too early: {e}")),
        Ok(Outcome::Refused(msg)) => msg,
    };
    if let Some(why) = names_culprits(b, &msg, &[]) {
        return Some(why);
    }
    if !matches!(b.stage, Stage::Load) {
        return None;
    }
    let file = "broken.safetensors";
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        let json = serde_json::to_string(&b.def).expect("serialises");
        let tensors: Vec<(&str, &[usize], &[f32])> = b
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), &t.shape[..], &t.data[..]))
            .collect();
        let bytes = kestrel_loader::testfile::model_file(&json, &tensors);
        Model::from_bytes(file, &bytes).map(|_| ())
    }));
    match loaded {
        Err(p) => Some(format!("as a file: panicked: {}", panic_text(&*p))),
        Ok(Ok(())) => Some("as a file: accepted".into()),
        Ok(Err(e)) => {
            names_culprits(b, &e.to_string(), &[file]).map(|why| format!("as a file: {why}"))
        }
    }
}

/// None if `msg` contains every culprit of `b` and `also`, and one of `b.one_of` if any.
fn names_culprits(b: &Broken, msg: &str, also: &[&str]) -> Option<String> {
    let all = b
        .culprits
        .iter()
        .map(String::as_str)
        .chain(also.iter().copied());
    let missing: Vec<&str> = all.filter(|c| !msg.contains(c)).collect();
    if !missing.is_empty() {
        return Some(format!("the error does not name {missing:?}: {msg}"));
    }
    if !b.one_of.is_empty() && !b.one_of.iter().any(|c| msg.contains(c)) {
        return Some(format!("the error names none of {:?}: {msg}", b.one_of));
    }
    None
}

/// The message a caught panic carries.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}
