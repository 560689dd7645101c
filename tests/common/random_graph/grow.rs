//! The graph as it grows: values with their dims, nodes appended in topological order, and
//! the blocks of several nodes (conv → bn → relu, residual adds, channel concats).

use super::{obj, Rng, Tensor};
use kestrel::NodeDef;
use serde_json::{json, Map, Value};

/// The graph as it grows: nodes in topological order, every value with its dims.
pub(super) struct Gen {
    pub(super) rng: Rng,
    pub(super) nodes: Vec<NodeDef>,
    /// (name, dims after the batch), inputs first.
    pub(super) vals: Vec<(String, Vec<usize>)>,
    pub(super) tensors: Vec<Tensor>,
    pub(super) max_c: usize,
    pub(super) wide: bool,
}

impl Gen {
    pub(super) fn input(&mut self, name: &str, like: Option<Vec<usize>>) -> String {
        let dims = like.unwrap_or_else(|| {
            if self.wide {
                let c = self.rng.range(32, 40);
                vec![c, self.rng.range(8, 16), self.rng.range(8, 16)]
            } else {
                let c = *self.rng.pick(&[1, 2, 3, 3, 4, 5, 8, 16]);
                vec![c, self.rng.range(1, 20), self.rng.range(1, 20)]
            }
        });
        self.vals.push((name.to_string(), dims));
        name.to_string()
    }

    /// Appends a node; its weights are (role, shape, fan_in) and get random data.
    pub(super) fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Map<String, Value>,
        weights: &[(&str, Vec<usize>, usize)],
        shape: Vec<usize>,
    ) -> String {
        let name = format!("{op}_{}", self.nodes.len());
        let mut roles = std::collections::BTreeMap::new();
        for (role, wshape, fan_in) in weights {
            let tensor = format!("{name}.{role}");
            let data = self.weight_data(role, wshape, *fan_in);
            self.tensors.push(Tensor {
                name: tensor.clone(),
                shape: wshape.clone(),
                data,
            });
            roles.insert(role.to_string(), tensor);
        }
        self.nodes.push(NodeDef {
            name: name.clone(),
            op: op.to_string(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            weights: roles,
            attrs,
        });
        self.vals.push((name.clone(), shape));
        name
    }

    /// Weights of order 1/sqrt(fan_in), so activations stay of order 1 through a chain;
    /// batch-norm variances in [0.5, 2] and scales in [0.5, 1.5], as trained nets have.
    pub(super) fn weight_data(&mut self, role: &str, shape: &[usize], fan_in: usize) -> Vec<f32> {
        let n: usize = shape.iter().product();
        let scale = (3.0 / fan_in.max(1) as f32).sqrt();
        (0..n)
            .map(|_| {
                let u = self.rng.unit();
                match role {
                    "running_var" => 1.25 + 0.75 * u,
                    "weight" if fan_in == 0 => 1.0 + 0.5 * u,
                    "running_mean" | "bias" => 0.5 * u,
                    _ => u * scale,
                }
            })
            .collect()
    }

    pub(super) fn dims(&self, v: usize) -> (String, Vec<usize>) {
        self.vals[v].clone()
    }

    /// One growth step from value `src`: an op or a small block the value's rank allows.
    pub(super) fn grow(&mut self, src: usize) {
        let (_, dims) = self.dims(src);
        if dims.len() == 3 {
            match self.rng.range(0, 21) {
                0..=4 => self.conv(src),
                5..=6 => self.conv_bn_relu(src),
                7 => self.batch_norm(src),
                8..=9 => self.pool(src, true),
                10..=11 => self.pool(src, false),
                12 => self.adaptive(src),
                13 => self.mean(src),
                14 => self.flatten(src),
                15..=16 => self.residual(src),
                17..=18 => self.concat_branch(src),
                19 => self.softmax(src),
                20 => self.linear(src),
                _ => self.simple(src),
            }
        } else {
            match self.rng.range(0, 9) {
                0 => self.batch_norm(src),
                1..=2 => self.linear(src),
                3 => self.softmax(src),
                4 => self.flatten(src),
                5 => self.residual(src),
                6 => self.concat_self(src),
                _ => self.simple(src),
            }
        }
    }

    /// relu, relu6, identity, dropout, concat of the value with itself, or an add with
    /// another value of the same shape.
    pub(super) fn simple(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        match self.rng.range(0, 5) {
            4 => self.concat_self(src),
            5 => self.add_existing(src),
            k => {
                let op = ["relu", "relu6", "identity", "dropout"][k];
                // Dropout's probability is meaningless at inference, and allowed.
                let attrs = match op == "dropout" && self.rng.chance(0.5) {
                    true => obj(json!({"p": 0.5})),
                    false => Map::new(),
                };
                self.node(op, &[&x], attrs, &[], dims);
            }
        }
    }

    /// conv → batch_norm [→ relu | relu6]: what the session's passes fold and fuse.
    pub(super) fn conv_bn_relu(&mut self, src: usize) {
        self.conv(src);
        let conv = self.vals.len() - 1;
        self.batch_norm_node(conv);
        let bn = self.vals.len() - 1;
        let (y, dims) = self.dims(bn);
        match self.rng.range(0, 2) {
            0 => self.node("relu", &[&y], Map::new(), &[], dims),
            1 => self.node("relu6", &[&y], Map::new(), &[], dims),
            _ => y,
        };
    }

    /// A branch of the same shape (a "same" conv [→ bn] [→ relu], or a linear to the same
    /// width) added to its source in either order, [→ relu].
    pub(super) fn residual(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let width = *dims.last().expect("rank >= 2");
        // A square linear after a flatten could hold millions of weights: add instead.
        if dims.len() != 3 && width > 64 {
            return self.add_existing(src);
        }
        let branch = if dims.len() == 3 {
            self.conv_node(src, Some(dims[0]), true);
            if self.rng.chance(0.5) {
                let conv = self.vals.len() - 1;
                self.batch_norm_node(conv);
            }
            if self.rng.chance(0.3) {
                let (y, d) = self.dims(self.vals.len() - 1);
                self.node("relu", &[&y], Map::new(), &[], d);
            }
            self.vals.last().expect("branch").0.clone()
        } else {
            self.linear_node(src, Some(width))
        };
        let pair = match self.rng.chance(0.5) {
            true => [&branch[..], &x[..]],
            false => [&x[..], &branch[..]],
        };
        let sum = self.node("add", &pair, Map::new(), &[], dims.clone());
        if self.rng.chance(0.4) {
            self.node("relu", &[&sum], Map::new(), &[], dims);
        }
    }

    /// add with another value of the same shape, or with itself.
    pub(super) fn add_existing(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let same: Vec<String> = self
            .vals
            .iter()
            .filter(|v| v.1 == dims)
            .map(|v| v.0.clone())
            .collect();
        let other = self.rng.pick(&same).clone();
        self.node("add", &[&x, &other], Map::new(), &[], dims);
    }

    /// Channel concat of the source with 1–2 "same" conv branches, in any order.
    pub(super) fn concat_branch(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        if dims[0] >= 2 * self.max_c {
            return self.concat_self(src);
        }
        let c_out = self.rng.range(1, self.max_c);
        let b = self.conv_node(src, Some(c_out), true);
        let mut parts = vec![x, b];
        let mut c = dims[0] + c_out;
        if self.rng.chance(0.3) {
            let c2 = self.rng.range(1, 8);
            parts.push(self.conv_node(src, Some(c2), true));
            c += c2;
        }
        self.rng.shuffle(&mut parts);
        let mut attrs = Map::new();
        match self.rng.range(0, 2) {
            0 => {}
            1 => {
                attrs.insert("dim".into(), json!(1));
            }
            _ => {
                attrs.insert("dim".into(), json!(-3));
            }
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let shape = vec![c, dims[1], dims[2]];
        self.node("concat", &parts, attrs, &[], shape);
    }

    /// Concat of the value with itself (1–3 times) along any dimension but the batch.
    pub(super) fn concat_self(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let rank = dims.len() + 1;
        let d = self.rng.range(1, rank - 1);
        let times = self.rng.range(1, 3);
        let spelt = match self.rng.chance(0.5) {
            true => d as i64 - rank as i64,
            false => d as i64,
        };
        let mut shape = dims.clone();
        shape[d - 1] *= times;
        let parts = vec![x.as_str(); times];
        let attrs = obj(json!({ "dim": spelt }));
        self.node("concat", &parts, attrs, &[], shape);
    }

    /// Writes a pair attribute in one of the spellings the format accepts: `[a, b]`, and
    /// for `a == b` also `a` or `[a]`; left out now and then when it is the default.
    pub(super) fn pair_attr(
        &mut self,
        attrs: &mut Map<String, Value>,
        key: &str,
        v: [usize; 2],
        default: Option<[usize; 2]>,
    ) {
        if default == Some(v) && self.rng.chance(0.4) {
            return;
        }
        let value = match (v[0] == v[1], self.rng.range(0, 5)) {
            (true, 0) => json!(v[0]),
            (true, 1) => json!([v[0]]),
            _ => json!(v),
        };
        attrs.insert(key.into(), value);
    }

    pub(super) fn bool_attr(
        &mut self,
        attrs: &mut Map<String, Value>,
        key: &str,
        v: bool,
        default: bool,
    ) {
        if v != default || self.rng.chance(0.5) {
            attrs.insert(key.into(), json!(v));
        }
    }
}
