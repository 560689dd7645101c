//! Faults due when the session is built or run: its batch, its threads, its inputs.

use super::{broken, q, session_at_batch, Broken, Stage};
use crate::random_graph::{RandomGraph, Rng};
use kestrel::SessionOptions;

pub(super) fn fixed_batch_mismatch(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    let fixed = rng.range(1, 3);
    b.def
        .inputs
        .iter_mut()
        .for_each(|x| x.shape[0] = fixed as i64);
    let asked = *rng.pick(&[fixed + 1, fixed + 7]);
    b.what = format!("batch fixed at {fixed}, session at {asked}");
    b.stage = Stage::Session(SessionOptions::default().with_batch(asked));
    b.culprits = vec![q(&g.def.inputs[0].name)];
    Some(b)
}

pub(super) fn zero_session(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    let mut opts = session_at_batch(g);
    if rng.chance(0.5) {
        opts.batch = 0;
        b.culprits = vec!["batch".into()];
    } else {
        opts.threads = 0;
        b.culprits = vec!["threads".into()];
    }
    b.what = format!("session batch {} threads {}", opts.batch, opts.threads);
    b.stage = Stage::Session(opts);
    Some(b)
}

/// A batch whose input alone overflows: refused when the session is planned, before any
/// allocation.
pub(super) fn absurd_batch(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    b.def.inputs.iter_mut().for_each(|x| x.shape[0] = -1);
    let batch = *rng.pick(&[1 << 40, usize::MAX / 2, usize::MAX]);
    b.what = format!("session batch {batch}");
    b.stage = Stage::Session(SessionOptions::default().with_batch(batch));
    b.culprits = vec![q(&g.def.inputs[0].name)];
    Some(b)
}

pub(super) fn wrong_input_len(g: &RandomGraph, rng: &mut Rng) -> Option<Broken> {
    let mut b = broken(g, "");
    let mut lens: Vec<usize> = g
        .def
        .inputs
        .iter()
        .map(|x| g.batch * g.shapes[&x.name].iter().product::<usize>())
        .collect();
    let names: Vec<&str> = g.def.inputs.iter().map(|x| x.name.as_str()).collect();
    let k = rng.range(0, lens.len() - 1);
    match rng.range(0, 3) {
        0 => lens[k] += 1,
        1 => lens[k] -= 1,
        2 => lens[k] = 0,
        _ if rng.chance(0.5) => lens.push(4),
        _ => lens.truncate(lens.len() - 1),
    }
    if lens.len() == names.len() {
        b.culprits = vec![q(names[k])];
    } else {
        b.culprits = vec![q(&names.join(", "))];
    }
    b.what = format!("run on inputs of lengths {lens:?}");
    b.stage = Stage::Run(session_at_batch(g), lens);
    Some(b)
}
