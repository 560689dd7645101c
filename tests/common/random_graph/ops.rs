//! One op at a time, from a value of the rank it takes: attributes drawn from what
//! PyTorch accepts, the output shape by PyTorch's rule.

use super::grow::Gen;
use super::{obj, pool_out};
use serde_json::{json, Map};

impl Gen {
    pub(super) fn conv(&mut self, src: usize) {
        self.conv_node(src, None, false);
    }

    /// conv2d of any kernel 1–5, stride 1–3, padding, dilation 1–2 and groups (depthwise
    /// among them); a given `c_out`, and a "same" output (stride 1, odd kernel, padding
    /// d·(k−1)/2) when a block needs them.
    pub(super) fn conv_node(&mut self, src: usize, c_out: Option<usize>, same_hw: bool) -> String {
        let (x, dims) = self.dims(src);
        let [c, h, w] = [dims[0], dims[1], dims[2]];
        let r = &mut self.rng;
        let winograd = self.wide && r.chance(0.6);
        let (groups, c_out) = match c_out {
            Some(co) if r.chance(0.3) && co == c => (c, c),
            Some(co) => (1, co),
            None if winograd => (1, r.range(32, 40)),
            None if r.chance(0.2) => (c, c * r.range(1, 2)),
            None if r.chance(0.2) => {
                let divisors: Vec<usize> = (1..=c).filter(|g| c % g == 0).collect();
                let g = *r.pick(&divisors);
                (g, g * r.range(1, (self.max_c / g).max(1)))
            }
            None => (1, r.range(1, self.max_c)),
        };
        let square = r.chance(0.7);
        let mut k = [r.range(1, 5), r.range(1, 5)];
        let mut s = [r.range(1, 3), r.range(1, 3)];
        let mut d = [1 + r.chance(0.3) as usize, 1 + r.chance(0.3) as usize];
        if square {
            (k[1], s[1], d[1]) = (k[0], s[0], d[0]);
        }
        if same_hw {
            k = [*r.pick(&[1, 3, 5]); 2];
            s = [1, 1];
        }
        if winograd {
            (k, s, d) = ([3, 3], [1, 1], [1, 1]);
        }
        let mut p = [r.range(0, k[0] / 2 + 1), r.range(0, k[1] / 2 + 1)];
        for a in 0..2 {
            let len = [h, w][a];
            let ext = d[a] * (k[a] - 1) + 1;
            if same_hw {
                p[a] = d[a] * (k[a] - 1) / 2;
            } else if ext > len + 2 * p[a] {
                p[a] = (ext - len).div_ceil(2);
            }
        }
        let out = |a: usize| ([h, w][a] + 2 * p[a] - (d[a] * (k[a] - 1) + 1)) / s[a] + 1;
        let shape = vec![c_out, out(0), out(1)];
        let mut attrs = Map::new();
        self.pair_attr(&mut attrs, "stride", s, Some([1, 1]));
        self.pair_attr(&mut attrs, "padding", p, Some([0, 0]));
        self.pair_attr(&mut attrs, "dilation", d, Some([1, 1]));
        if groups != 1 || self.rng.chance(0.5) {
            attrs.insert("groups".into(), json!(groups));
        }
        let fan_in = c / groups * k[0] * k[1];
        let mut weights = vec![("weight", vec![c_out, c / groups, k[0], k[1]], fan_in)];
        if self.rng.chance(0.6) {
            weights.push(("bias", vec![c_out], fan_in));
        }
        self.node("conv2d", &[&x], attrs, &weights, shape)
    }

    pub(super) fn batch_norm_node(&mut self, src: usize) -> String {
        let (x, dims) = self.dims(src);
        let c = dims[0];
        let mut weights = vec![("running_mean", vec![c], 0), ("running_var", vec![c], 0)];
        if self.rng.chance(0.8) {
            weights.push(("weight", vec![c], 0));
        }
        if self.rng.chance(0.8) {
            weights.push(("bias", vec![c], 0));
        }
        let attrs = match self.rng.range(0, 2) {
            0 => Map::new(),
            1 => obj(json!({"eps": 1e-5})),
            _ => obj(json!({"eps": 1e-3})),
        };
        self.node("batch_norm", &[&x], attrs, &weights, dims)
    }

    pub(super) fn batch_norm(&mut self, src: usize) {
        self.batch_norm_node(src);
    }

    pub(super) fn pool(&mut self, src: usize, is_max: bool) {
        let (x, dims) = self.dims(src);
        let [c, h, w] = [dims[0], dims[1], dims[2]];
        for _ in 0..20 {
            let r = &mut self.rng;
            let mut k = [r.range(1, 4), r.range(1, 4)];
            let mut s = [r.range(1, 3), r.range(1, 3)];
            let mut d = [1, 1];
            if is_max {
                d = [1 + r.chance(0.3) as usize, 1 + r.chance(0.3) as usize];
            }
            if r.chance(0.7) {
                (k[1], s[1], d[1]) = (k[0], s[0], d[0]);
            }
            let default_stride = r.chance(0.3);
            if default_stride {
                s = k;
            }
            let p = [r.range(0, k[0] / 2), r.range(0, k[1] / 2)];
            let ceil = r.chance(0.3);
            let oh = pool_out(h, k[0], s[0], p[0], d[0], ceil);
            let ow = pool_out(w, k[1], s[1], p[1], d[1], ceil);
            if oh < 1 || ow < 1 {
                continue;
            }
            let mut attrs = Map::new();
            self.pair_attr(&mut attrs, "kernel_size", k, None);
            if default_stride {
                match self.rng.range(0, 2) {
                    0 => {}
                    // PyTorch writes `stride=[]` for "same as the kernel".
                    1 => {
                        attrs.insert("stride".into(), json!([]));
                    }
                    _ => self.pair_attr(&mut attrs, "stride", s, None),
                }
            } else {
                self.pair_attr(&mut attrs, "stride", s, None);
            }
            self.pair_attr(&mut attrs, "padding", p, Some([0, 0]));
            if is_max {
                self.pair_attr(&mut attrs, "dilation", d, Some([1, 1]));
            }
            self.bool_attr(&mut attrs, "ceil_mode", ceil, false);
            if !is_max {
                let cip = self.rng.chance(0.5);
                self.bool_attr(&mut attrs, "count_include_pad", cip, true);
            }
            let op = if is_max { "max_pool2d" } else { "avg_pool2d" };
            let shape = vec![c, oh as usize, ow as usize];
            self.node(op, &[&x], attrs, &[], shape);
            return;
        }
        self.simple(src);
    }

    /// Any output size 1–8 per axis, larger than the input included.
    pub(super) fn adaptive(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let r = &mut self.rng;
        let mut out = [r.range(1, 8), r.range(1, 8)];
        if r.chance(0.5) {
            out[1] = out[0];
        }
        let mut attrs = Map::new();
        self.pair_attr(&mut attrs, "output_size", out, None);
        let shape = vec![dims[0], out[0], out[1]];
        self.node("adaptive_avg_pool2d", &[&x], attrs, &[], shape);
    }

    pub(super) fn mean(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let spellings = [
            json!([2, 3]),
            json!([-2, -1]),
            json!([3, 2]),
            json!([-1, 2]),
        ];
        let mut attrs = Map::new();
        attrs.insert("dims".into(), self.rng.pick(&spellings).clone());
        let keepdim = self.rng.chance(0.5);
        self.bool_attr(&mut attrs, "keepdim", keepdim, false);
        let shape = match keepdim {
            true => vec![dims[0], 1, 1],
            false => vec![dims[0]],
        };
        self.node("mean", &[&x], attrs, &[], shape);
    }

    /// flatten(start, end) for any 1 <= start <= end < rank, each spelt positive or negative.
    pub(super) fn flatten(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let rank = dims.len() + 1;
        let (start, end) = if self.rng.chance(0.5) {
            (1, rank - 1)
        } else {
            let s = self.rng.range(1, rank - 1);
            (s, self.rng.range(s, rank - 1))
        };
        let mut shape = dims[..start - 1].to_vec();
        shape.push(dims[start - 1..end].iter().product());
        shape.extend_from_slice(&dims[end..]);
        let mut attrs = Map::new();
        for (key, d, default) in [("start_dim", start, 1), ("end_dim", end, rank - 1)] {
            if d == default && self.rng.chance(0.4) {
                continue;
            }
            let spelt = match self.rng.chance(0.5) {
                true => d as i64 - rank as i64,
                false => d as i64,
            };
            attrs.insert(key.into(), json!(spelt));
        }
        self.node("flatten", &[&x], attrs, &[], shape);
    }

    /// linear over the last dimension (any rank from 2 up, as PyTorch's).
    pub(super) fn linear_node(&mut self, src: usize, out: Option<usize>) -> String {
        let (x, dims) = self.dims(src);
        let in_f = *dims.last().expect("rank >= 2");
        let out = out.unwrap_or_else(|| self.rng.range(1, self.max_c));
        let mut weights = vec![("weight", vec![out, in_f], in_f)];
        if self.rng.chance(0.7) {
            weights.push(("bias", vec![out], in_f));
        }
        let mut shape = dims.clone();
        *shape.last_mut().expect("rank >= 2") = out;
        self.node("linear", &[&x], Map::new(), &weights, shape)
    }

    pub(super) fn linear(&mut self, src: usize) {
        self.linear_node(src, None);
    }

    pub(super) fn softmax(&mut self, src: usize) {
        let (x, dims) = self.dims(src);
        let rank = dims.len() + 1;
        // Any dimension, the batch included, spelt positive or negative.
        let d = self.rng.range(0, rank - 1);
        let mut attrs = Map::new();
        if !(d == rank - 1 && self.rng.chance(0.4)) {
            let spelt = match self.rng.chance(0.5) {
                true => d as i64 - rank as i64,
                false => d as i64,
            };
            attrs.insert("dim".into(), json!(spelt));
        }
        self.node("softmax", &[&x], attrs, &[], dims);
    }
}
