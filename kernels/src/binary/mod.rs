//! Element-wise add, sub, mul and div with PyTorch's broadcasting: `y = act(a op b)`, where
//! a and b are broadcast to the output's shape (squeeze-excite's `scale * x` is a
//! (N, C, 1, 1) times an (N, C, H, W); ConvNeXt's layer scale a (C, 1, 1) weight times x;
//! `x * 2.0` a one-element b). [`BinaryParams`] merges the dims that can be walked as one,
//! so every kernel sees a few dims whose innermost run is contiguous or repeated.

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;

/// The arithmetic of a binary op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
}

impl BinaryOp {
    /// One f32 operation, as every backend computes it (so they agree bit for bit).
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
        }
    }

    /// The graph op's name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }
}

/// Where a binary op's operands come from: both are the step's inputs, or one is a
/// constant `C` (a weight or a number; `ConstA` when it is the left operand, as in
/// `1 − x`) and the other the step's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Operands<C> {
    /// a and b are inputs 0 and 1.
    Inputs,
    /// a is the constant, b input 0.
    ConstA(C),
    /// a is input 0, b the constant.
    ConstB(C),
}

impl<C: AsRef<[f32]>> Operands<C> {
    /// The constant, if one operand is.
    pub fn constant(&self) -> Option<&[f32]> {
        match self {
            Operands::Inputs => None,
            Operands::ConstA(c) | Operands::ConstB(c) => Some(c.as_ref()),
        }
    }

    /// The same operands, the constant borrowed.
    pub fn as_slices(&self) -> Operands<&[f32]> {
        match self {
            Operands::Inputs => Operands::Inputs,
            Operands::ConstA(c) => Operands::ConstA(c.as_ref()),
            Operands::ConstB(c) => Operands::ConstB(c.as_ref()),
        }
    }

    /// (a, b) given the step's inputs: `input(i)` is input i.
    pub fn pick<'a>(&'a self, input: impl Fn(usize) -> &'a [f32]) -> (&'a [f32], &'a [f32]) {
        match self {
            Operands::Inputs => (input(0), input(1)),
            Operands::ConstA(c) => (c.as_ref(), input(0)),
            Operands::ConstB(c) => (input(0), c.as_ref()),
        }
    }
}

/// Most dims a binary op may have after merging (the CUDA kernel's index arithmetic).
pub const MAX_DIMS: usize = 6;

/// The output's dims, outermost first, and each operand's stride per dim in elements (0
/// where it is broadcast), after dropping 1-sized dims and merging neighbours that both
/// operands walk contiguously. At least one dim; the innermost strides are 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryParams {
    /// Output dims (their product is the output's length).
    pub dims: Vec<usize>,
    /// a's stride per dim.
    pub a_strides: Vec<usize>,
    /// b's stride per dim.
    pub b_strides: Vec<usize>,
}

impl BinaryParams {
    /// The broadcast of `a` and `b` (PyTorch's rule: shapes right-aligned, each dim equal
    /// or 1 in one of them) and the params that walk it; Err says which dims clash.
    pub fn broadcast(a: &[usize], b: &[usize]) -> Result<(Vec<usize>, BinaryParams), String> {
        let rank = a.len().max(b.len());
        let at = |s: &[usize], i: usize| match i + s.len() >= rank {
            true => s[i + s.len() - rank],
            false => 1,
        };
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let (x, y) = (at(a, i), at(b, i));
            out.push(match (x, y) {
                _ if x == y => x,
                (1, _) => y,
                (_, 1) => x,
                _ => {
                    return Err(format!(
                        "shapes {a:?} and {b:?} do not broadcast (dim {i}: {x} vs {y})"
                    ))
                }
            });
        }
        let strides = |s: &[usize]| {
            let mut st = vec![0; rank];
            let mut step = 1;
            for i in (0..rank).rev() {
                let d = at(s, i);
                st[i] = if d == 1 { 0 } else { step };
                step *= d;
            }
            st
        };
        let p = BinaryParams::merged(&out, &strides(a), &strides(b));
        Ok((out, p))
    }

    fn merged(out: &[usize], sa: &[usize], sb: &[usize]) -> BinaryParams {
        let mut p = BinaryParams {
            dims: Vec::new(),
            a_strides: Vec::new(),
            b_strides: Vec::new(),
        };
        for i in 0..out.len() {
            if out[i] == 1 {
                continue;
            }
            // Merge into the previous dim when both operands step through it as one run.
            if let Some(last) = p.dims.len().checked_sub(1) {
                let d = out[i];
                if p.a_strides[last] == sa[i] * d && p.b_strides[last] == sb[i] * d {
                    p.dims[last] *= d;
                    p.a_strides[last] = sa[i];
                    p.b_strides[last] = sb[i];
                    continue;
                }
            }
            p.dims.push(out[i]);
            p.a_strides.push(sa[i]);
            p.b_strides.push(sb[i]);
        }
        if p.dims.is_empty() {
            p.dims.push(1);
            p.a_strides.push(0);
            p.b_strides.push(0);
        }
        p
    }

    /// Elements of the output.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the output is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements an operand with `strides` spans (its buffer's length).
    pub fn span(&self, strides: &[usize]) -> usize {
        self.dims
            .iter()
            .zip(strides)
            .map(|(d, s)| (d - 1) * s)
            .sum::<usize>()
            + 1
    }

    /// Panics unless a, b and y are the lengths `self` gives them: the kernels' shared
    /// precondition.
    pub(crate) fn check(&self, a: &[f32], b: &[f32], y: &[f32]) {
        // a: (span of a_strides), b: (span of b_strides), y: (product of dims)
        assert_eq!(y.len(), self.len(), "binary: y length");
        assert_eq!(a.len(), self.span(&self.a_strides), "binary: a length");
        assert_eq!(b.len(), self.span(&self.b_strides), "binary: b length");
    }

    /// a's and b's element offsets for output row `row` (all dims but the innermost).
    #[inline]
    pub(crate) fn row_offsets(&self, mut row: usize) -> (usize, usize) {
        let (mut ia, mut ib) = (0, 0);
        for d in (0..self.dims.len() - 1).rev() {
            let i = row % self.dims[d];
            row /= self.dims[d];
            ia += i * self.a_strides[d];
            ib += i * self.b_strides[d];
        }
        (ia, ib)
    }
}

#[cfg(test)]
mod tests {
    use super::BinaryParams;

    #[test]
    fn broadcasting_merges_what_walks_as_one() {
        let (out, p) = BinaryParams::broadcast(&[2, 8, 5, 7], &[2, 8, 1, 1]).unwrap();
        assert_eq!(out, [2, 8, 5, 7]);
        assert_eq!(
            (p.dims, p.a_strides, p.b_strides),
            (vec![16, 35], vec![35, 1], vec![1, 0])
        );
        let (out, p) = BinaryParams::broadcast(&[3, 4, 5], &[3, 4, 5]).unwrap();
        assert_eq!(out, [3, 4, 5]);
        assert_eq!(
            (p.dims, p.a_strides, p.b_strides),
            (vec![60], vec![1], vec![1])
        );
        let (out, p) = BinaryParams::broadcast(&[2, 6, 4, 4], &[6, 1, 1]).unwrap();
        assert_eq!(out, [2, 6, 4, 4]);
        assert_eq!(p.dims, [2, 6, 16]);
        assert_eq!((p.a_strides, p.b_strides), (vec![96, 16, 1], vec![0, 1, 0]));
        let (out, p) = BinaryParams::broadcast(&[1], &[2, 3]).unwrap();
        assert_eq!((out, p.dims, p.a_strides), (vec![2, 3], vec![6], vec![0]));
        let err = BinaryParams::broadcast(&[2, 3], &[4, 3]).unwrap_err();
        assert!(err.contains("dim 0: 2 vs 4"), "{err}");
    }
}
