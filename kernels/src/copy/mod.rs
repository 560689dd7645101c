//! A strided copy (a gather) into a contiguous output: what the engine lowers permute and
//! transpose, slice / chunk / split along any dim, `contiguous`, and chains of views
//! (ShuffleNet's channel shuffle: view 5-D, transpose(1, 2), view back, then chunk) to.
//!
//! [`CopyParams`] is the view of x that y is a contiguous copy of: dims, x's stride per
//! dim and an offset, with 1-sized dims dropped and neighbours that walk x as one run
//! merged, so every kernel sees the fewest dims. [`CopyParams::permute`] and
//! [`CopyParams::slice`] build it for the common ops on a contiguous x.

use crate::error::checked_numel;
use crate::ParamError;

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

/// Most dims a copy may have after merging on CUDA (the kernel's index arithmetic); the
/// CPU takes any number.
pub const MAX_DIMS: usize = 6;

/// y is contiguous with shape `dims` (outermost first);
/// `y[i0, .., ik] = x[offset + Σ_j i_j·strides[j]]`.
///
/// Built by [`CopyParams::new`]: no 1-sized dim, no two neighbours that x walks as one run,
/// at least one dim; an empty output is `dims [0]`, `strides [1]`, offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyParams {
    /// Output dims (their product is the output's length).
    pub dims: Vec<usize>,
    /// x's stride per dim, in elements (0 repeats an element: a broadcast).
    pub strides: Vec<usize>,
    /// x's element at output index 0.
    pub offset: usize,
}

impl CopyParams {
    /// The copy of the view (`dims`, `strides`, `offset`) of x, simplified: 1-sized dims
    /// dropped, and dim j merged into dim j + 1 when `strides[j] == dims[j+1]·strides[j+1]`
    /// (x walks the two as one run). Panics unless `dims` and `strides` have one entry
    /// each per dim.
    pub fn new(dims: &[usize], strides: &[usize], offset: usize) -> CopyParams {
        assert_eq!(dims.len(), strides.len(), "CopyParams: one stride per dim");
        if dims.contains(&0) {
            return CopyParams {
                dims: vec![0],
                strides: vec![1],
                offset: 0,
            };
        }
        let mut p = CopyParams {
            dims: Vec::with_capacity(dims.len()),
            strides: Vec::with_capacity(dims.len()),
            offset,
        };
        for (&d, &s) in dims.iter().zip(strides) {
            if d == 1 {
                continue;
            }
            if let (Some(last_d), Some(last_s)) = (p.dims.last_mut(), p.strides.last_mut()) {
                if *last_s == d * s {
                    *last_d *= d;
                    *last_s = s;
                    continue;
                }
            }
            p.dims.push(d);
            p.strides.push(s);
        }
        if p.dims.is_empty() {
            p.dims.push(1);
            p.strides.push(1);
        }
        p
    }

    /// `x.permute(perm)` of a contiguous x of `shape`, and the output's shape
    /// (`shape[perm[i]]`). Err unless `perm` is a permutation of `0..shape.len()`.
    pub fn permute(
        shape: &[usize],
        perm: &[usize],
    ) -> Result<(Vec<usize>, CopyParams), ParamError> {
        let mut seen = vec![false; shape.len()];
        let is_perm = perm.len() == shape.len()
            && perm
                .iter()
                .all(|&d| d < shape.len() && !std::mem::replace(&mut seen[d], true));
        if !is_perm {
            return Err(ParamError(format!(
                "permute: {perm:?} is not a permutation of the {} dims of {shape:?}",
                shape.len()
            )));
        }
        let strides = contiguous_strides(shape)?;
        let out: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
        let out_strides: Vec<usize> = perm.iter().map(|&d| strides[d]).collect();
        Ok((out.clone(), CopyParams::new(&out, &out_strides, 0)))
    }

    /// `len` elements of dim `dim` of a contiguous x of `shape`, from `start`, `step` apart
    /// (`x[.., start : start + len·step : step, ..]`: slice, narrow, chunk, split), and
    /// the output's shape. Err unless `dim` is a dim, `step` ≥ 1, and (when len > 0) the
    /// last element `start + (len − 1)·step` lies inside the dim.
    pub fn slice(
        shape: &[usize],
        dim: usize,
        start: usize,
        len: usize,
        step: usize,
    ) -> Result<(Vec<usize>, CopyParams), ParamError> {
        let Some(&size) = shape.get(dim) else {
            return Err(ParamError(format!(
                "slice: dim {dim} of {shape:?}, which has {} dims",
                shape.len()
            )));
        };
        if step == 0 {
            return Err(ParamError("slice: step must be at least 1, got 0".into()));
        }
        if let Some(n) = len.checked_sub(1) {
            let last = n.checked_mul(step).and_then(|l| l.checked_add(start));
            if last.is_none_or(|last| last >= size) {
                return Err(ParamError(format!(
                    "slice: {len} elements from {start} step {step} run past dim {dim} of \
                     {shape:?}"
                )));
            }
        }
        let mut strides = contiguous_strides(shape)?;
        let offset = if len > 0 { start * strides[dim] } else { 0 };
        strides[dim] *= step;
        let mut out = shape.to_vec();
        out[dim] = len;
        Ok((out.clone(), CopyParams::new(&out, &strides, offset)))
    }

    /// Output elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the output is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many elements of x, from 0, the copy may read: offset + the largest index + 1
    /// (0 when the output is empty). x must be at least this long.
    pub fn span(&self) -> usize {
        match self.is_empty() {
            true => 0,
            false => {
                let reach: usize = self
                    .dims
                    .iter()
                    .zip(&self.strides)
                    .map(|(d, s)| (d - 1) * s)
                    .sum();
                self.offset + reach + 1
            }
        }
    }

    /// Whether y is x's first `len()` elements as they are: one dim, stride 1, offset 0
    /// (a plain copy, or an alias).
    pub fn is_identity(&self) -> bool {
        self.dims.len() == 1 && self.strides[0] == 1 && self.offset == 0
    }

    /// Panics unless y is `len()` long and x spans the copy: the kernels' precondition.
    pub(crate) fn check(&self, x: &[f32], y: &[f32]) {
        // x: (≥ span)  y: (dims)
        assert_eq!(y.len(), self.len(), "copy: y length");
        assert!(
            x.len() >= self.span(),
            "copy: x has {} elements, the copy reads {}",
            x.len(),
            self.span()
        );
    }

    /// x's offset of output element `i` of the dims `..k` (k = dims.len() for an element,
    /// dims.len() − 1 for a row, and so on): every index from `i` by division.
    #[inline]
    pub(crate) fn offset_of(&self, mut i: usize, k: usize) -> usize {
        let mut at = self.offset;
        for d in (0..k).rev() {
            at += i % self.dims[d] * self.strides[d];
            i /= self.dims[d];
        }
        at
    }
}

/// The strides of a contiguous tensor of `shape`, or an error if it has too many elements.
fn contiguous_strides(shape: &[usize]) -> Result<Vec<usize>, ParamError> {
    checked_numel("input", shape)?;
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    Ok(strides)
}
