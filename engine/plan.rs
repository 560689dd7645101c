//! The static plan of a session: every value's shape, the kernel of every node, and one
//! arena in which every value has a fixed offset, reused once the value is dead.

use crate::error::{Error, GraphError};
use crate::graph::{Graph, Op, Value};
use crate::lower::{lower, Kernel};

mod views;

/// No single value may hold more than 2^36 floats (256 GiB): past that a shape is absurd,
/// and refusing it here keeps every later size computation far from overflow.
const MAX_ELEMS: usize = 1 << 36;

/// Offsets are multiples of 16 floats (64 bytes), so each value starts on a cache line.
pub(crate) const ALIGN: usize = 16;

/// One node lowered at a fixed batch.
pub(crate) struct Step {
    pub name: String,
    pub kernel: Kernel,
    /// Value ids (see `Plan::values`) of the inputs, then the output.
    pub inputs: Vec<usize>,
    pub output: usize,
    /// The output overwrites input 0's storage (an activation whose input dies here).
    pub in_place: bool,
}

/// Where a value lives: its shape and its place in the arena.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

pub(crate) struct Plan {
    /// Graph inputs first (value id = input index), then one value per node.
    pub values: Vec<Slot>,
    /// How many of `values` are graph inputs.
    pub inputs: usize,
    pub steps: Vec<Step>,
    pub outputs: Vec<usize>,
    pub arena_len: usize,
}

fn value_id(graph: &Graph, v: Value) -> usize {
    match v {
        Value::Input(i) => i,
        Value::Node(i) => graph.inputs.len() + i,
    }
}

/// Shapes and kernels of every node at `batch`, checked; no memory is planned yet.
pub(crate) fn lower_graph(
    graph: &Graph,
    batch: usize,
) -> Result<(Vec<Vec<usize>>, Vec<Step>), Error> {
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(graph.inputs.len() + graph.nodes.len());
    for input in &graph.inputs {
        let mut shape = vec![batch];
        shape.extend_from_slice(&input.dims);
        check_elems(&shape, || GraphError::BadInput {
            name: input.name.clone(),
            detail: format!("shape {shape:?} is absurdly large"),
        })?;
        shapes.push(shape);
    }
    let mut steps = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let ids: Vec<usize> = node.inputs.iter().map(|&v| value_id(graph, v)).collect();
        let in_shapes: Vec<&[usize]> = ids.iter().map(|&i| &shapes[i][..]).collect();
        let lowered = lower(node, &in_shapes).map_err(graph_err)?;
        check_elems(&lowered.shape, || GraphError::Invalid {
            node: node.name.clone(),
            op: node.op.name(),
            detail: format!("output shape {:?} is absurdly large", lowered.shape),
        })?;
        steps.push(Step {
            name: node.name.clone(),
            kernel: lowered.kernel,
            inputs: ids,
            output: shapes.len(),
            in_place: false,
        });
        shapes.push(lowered.shape);
    }
    Ok((shapes, steps))
}

/// Makes each add of two values of different shapes (a broadcast) the general binary op,
/// given every value's shape (`lower_graph`'s): `Op::Add` then always means the residual
/// add of equal shapes, which the graph passes may fuse into a conv.
pub(crate) fn split_broadcast_adds(graph: &mut Graph, shapes: &[Vec<usize>]) {
    for i in 0..graph.nodes.len() {
        let Op::Add { act } = graph.nodes[i].op else {
            continue;
        };
        let [a, b] = [0, 1].map(|k| &shapes[value_id(graph, graph.nodes[i].inputs[k])]);
        if a != b {
            graph.nodes[i].op = Op::Binary {
                op: crate::graph::BinaryOp::Add,
                operand: crate::graph::Operand::Value,
                reverse: false,
                act,
            };
        }
    }
}

fn graph_err(e: GraphError) -> Error {
    Error::graph(None, e)
}

fn check_elems(shape: &[usize], err: impl FnOnce() -> GraphError) -> Result<(), Error> {
    let elems = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match elems {
        Some(n) if n <= MAX_ELEMS => Ok(()),
        _ => Err(graph_err(err())),
    }
}

/// Plans the arena. Values that alias (flatten, identity, in-place activations) share
/// their input's storage, and at batch 1 the inputs of a channel concat are written by
/// their producers straight into their places in the concat's output. A storage is live
/// from the first step that writes it to the last step that reads it (graph inputs from
/// the start, graph outputs to the end); storages whose lives overlap get disjoint ranges,
/// placed largest first at the lowest offset that fits.
///
/// With `fold_views`, layout ops (permute, slice, reshape) are views of the last value a
/// kernel wrote, copied only where read (`views`).
pub(crate) fn plan(graph: &Graph, batch: usize, fold_views: bool) -> Result<Plan, Error> {
    let (shapes, mut steps) = lower_graph(graph, batch)?;
    let n_values = shapes.len();
    let n_inputs = graph.inputs.len();
    let outputs: Vec<usize> = graph.outputs.iter().map(|&v| value_id(graph, v)).collect();
    if fold_views {
        views::fold_views(graph, &shapes, &mut steps, &outputs);
    }
    mark_in_place(&mut steps, &outputs, n_inputs, n_values);
    let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
    let parent = concat_in_place(&mut steps, &outputs, n_inputs, &lens);
    // place[v] = (root, at): v lives `at` floats into the storage of value `root`.
    let mut place: Vec<(usize, usize)> = (0..n_values).map(|v| (v, 0)).collect();
    // A concat comes after its inputs (and an outer concat after an inner one): resolve
    // from the last value back, so a concat's own place is known before its inputs'.
    for v in (0..n_values).rev() {
        if let Some((c, at)) = parent[v] {
            place[v] = (place[c].0, place[c].1 + at);
        }
    }
    for step in &steps {
        if shares_input_storage(step) {
            let (root, at) = place[step.inputs[0]];
            place[step.output] = (root, at + view_offset(step));
        }
    }
    let len = |v: usize| shapes[v].iter().product::<usize>();
    let root = |v: usize| place[v].0;
    let end = steps.len() + 1;
    // Lifetimes in step positions: graph inputs are written at 0, step s at s + 1.
    let mut born = vec![usize::MAX; n_values];
    let mut dies = vec![0; n_values];
    (0..n_inputs).for_each(|i| born[root(i)] = 0);
    for (s, step) in steps.iter().enumerate() {
        let r = root(step.output);
        born[r] = born[r].min(s + 1);
        dies[r] = dies[r].max(s + 1);
        for &i in &step.inputs {
            dies[root(i)] = dies[root(i)].max(s + 1);
        }
    }
    for &o in &outputs {
        dies[root(o)] = end;
    }
    let mut roots: Vec<usize> = (0..n_values).filter(|&v| root(v) == v).collect();
    roots.sort_by_key(|&v| std::cmp::Reverse(len(v)));
    let mut offset = vec![0; n_values];
    let mut placed: Vec<usize> = Vec::with_capacity(roots.len());
    let mut arena_len = 0;
    for &v in &roots {
        let size = len(v).div_ceil(ALIGN) * ALIGN;
        // Ranges of live-overlapping storages already placed, by offset.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&u| born[u] <= dies[v] && born[v] <= dies[u])
            .map(|&u| (offset[u], offset[u] + len(u).div_ceil(ALIGN) * ALIGN))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (start, stop) in busy {
            if at + size <= start {
                break;
            }
            at = at.max(stop);
        }
        offset[v] = at;
        arena_len = arena_len.max(at + size);
        placed.push(v);
    }
    let values = (0..n_values)
        .map(|v| Slot {
            shape: shapes[v].clone(),
            offset: offset[root(v)] + place[v].1,
            len: len(v),
        })
        .collect();
    Ok(Plan {
        values,
        inputs: n_inputs,
        steps,
        outputs,
        arena_len,
    })
}

/// Where a step's output starts in its input's storage, when it shares it.
pub(crate) fn view_offset(step: &Step) -> usize {
    match step.kernel {
        Kernel::View { offset } => offset,
        _ => 0,
    }
}

/// The step has nothing to compute: an alias or view, or a concat its producers wrote in
/// place.
pub(crate) fn moves_no_data(step: &Step) -> bool {
    match step.kernel {
        Kernel::Alias | Kernel::View { .. } => true,
        Kernel::Concat { .. } => step.in_place,
        _ => false,
    }
}

/// The step's output is its input's storage (or part of it): an alias or view, or an
/// in-place activation (an in-place concat instead owns the storage its inputs were
/// written into).
pub(crate) fn shares_input_storage(step: &Step) -> bool {
    match step.kernel {
        Kernel::Alias | Kernel::View { .. } => true,
        Kernel::Concat { .. } => false,
        _ => step.in_place,
    }
}

/// Marks the concats whose inputs can be written in place and returns, per value, the
/// concat output it lives in and at what offset. Only when the concat's output is one
/// contiguous run per input (`outer == 1`: batch 1 on the channel axis). Each input is
/// either a kernel's fresh output, written straight into its place (other steps may read
/// it there too), or one of a run of views (`Kernel::View` / `Alias`) that in order cover a
/// fresh output whole: then that output is written into place and the views fall on their
/// parts. YOLO's C2f block concatenates both chunks of one conv's output, views of it,
/// with the bottleneck outputs that also feed the next bottleneck: all of it lands in
/// place, and its concat copies nothing.
fn concat_in_place(
    steps: &mut [Step],
    outputs: &[usize],
    n_inputs: usize,
    lens: &[usize],
) -> Vec<Option<(usize, usize)>> {
    let mut parent: Vec<Option<(usize, usize)>> = vec![None; lens.len()];
    for s in 0..steps.len() {
        let Kernel::Concat { outer: 1, .. } = &steps[s].kernel else {
            continue;
        };
        let Some(pieces) = concat_pieces(steps, s, (outputs, n_inputs, lens), &parent) else {
            continue;
        };
        for (v, at) in pieces {
            parent[v] = Some((steps[s].output, at));
        }
        steps[s].in_place = true;
    }
    parent
}

/// The values concat step `s` can hold in place, each with its offset in the concat's
/// output, or None when one of its inputs cannot be written there (a graph input or
/// output, a value already placed elsewhere, a view that is not part of a whole run).
fn concat_pieces(
    steps: &[Step],
    s: usize,
    (outputs, n_inputs, lens): (&[usize], usize, &[usize]),
    parent: &[Option<(usize, usize)>],
) -> Option<Vec<(usize, usize)>> {
    let len = |v: usize| lens[v];
    // The step that wrote v (values after the graph inputs are the steps' outputs, in order).
    let producer = |v: usize| {
        steps
            .get(v.checked_sub(n_inputs)?)
            .filter(|st| st.output == v)
    };
    // The kernel output whose storage v is: v itself, or what an in-place activation
    // chain ending at v overwrote; None for a graph input or output, or a value already
    // placed in another concat.
    let owner = |mut v: usize| loop {
        if parent[v].is_some() || outputs.contains(&v) {
            return None;
        }
        let step = producer(v)?;
        match (&step.kernel, step.in_place) {
            (Kernel::Act(_), true) => v = step.inputs[0],
            _ if shares_input_storage(step) => return None,
            _ => return Some(v),
        }
    };
    // The view step producing v: (base, offset), for views of a kernel's output.
    let view_of = |v: usize| -> Option<(usize, usize)> {
        let step = producer(v)?;
        let views = matches!(step.kernel, Kernel::Alias | Kernel::View { .. });
        views.then(|| (step.inputs[0], view_offset(step)))
    };
    let inputs = &steps[s].inputs;
    let (mut pieces, mut at, mut i) = (Vec::new(), 0, 0);
    while i < inputs.len() {
        let v = inputs[i];
        if let Some(o) = owner(v) {
            pieces.push((o, at));
            at += len(v);
            i += 1;
            continue;
        }
        // A run of views of one base, at offsets 0, len0, len0 + len1, … up to its end.
        let (base, first) = view_of(v)?;
        let o = owner(base).filter(|_| first == 0)?;
        // At least one view per run (v itself), so i moves on even for an empty base.
        let mut covered = 0;
        loop {
            let (b, off) = view_of(*inputs.get(i)?)?;
            if b != base || off != covered {
                return None;
            }
            covered += len(inputs[i]);
            i += 1;
            if covered >= len(base) {
                break;
            }
        }
        if covered != len(base) {
            return None;
        }
        pieces.push((o, at));
        at += covered;
    }
    // A value twice in one concat (or a base under two runs) cannot sit in both places.
    let mut seen: Vec<usize> = pieces.iter().map(|p| p.0).collect();
    seen.sort_unstable();
    seen.dedup();
    (seen.len() == pieces.len()).then_some(pieces)
}

/// An activation may overwrite its input when that input is a node's own storage (not a
/// graph input, not an alias) read by nothing else and not returned.
fn mark_in_place(steps: &mut [Step], outputs: &[usize], n_inputs: usize, n_values: usize) {
    let mut uses = vec![0; n_values];
    for &v in steps.iter().flat_map(|s| &s.inputs).chain(outputs) {
        uses[v] += 1;
    }
    let mut aliased = vec![false; n_values];
    for step in steps.iter_mut() {
        let v = step.inputs[0];
        if matches!(step.kernel, Kernel::Act(_)) && v >= n_inputs && uses[v] == 1 && !aliased[v] {
            step.in_place = true;
        }
        if matches!(step.kernel, Kernel::Alias | Kernel::View { .. }) || step.in_place {
            aliased[step.output] = true;
            aliased[v] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;

    /// Checks, independently of the planner's own bookkeeping, that no two values whose
    /// lives overlap share arena memory unless one aliases the other, and that reuse
    /// makes the arena smaller than all values laid end to end; on the file's graph, or
    /// with the graph passes (`optimize`).
    fn check_plan(fixture: &str, batch: usize, optimize: bool) {
        let path = format!(
            "{}/../tests/fixtures/{fixture}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let model = Model::load(path).unwrap();
        let mut graph = model.graph().clone();
        if optimize {
            crate::passes::optimize(&mut graph, true);
        }
        let p = plan(&graph, batch, true).unwrap();
        let n = p.values.len();
        let mut root: Vec<usize> = (0..n).collect();
        let (mut first, mut last) = (vec![0; n], vec![0; n]);
        // An in-place concat's inputs live in its storage, and so does every value an
        // input shares storage with (a run of views covering one output, an activation
        // run in place).
        let producer = |v: usize| v.checked_sub(p.inputs).map(|s| &p.steps[s]);
        for step in p.steps.iter().rev() {
            if matches!(step.kernel, Kernel::Concat { .. }) && step.in_place {
                for &i in &step.inputs {
                    let mut v = i;
                    root[v] = root[step.output];
                    while let Some(st) = producer(v).filter(|st| shares_input_storage(st)) {
                        v = st.inputs[0];
                        root[v] = root[step.output];
                    }
                }
            }
        }
        for (s, step) in p.steps.iter().enumerate() {
            if shares_input_storage(step) {
                root[step.output] = root[step.inputs[0]];
            }
            first[step.output] = s + 1;
            last[step.output] = s + 1;
            for &i in &step.inputs {
                last[i] = s + 1;
            }
        }
        for &o in &p.outputs {
            last[o] = p.steps.len() + 1;
        }
        for v in 0..n {
            let a = &p.values[v];
            assert!(a.offset + a.len <= p.arena_len);
            for u in 0..v {
                let b = &p.values[u];
                let live_together = first[u] <= last[v] && first[v] <= last[u];
                let disjoint = a.offset + a.len <= b.offset || b.offset + b.len <= a.offset;
                if live_together && root[u] != root[v] {
                    assert!(
                        disjoint,
                        "{fixture}: values {u} and {v} are live together and overlap"
                    );
                }
            }
        }
        let total: usize = (0..n)
            .filter(|&v| root[v] == v)
            .map(|v| p.values[v].len)
            .sum();
        assert!(
            p.arena_len < total / 2,
            "{fixture}: arena {} of {total} floats: no reuse",
            p.arena_len
        );
    }

    #[test]
    fn live_values_never_share_memory_and_dead_ones_are_reused() {
        // The SE nets' projection convs read their gate as a third input (`in_scale`):
        // it must stay live, apart from the conv's output, until the conv has run.
        let fixtures = [
            "resnet18",
            "mobilenetv2",
            "allops",
            "mobilenetv3",
            "efficientnet_b0",
        ];
        for fixture in fixtures {
            check_plan(fixture, 2, false);
            check_plan(fixture, 2, true);
        }
        // Batch 1: concats in place, views of their inputs (YOLO's C2f, U-Net's skips,
        // ShuffleNet's halves).
        for fixture in ["yolo", "unet", "shufflenet", "allops", "v3ops"] {
            check_plan(fixture, 1, false);
        }
    }

    #[test]
    fn yolo_concats_copy_nothing_at_batch_1() {
        // C2f: cat(chunk 0, chunk 1 of one conv's output, bottleneck outputs that also
        // feed the next bottleneck), SPPF's cat of pools, the neck's cat of an upsampled
        // map and a skip: each input written in place.
        let path = format!(
            "{}/../tests/fixtures/yolo.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let model = Model::load(path).unwrap();
        let p = plan(model.graph(), 1, true).unwrap();
        let concats: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| matches!(s.kernel, Kernel::Concat { .. }))
            .collect();
        assert!(concats.len() >= 8, "{} concats", concats.len());
        let copied: Vec<&str> = concats
            .iter()
            .filter(|s| !s.in_place)
            .map(|s| s.name.as_str())
            .collect();
        assert!(copied.is_empty(), "concats still copied: {copied:?}");
    }
}
