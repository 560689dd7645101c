//! Property tests of the validator and planner over random graphs (tests/common/
//! random_graph/): every valid graph loads, gets the shapes PyTorch's rules give, and runs
//! on every fast configuration (each ISA, 1 and 2 threads, passes on and off) within
//! tolerance of the reference kernels, layer by layer; every broken one (tests/common/
//! graph_breaks/) is an error that names the node, tensor or input at fault, never a panic.
//!
//! `KESTREL_GRAPH_SEED=n` reruns the one graph of seed n (every failure prints its seed);
//! `KESTREL_GRAPH_CASES=n` runs n graphs instead of the default.

#[path = "common/graph_breaks/mod.rs"]
mod graph_breaks;
#[path = "common/random_graph/mod.rs"]
mod random_graph;

use graph_breaks::{panic_text, KINDS};
use kestrel::compare::{ATOL, DEFAULT_RTOL};
use kestrel::{Isa, Kernels, Model, SessionOptions};
use kestrel_kernels::conv2d::{cpu::ConvAlgorithm, Conv2dParams};
use kestrel_kernels::testing::{assert_close, Tol};
use random_graph::{random_graph, read_pair, RandomGraph, Rng};
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Graphs per test in a default run: each valid one runs about ten sessions.
const DEFAULT_CASES: u64 = 500;

/// The seeds to run, and whether they are the full default set.
fn seeds() -> (Vec<u64>, bool) {
    let var = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
    };
    if let Some(seed) = var("KESTREL_GRAPH_SEED") {
        return (vec![seed], false);
    }
    let cases = var("KESTREL_GRAPH_CASES").unwrap_or(DEFAULT_CASES);
    ((0..cases).collect(), cases >= DEFAULT_CASES)
}

/// Runs `check` on every seed, catching panics, and fails once with every failing seed.
fn for_each_seed(what: &str, check: impl Fn(u64)) {
    let (seeds, _) = seeds();
    let mut failures = Vec::new();
    for &seed in &seeds {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| check(seed))) {
            failures.push(format!(
                "seed {seed} (rerun: KESTREL_GRAPH_SEED={seed}): {}",
                panic_text(&*p)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {what} failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

/// What one session computed: each step's output as the tap saw it, then the outputs of
/// another, plain run. Both come after a run on NaNs: nothing of one run may reach the
/// next (a kernel reading arena or scratch it did not write this run would show NaN).
struct Ran {
    layers: Vec<(String, Vec<usize>, Vec<f32>)>,
    outputs: Vec<(Vec<usize>, Vec<f32>)>,
}

fn run(model: &Model, opts: &SessionOptions, inputs: &[Vec<f32>]) -> Ran {
    let mut session = model
        .session(opts)
        .unwrap_or_else(|e| panic!("{opts:?}: session refused a valid graph: {e}"));
    let nans: Vec<Vec<f32>> = inputs.iter().map(|x| vec![f32::NAN; x.len()]).collect();
    let nans: Vec<&[f32]> = nans.iter().map(Vec::as_slice).collect();
    session
        .run(&nans)
        .unwrap_or_else(|e| panic!("{opts:?}: run on NaNs: {e}"));
    let inputs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut layers = Vec::new();
    session
        .run_with(&inputs, |name, t| {
            layers.push((name.to_string(), t.shape.to_vec(), t.data.to_vec()))
        })
        .unwrap_or_else(|e| panic!("{opts:?}: run_with: {e}"));
    let out = session
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{opts:?}: run: {e}"));
    let outputs = out
        .iter()
        .map(|t| (t.shape.to_vec(), t.data.to_vec()))
        .collect();
    Ran { layers, outputs }
}

fn opts(g: &RandomGraph, kernels: Kernels, optimize: bool, threads: usize) -> SessionOptions {
    SessionOptions::default()
        .with_batch(g.batch)
        .with_kernels(kernels)
        .with_optimize(optimize)
        .with_threads(threads)
}

/// `max|got − want| ≤ DEFAULT_RTOL · max|want| + ATOL`: the documented tolerance, which also
/// covers Winograd F(4×4, 3×3) (its transforms scale f32 rounding by up to ~40, 1e-4 of
/// max|ref| per layer; kernels/tests/conv2d_case/mod.rs).
const TOL: Tol = Tol::max(DEFAULT_RTOL, ATOL);

/// `fast` against the oracle: every output, and every layer both report (a step fused by
/// the passes reports under the last node it absorbed, whose value it computes).
fn assert_matches(config: &str, fast: &Ran, oracle: &Ran, every_layer: bool) {
    let by_name: HashMap<&str, (&Vec<usize>, &Vec<f32>)> = oracle
        .layers
        .iter()
        .map(|(n, s, d)| (n.as_str(), (s, d)))
        .collect();
    for (name, shape, data) in &fast.layers {
        let Some((want_shape, want)) = by_name.get(name.as_str()) else {
            assert!(!every_layer, "{config}: layer {name} is not the oracle's");
            continue;
        };
        assert_eq!(shape, *want_shape, "{config}: layer {name} shape");
        assert_close(data, want, TOL, &format!("{config}: layer {name}"));
    }
    if every_layer {
        assert_eq!(
            fast.layers.len(),
            oracle.layers.len(),
            "{config}: layer count"
        );
    }
    assert_eq!(
        fast.outputs.len(),
        oracle.outputs.len(),
        "{config}: outputs"
    );
    for (k, (got, want)) in fast.outputs.iter().zip(&oracle.outputs).enumerate() {
        assert_eq!(got.0, want.0, "{config}: output {k} shape");
        assert_close(&got.1, &want.1, TOL, &format!("{config}: output {k}"));
    }
}

/// One valid graph: it loads, every node's shape is the generator's, and every fast
/// configuration matches the reference kernels with the passes off (every node computed
/// as the file says, f64 sums: the oracle).
fn check_valid(seed: u64) {
    let g = random_graph(seed);
    let graph = format!("\n  graph: {}", g.json());
    let fail = |what: String| -> ! { panic!("{what}{graph}") };
    let model = Model::from_parts(&g.def, &g.weights())
        .unwrap_or_else(|e| fail(format!("valid graph refused: {e}")));
    let layers = model
        .layers(g.batch)
        .unwrap_or_else(|e| fail(format!("layers: {e}")));
    for l in &layers {
        if l.shape != g.shape_of(&l.name) {
            fail(format!(
                "node {} ({}): engine shape {:?}, PyTorch's rules give {:?}",
                l.name,
                l.op,
                l.shape,
                g.shape_of(&l.name)
            ));
        }
    }
    let inputs = g.inputs();
    let checked = catch_unwind(AssertUnwindSafe(|| {
        let oracle = run(&model, &opts(&g, Kernels::Reference, false, 1), &inputs);
        for (out, name) in oracle.outputs.iter().zip(&g.def.outputs) {
            assert_eq!(out.0, g.shape_of(name), "output {name} shape");
        }
        let mut configs = vec![opts(&g, Kernels::Reference, true, 1)];
        for optimize in [false, true] {
            for threads in [1, 2] {
                configs.push(opts(&g, Kernels::Auto, optimize, threads));
            }
        }
        for isa in Isa::available() {
            configs.push(opts(
                &g,
                Kernels::Isa(isa),
                seed.is_multiple_of(2),
                1 + seed as usize % 2,
            ));
        }
        for c in &configs {
            let label = format!(
                "{:?} optimize {} threads {}",
                c.kernels, c.optimize, c.threads
            );
            assert_matches(&label, &run(&model, c, &inputs), &oracle, !c.optimize);
        }
        check_node_order(&g, &inputs, &oracle);
        check_file_round_trip(&g, &model, &inputs);
    }));
    if let Err(p) = checked {
        fail(panic_text(&*p));
    }
}

/// A reader sorts the nodes itself: the same nodes in any order compute the same values.
fn check_node_order(g: &RandomGraph, inputs: &[Vec<f32>], oracle: &Ran) {
    let mut def = g.def.clone();
    Rng::new(g.seed ^ 0x5_4FF1E5).shuffle(&mut def.nodes);
    let model = Model::from_parts(&def, &g.weights())
        .unwrap_or_else(|e| panic!("nodes out of order: refused: {e}"));
    let ran = run(&model, &opts(g, Kernels::Reference, false, 1), inputs);
    assert!(
        same_bits(&ran, oracle),
        "nodes out of order: outputs differ from the file's order"
    );
}

/// The graph and weights written as one model file and read back run bit for bit as the
/// graph built in code.
fn check_file_round_trip(g: &RandomGraph, model: &Model, inputs: &[Vec<f32>]) {
    let tensors: Vec<(&str, &[usize], &[f32])> = g
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), &t.shape[..], &t.data[..]))
        .collect();
    let bytes = kestrel_loader::testfile::model_file(&g.json(), &tensors);
    let loaded = Model::from_bytes("random.safetensors", &bytes)
        .unwrap_or_else(|e| panic!("model file: refused: {e}"));
    let o = opts(g, Kernels::Auto, true, 1);
    let (a, b) = (run(model, &o, inputs), run(&loaded, &o, inputs));
    assert!(
        same_bits(&a, &b),
        "model file: outputs differ from the graph built in code"
    );
}

/// Outputs equal bit for bit. Not `==`: a max-pool window that lies wholly in the padding
/// is -inf, as in PyTorch, and a conv after it makes NaN, which `==` never matches.
fn same_bits(a: &Ran, b: &Ran) -> bool {
    let bits = |r: &Ran| -> Vec<(Vec<usize>, Vec<u32>)> {
        r.outputs
            .iter()
            .map(|(s, d)| (s.clone(), d.iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    bits(a) == bits(b)
}

#[test]
fn random_valid_graphs_match_the_reference_kernels() {
    for_each_seed("valid graphs", check_valid);
    // What the run covered, for `--nocapture`.
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    let mut convs: BTreeMap<String, usize> = BTreeMap::new();
    let (seeds, _) = seeds();
    for &seed in &seeds {
        let g = random_graph(seed);
        for node in &g.def.nodes {
            *ops.entry(node.op.clone()).or_default() += 1;
            if node.op == "conv2d" {
                *convs
                    .entry(format!("{:?}", conv_path(&g, node)))
                    .or_default() += 1;
            }
        }
    }
    println!("{} valid graphs; nodes by op: {ops:?}", seeds.len());
    println!("convs by the CPU path their shape selects: {convs:?}");
}

/// The CPU conv algorithm a conv's shape selects, by the engine's rule
/// (`ConvAlgorithm::choose`).
fn conv_path(g: &RandomGraph, node: &kestrel::NodeDef) -> ConvAlgorithm {
    let pair = |key: &str, default| node.attrs.get(key).map_or(default, read_pair);
    let groups = node
        .attrs
        .get("groups")
        .map_or(1, |v| v.as_u64().expect("count") as usize);
    // x: (c_in, h, w)  weight: (c_out, c_in/groups, kh, kw)
    let x = &g.shapes[&node.inputs[0]];
    let weight = &g
        .tensors
        .iter()
        .find(|t| t.name == node.weights["weight"])
        .expect("weight")
        .shape;
    let p = Conv2dParams {
        n: 1,
        c_in: x[0],
        h: x[1],
        w: x[2],
        c_out: weight[0],
        kh: weight[2],
        kw: weight[3],
        stride: pair("stride", [1, 1]),
        pad: pair("padding", [0, 0]),
        dilation: pair("dilation", [1, 1]),
        groups,
    };
    ConvAlgorithm::choose(&p, false)
}

#[test]
fn random_broken_graphs_are_refused_naming_the_culprit() {
    let (seeds, full) = seeds();
    let mut tried: BTreeMap<&str, usize> = KINDS.iter().map(|(k, _)| (*k, 0)).collect();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let g = random_graph(seed);
        let mut rng = Rng::new(seed ^ 0xB40C_E5ED);
        for (kind, make) in KINDS {
            let Some(b) = make(&g, &mut rng) else {
                continue;
            };
            *tried.get_mut(kind).expect("listed") += 1;
            if let Some(why) = graph_breaks::check(&b) {
                failures.push(format!(
                    "seed {seed} (rerun: KESTREL_GRAPH_SEED={seed}), {kind}: {}: {why}\n  graph: {}",
                    b.what,
                    serde_json::to_string(&b.def).expect("serialises")
                ));
            }
        }
    }
    let total: usize = tried.values().sum();
    println!(
        "{total} broken graphs from {} seeds: {tried:?}",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} broken graphs were not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if full {
        let never: Vec<&&str> = tried
            .iter()
            .filter(|(_, &n)| n == 0)
            .map(|(k, _)| k)
            .collect();
        assert!(never.is_empty(), "kinds no graph could exercise: {never:?}");
    }
}

/// The first node a reader cannot sort may only read a cycle's output: the error must
/// name a node on the cycle (here a or b), not the first one left over in file order.
#[test]
fn a_cycle_is_reported_at_a_node_on_it_in_any_order() {
    let node = |name: &str, input: &str| kestrel::NodeDef {
        name: name.into(),
        op: "relu".into(),
        inputs: vec![input.into()],
        weights: Default::default(),
        attrs: Default::default(),
    };
    let def = kestrel::GraphDef {
        version: 1,
        inputs: vec![kestrel::InputDef {
            name: "x".into(),
            shape: vec![-1, 2],
        }],
        nodes: vec![node("after", "b"), node("a", "b"), node("b", "a")],
        outputs: vec!["after".into()],
    };
    let e = Model::from_parts(&def, &kestrel::Weights::default()).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("cycle") && !e.contains("\"after\""), "{e}");
}
