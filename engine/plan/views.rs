//! Layout ops as views: a permute, a slice or a reshape (and flatten, identity) need not
//! copy its input when all it feeds is more layout ops. Each such value is described as a
//! strided view of the last value a kernel wrote (its base), the views composed op by op,
//! and only a value that a computing kernel or the caller reads is materialised, by one
//! strided copy from its base, or by no copy at all when the view is the base itself (an
//! alias) or one contiguous run of it starting on a cache line (`Kernel::View`).
//!
//! A view's dim may be several strided factors (outer first): a reshape that merges dims a
//! permute has separated keeps them as factors of one dim, where `view` in PyTorch would
//! need a copy. So ShuffleNetV2's `channel_shuffle` then `chunk(2)` (reshape → permute →
//! reshape → two slices along the merged channels, each a whole number of groups) moves
//! nothing until each half is copied from the concat that made it, instead of a transposed
//! copy of the whole tensor and two slice copies of it.

use super::{Step, ALIGN};
use crate::graph::{Graph, Op};
use crate::lower::Kernel;
use kestrel_kernels::copy::CopyParams;

/// One dim of a view: its factors (size, stride), outer first, their sizes multiplying to
/// the dim's size (no factor for a dim of size 1).
type Dim = Vec<(usize, usize)>;

/// `base` read from `offset` along `dims`.
#[derive(Debug, Clone, PartialEq)]
struct View {
    base: usize,
    dims: Vec<Dim>,
    offset: usize,
}

impl View {
    /// The whole of value `v`, row-major.
    fn of(v: usize, shape: &[usize]) -> View {
        let mut stride = 1;
        let mut dims = vec![Vec::new(); shape.len()];
        for d in (0..shape.len()).rev() {
            if shape[d] != 1 {
                dims[d].push((shape[d], stride));
            }
            stride *= shape[d];
        }
        View {
            base: v,
            dims,
            offset: 0,
        }
    }

    /// Every factor, outer first, neighbours that are contiguous merged.
    fn factors(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for &(size, stride) in self.dims.iter().flatten() {
            match out.last_mut() {
                Some(last) if last.1 == size * stride => *last = (last.0 * size, stride),
                _ => out.push((size, stride)),
            }
        }
        out
    }
}

/// Rewrites the layout steps of `steps` (node i is step i; value ids as `plan`'s, the
/// graph's inputs first) so each reads its base and copies only what is read. A step
/// left unmaterialised becomes an alias named `<name>.view`: its storage does not hold its
/// value, so per-layer comparisons must not see it under PyTorch's name.
pub(super) fn fold_views(
    graph: &Graph,
    shapes: &[Vec<usize>],
    steps: &mut [Step],
    outputs: &[usize],
) {
    let n_inputs = graph.inputs.len();
    let is_layout = |s: &Step| matches!(s.kernel, Kernel::Alias | Kernel::Copy(_));
    // A layout value read only by layout steps (and not returned) need not exist.
    let mut lazy: Vec<bool> = (0..shapes.len())
        .map(|v| v >= n_inputs && is_layout(&steps[v - n_inputs]))
        .collect();
    for step in steps.iter() {
        if !is_layout(step) {
            step.inputs.iter().for_each(|&v| lazy[v] = false);
        }
    }
    outputs.iter().for_each(|&v| lazy[v] = false);
    let mut views: Vec<Option<View>> = vec![None; shapes.len()];
    for (step, node) in steps.iter().zip(&graph.nodes) {
        if !is_layout(step) {
            continue;
        }
        let (input, out) = (step.inputs[0], step.output);
        let from = views[input]
            .clone()
            .unwrap_or_else(|| View::of(input, &shapes[input]));
        let composed = match compose(&node.op, from, &shapes[out]) {
            Some(view) => view,
            // A slice or reshape across factors that no strides express: the input must exist.
            None => {
                lazy[input] = false;
                let whole = View::of(input, &shapes[input]);
                compose(&node.op, whole, &shapes[out]).expect("a whole value composes")
            }
        };
        views[out] = Some(composed);
    }
    for step in steps.iter_mut() {
        let out = step.output;
        let Some(view) = views[out].take() else {
            continue;
        };
        if lazy[out] {
            step.kernel = Kernel::Alias;
            step.name = format!("{}.view", step.name);
            continue;
        }
        step.inputs = vec![view.base];
        step.kernel = materialise(&view, shapes[view.base].iter().product());
    }
}

/// The view `op` makes of `x`, shaped `out`; None for a slice that cuts a dim's factors
/// unevenly or a reshape that would split a factor across dims.
fn compose(op: &Op, mut x: View, out: &[usize]) -> Option<View> {
    match op {
        Op::Permute { dims } => {
            x.dims = dims.iter().map(|&d| x.dims[d].clone()).collect();
            Some(x)
        }
        Op::Slice {
            dim, start, step, ..
        } => {
            let d = dim.rem_euclid(x.dims.len() as i64) as usize;
            let len = out[d];
            let factors = &mut x.dims[d];
            match factors.len() {
                // A dim of size 1 sliced to size 1: nothing moves.
                0 => {}
                1 => {
                    x.offset += start * factors[0].1;
                    factors[0] = (len, factors[0].1 * step);
                }
                // Whole runs of the inner factors: a slice of the outer one.
                _ => {
                    let inner: usize = factors[1..].iter().map(|f| f.0).product();
                    if *step != 1 || !start.is_multiple_of(inner) || !len.is_multiple_of(inner) {
                        return None;
                    }
                    x.offset += start / inner * factors[0].1;
                    factors[0].0 = len / inner;
                }
            }
            if len == 1 {
                factors.clear();
            }
            Some(x)
        }
        // Reshape, flatten, identity: the same elements in the same order, regrouped.
        _ => {
            let mut factors = x.factors().into_iter();
            let mut next = factors.next();
            x.dims = Vec::with_capacity(out.len());
            for &size in out {
                let mut need = size;
                let mut dim = Vec::new();
                while need > 1 {
                    let (a, s) = next?;
                    if need % a == 0 {
                        dim.push((a, s));
                        need /= a;
                        next = factors.next();
                    } else if a % need == 0 {
                        // Split the factor: its outer part here, the rest for later dims.
                        dim.push((need, s * (a / need)));
                        next = Some((a / need, s));
                        need = 1;
                    } else {
                        // Strided factors that do not split along the new dims.
                        return None;
                    }
                }
                x.dims.push(dim);
            }
            Some(x)
        }
    }
}

/// The kernel that makes `view` a value of its own: nothing when it is all of its base in
/// order, an offset view of it when it is one aligned contiguous run, else a strided copy.
fn materialise(view: &View, base_len: usize) -> Kernel {
    let factors: Vec<(usize, usize)> = view.dims.iter().flatten().copied().collect();
    let sizes: Vec<usize> = factors.iter().map(|f| f.0).collect();
    let strides: Vec<usize> = factors.iter().map(|f| f.1).collect();
    let p = CopyParams::new(&sizes, &strides, view.offset);
    let contiguous = p.dims.len() == 1 && p.strides[0] == 1;
    match (contiguous, p.offset) {
        (true, 0) if p.len() == base_len => Kernel::Alias,
        (true, offset) if offset.is_multiple_of(ALIGN) => Kernel::View { offset },
        _ => Kernel::Copy(p),
    }
}
