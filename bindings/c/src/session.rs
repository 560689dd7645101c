//! Sessions: a model prepared for one batch and device, run from one thread at a time.

use crate::error::{arg, arg_mut, guard, put, Failure, KestrelStatus};
use crate::model::KestrelModel;
use crate::options::KestrelOptions;
use kestrel::SessionOptions;
use std::slice;

/// A session (opaque): a model ready to run at one batch size on one device. It may move
/// between threads, but only one thread may use it at a time.
pub struct KestrelSession {
    session: kestrel::Session,
    // The shapes copied out once, so the pointers handed out stay valid as long as the
    // session does, whatever a run does inside it.
    input_shapes: Vec<Vec<usize>>,
    output_shapes: Vec<Vec<usize>>,
}

/// Inputs a run passes on the stack: up to this many, building the slice list allocates
/// nothing (a model with more inputs costs one small Vec per run).
const STACK_INPUTS: usize = 8;

/// Prepares a session of `model` with `options` (NULL: the defaults), which are copied.
/// On success `*out` is a new session, to be freed with `kestrel_session_free`. A session
/// does not borrow the model: it stays valid after `kestrel_model_free`. Building takes
/// time (kernels chosen, weights packed); do it once and run many times. Several threads
/// may build sessions of one model at once; each session then belongs to one thread at a
/// time.
///
/// # Safety
/// `model` must be NULL or a live model; `options` NULL or live options not being changed
/// by another thread; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_session_new(
    model: *const KestrelModel,
    options: *const KestrelOptions,
    out: *mut *mut KestrelSession,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live, by contract.
        let model = unsafe { arg(model, "model") }?;
        // SAFETY: NULL (the defaults) or live and not being changed, by contract.
        let options = unsafe { options.as_ref() }
            .map(|o| o.options.clone())
            .unwrap_or_default();
        if out.is_null() {
            return Err(Failure::argument("out is NULL"));
        }
        let wrapped = Box::new(new_session(&model.model, &options)?);
        // SAFETY: out is not NULL (checked above) and writable by contract.
        unsafe { put(out, "out", Box::into_raw(wrapped)) }
    })
}

fn new_session(
    model: &kestrel::Model,
    options: &SessionOptions,
) -> Result<KestrelSession, Failure> {
    let session = model.session(options)?;
    let input_shapes = (0..session.input_names().len())
        .map(|i| session.input_shape(i).unwrap_or_default().to_vec())
        .collect();
    let output_shapes = (0..session.output_names().len())
        .map(|i| session.output_shape(i).unwrap_or_default().to_vec())
        .collect();
    Ok(KestrelSession {
        session,
        input_shapes,
        output_shapes,
    })
}

/// Frees a session from `kestrel_session_new`. NULL is allowed and does nothing.
///
/// # Safety
/// `session` must be NULL or a session not yet freed, and no thread may be using it.
#[no_mangle]
pub unsafe extern "C" fn kestrel_session_free(session: *mut KestrelSession) {
    // SAFETY: NULL or from this crate's Box::into_raw, freed once, by contract.
    unsafe { crate::error::free(session) }
}

/// Hands out `shapes[index]` as a pointer and a rank.
///
/// # Safety
/// `dims` and `rank` must each be NULL or writable.
unsafe fn shape_of(
    shapes: &[Vec<usize>],
    index: usize,
    what: &str,
    dims: *mut *const usize,
    rank: *mut usize,
) -> Result<(), Failure> {
    let shape = shapes.get(index).ok_or_else(|| {
        Failure::argument(format!(
            "{what} index {index} is out of range (there are {})",
            shapes.len()
        ))
    })?;
    if dims.is_null() || rank.is_null() {
        let which = if dims.is_null() { "dims" } else { "rank" };
        return Err(Failure::argument(format!("{which} is NULL")));
    }
    // SAFETY: both checked not NULL above; writable by contract.
    unsafe {
        put(dims, "dims", shape.as_ptr())?;
        put(rank, "rank", shape.len())
    }
}

/// The shape (batch first, NCHW for images) input `index` must have: `*rank` dimensions
/// at `*dims`, owned by the session and valid until `kestrel_session_free`. The input's
/// length in floats is their product.
///
/// # Safety
/// `session` must be NULL or a live session; `dims` and `rank` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_session_input_shape(
    session: *const KestrelSession,
    index: usize,
    dims: *mut *const usize,
    rank: *mut usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live, by contract.
        let session = unsafe { arg(session, "session") }?;
        // SAFETY: dims and rank NULL or writable, by contract.
        unsafe { shape_of(&session.input_shapes, index, "input", dims, rank) }
    })
}

/// The shape (batch first) of output `index` of every run, as for
/// `kestrel_session_input_shape`.
///
/// # Safety
/// `session` must be NULL or a live session; `dims` and `rank` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kestrel_session_output_shape(
    session: *const KestrelSession,
    index: usize,
    dims: *mut *const usize,
    rank: *mut usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live, by contract.
        let session = unsafe { arg(session, "session") }?;
        // SAFETY: dims and rank NULL or writable, by contract.
        unsafe { shape_of(&session.output_shapes, index, "output", dims, rank) }
    })
}

/// Checks the caller's output buffers against the session's outputs before anything runs,
/// so that a wrong call leaves every buffer untouched.
fn check_outputs(session: &KestrelSession, lens: &[usize]) -> Result<(), Failure> {
    let names = session.session.output_names();
    let input = |message: String| Failure::new(KestrelStatus::KESTREL_ERROR_INPUT, message);
    if lens.len() != names.len() {
        return Err(input(format!(
            "output \"{}\": the model has {} output(s), got {} output buffer(s)",
            names.join(", "),
            names.len(),
            lens.len()
        )));
    }
    for ((name, shape), &len) in names.iter().zip(&session.output_shapes).zip(lens) {
        let want: usize = shape.iter().product();
        if len != want {
            return Err(input(format!(
                "output \"{name}\": expected a buffer of {want} floats (shape {shape:?}), got {len}"
            )));
        }
    }
    Ok(())
}

/// Runs the session: `n_inputs` inputs in model order, input `i` being `input_lens[i]`
/// floats at `inputs[i]`, each exactly its shape's size (`kestrel_session_input_shape`);
/// then copies output `i` into `outputs[i]`, which holds exactly `output_lens[i]` floats,
/// its shape's size. A wrong count or length is `KESTREL_ERROR_INPUT`, naming the input or
/// output and both sizes, and writes no output buffer. Allocates nothing on success (for
/// models of up to 8 inputs). Only one thread may run a session at a time; buffers must
/// not overlap.
///
/// # Safety
/// `session` must be NULL or a live session no other thread is using. `inputs` and
/// `input_lens` must be NULL or point to `n_inputs` entries, `outputs` and `output_lens`
/// to `n_outputs`; each `inputs[i]` must be NULL or readable for `input_lens[i]` floats,
/// each `outputs[i]` NULL or writable for `output_lens[i]` floats.
#[no_mangle]
pub unsafe extern "C" fn kestrel_session_run(
    session: *mut KestrelSession,
    inputs: *const *const f32,
    input_lens: *const usize,
    n_inputs: usize,
    outputs: *const *mut f32,
    output_lens: *const usize,
    n_outputs: usize,
) -> KestrelStatus {
    guard(|| {
        // SAFETY: NULL (reported) or live and unshared, by contract.
        let session = unsafe { arg_mut(session, "session") }?;
        // SAFETY: each array NULL (reported) or n entries long, by contract.
        let (inputs, input_lens, outputs, output_lens) = unsafe {
            (
                array(inputs, n_inputs, "inputs")?,
                array(input_lens, n_inputs, "input_lens")?,
                array(outputs, n_outputs, "outputs")?,
                array(output_lens, n_outputs, "output_lens")?,
            )
        };
        if let Some(i) = inputs.iter().position(|p| p.is_null()) {
            return Err(Failure::argument(format!("inputs[{i}] is NULL")));
        }
        if let Some(i) = outputs.iter().position(|p| p.is_null()) {
            return Err(Failure::argument(format!("outputs[{i}] is NULL")));
        }
        check_outputs(session, output_lens)?;
        let view = |i: usize| {
            // SAFETY: inputs[i] is not NULL (checked above) and readable for
            // input_lens[i] floats, by contract.
            unsafe { slice::from_raw_parts(inputs[i], input_lens[i]) }
        };
        let mut stack: [&[f32]; STACK_INPUTS] = [&[]; STACK_INPUTS];
        let heap: Vec<&[f32]>;
        let slices: &[&[f32]] = if n_inputs <= STACK_INPUTS {
            (0..n_inputs).for_each(|i| stack[i] = view(i));
            &stack[..n_inputs]
        } else {
            heap = (0..n_inputs).map(view).collect();
            &heap
        };
        // The library checks the input count and every length, naming the input.
        let results = session.session.run(slices)?;
        for (i, out) in results.iter().enumerate() {
            // SAFETY: outputs[i] is not NULL and holds output_lens[i] floats, which
            // check_outputs made equal to this output's size; no overlap, by contract.
            let dest = unsafe { slice::from_raw_parts_mut(outputs[i], output_lens[i]) };
            dest.copy_from_slice(out.data);
        }
        Ok(())
    })
}

/// A C array of `n` entries as a slice; an empty slice for n = 0 (NULL allowed then).
///
/// # Safety
/// `ptr` must be NULL or point to `n` readable, initialised entries.
unsafe fn array<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and n readable entries by contract.
    Ok(unsafe { slice::from_raw_parts(ptr, n) })
}
