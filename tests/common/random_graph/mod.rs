//! Random valid graphs over every op of GRAPH_FORMAT.md, for the property tests
//! (`tests/random_graphs.rs`). Shapes are tracked while a graph grows, with PyTorch's own
//! shape rules written out here independently of the engine's, so every graph is valid by
//! construction and the engine's inferred shapes can be checked against them.
//!
//! Sizes stay small (channels ≤ 16, spatial ≤ 20, batch 1–3) so that one graph runs on
//! the reference kernels in milliseconds; about one graph in seven is "wide" (32–40
//! channels, 3×3 stride-1 convs on 8–16² planes), the shapes for which the fast path picks
//! Winograd.
mod grow;
mod ops;

use grow::Gen;
use kestrel::{GraphDef, InputDef, Weights};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// splitmix64: tiny, seedable, and plenty for picking shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.range(0, i));
        }
    }
}

/// One weight tensor, as a state_dict holds it.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A valid graph, its weights, and what the generator knows about it.
pub struct RandomGraph {
    pub seed: u64,
    pub def: GraphDef,
    pub tensors: Vec<Tensor>,
    /// Every value's dims after the batch, by name (graph inputs and nodes).
    pub shapes: HashMap<String, Vec<usize>>,
    /// The batch to run at (the fixed batch where the inputs have one).
    pub batch: usize,
}

impl RandomGraph {
    pub fn weights(&self) -> Weights {
        weights_of(&self.tensors)
    }

    /// One input per graph input at `self.batch`, values in [-1, 1).
    pub fn inputs(&self) -> Vec<Vec<f32>> {
        let mut rng = Rng::new(self.seed ^ 0x1A9F_5EED);
        self.def
            .inputs
            .iter()
            .map(|i| {
                let len = self.batch * self.shapes[&i.name].iter().product::<usize>();
                (0..len).map(|_| rng.unit()).collect()
            })
            .collect()
    }

    /// The shape, batch first, that value `name` has when run.
    pub fn shape_of(&self, name: &str) -> Vec<usize> {
        let mut s = vec![self.batch];
        s.extend_from_slice(&self.shapes[name]);
        s
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.def).expect("a GraphDef serialises")
    }
}

pub fn weights_of(tensors: &[Tensor]) -> Weights {
    let mut w = Weights::default();
    for t in tensors {
        w.insert(&t.name, &t.shape, t.data.clone())
            .expect("generated tensors hold their shape");
    }
    w
}

/// The graph of `seed`: 1–2 inputs, 1–24 growth steps (an op, or a small block such as
/// conv → bn → relu, a residual add or a channel concat), 1–3 outputs.
pub fn random_graph(seed: u64) -> RandomGraph {
    let mut g = Gen {
        rng: Rng::new(seed),
        nodes: Vec::new(),
        vals: Vec::new(),
        tensors: Vec::new(),
        max_c: 16,
        wide: false,
    };
    g.wide = g.rng.chance(0.15);
    let fixed = g.rng.chance(0.2);
    let batch = g.rng.range(1, 3);
    let mut inputs = vec![g.input("input", None)];
    if g.rng.chance(0.15) {
        // Same dims as the first, so that adds and concats can join the two.
        let like = g.rng.chance(0.5).then(|| g.vals[0].1.clone());
        inputs.push(g.input("input_b", like));
    }
    // One graph in ten is deep: more values live at once for the planner to place.
    let steps = if g.wide {
        g.rng.range(1, 4)
    } else if g.rng.chance(0.1) {
        g.rng.range(10, 24)
    } else {
        g.rng.range(1, 10)
    };
    for _ in 0..steps {
        let last = g.vals.len() - 1;
        let src = if g.rng.chance(0.6) {
            last
        } else {
            g.rng.range(0, last)
        };
        g.grow(src);
    }
    let mut outputs = vec![g.vals.last().expect("inputs exist").0.clone()];
    if g.rng.chance(0.3) {
        let extra = g.rng.range(0, g.vals.len() - 1);
        outputs.push(g.vals[extra].0.clone());
    }
    if g.rng.chance(0.05) {
        outputs.push(outputs[0].clone());
    }
    let inputs = inputs
        .into_iter()
        .map(|name| {
            let mut shape = vec![if fixed { batch as i64 } else { -1 }];
            let dims = &g.vals.iter().find(|v| v.0 == name).expect("input").1;
            shape.extend(dims.iter().map(|&d| d as i64));
            InputDef { name, shape }
        })
        .collect();
    RandomGraph {
        seed,
        def: GraphDef {
            version: 1,
            inputs,
            nodes: g.nodes,
            outputs,
        },
        tensors: g.tensors,
        shapes: g.vals.into_iter().collect(),
        batch,
    }
}

/// PyTorch's `pooling_output_shape`: floor or ceil of the window count, and in ceil mode
/// the last window must start inside the input or its left padding.
pub fn pool_out(len: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> i64 {
    let [len, k, s, p, d] = [len, k, s, p, d].map(|v| v as i64);
    let num = len + 2 * p - d * (k - 1) - 1 + if ceil { s - 1 } else { 0 };
    let mut out = num.div_euclid(s) + 1;
    if ceil && (out - 1) * s >= len + p {
        out -= 1;
    }
    out
}

/// A pair attribute as the generator writes it (`a`, `[a]` or `[a, b]`), read back.
pub fn read_pair(v: &Value) -> [usize; 2] {
    let n = |v: &Value| v.as_u64().expect("a count") as usize;
    match v {
        Value::Array(a) => [n(&a[0]), n(&a[a.len() - 1])],
        v => [n(v); 2],
    }
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}
