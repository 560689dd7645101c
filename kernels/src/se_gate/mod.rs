//! Squeeze-and-excitation's gate in one kernel call: global average pool, the two 1×1
//! convs (linear layers on the pooled vector) with their activations, the gate
//! (sigmoid or hardsigmoid):
//!
//! ```text
//! pooled[n][c] = mean_hw x[n][c]                        x: (n, c, h, w)
//! hidden[n][j] = act(b1[j] + sum_c w1[j][c] pooled[n][c])   w1: (hidden, c)
//! gate[n][c]   = gate(b2[c] + sum_j w2[c][j] hidden[n][j])  w2: (c, hidden)
//! ```
//!
//! MobileNetV3 (relu, hardsigmoid), EfficientNet (silu, sigmoid) and RegNetY (relu,
//! sigmoid) then scale x by the gate: the engine's broadcast `mul`, the second of the two
//! kernel calls an SE block costs instead of five.

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;

use crate::error::{check_dims, checked_numel};
use crate::{Activation, ParamError};

/// x: (n, c, hw)  w1: (hidden, c)  w2: (c, hidden)  gate: (n, c)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeGateParams {
    /// Batch.
    pub n: usize,
    /// Channels of x, and of the gate.
    pub c: usize,
    /// Pixels per channel (h · w).
    pub hw: usize,
    /// Outputs of the first linear layer (the squeeze).
    pub hidden: usize,
    /// The first layer's activation.
    pub act: Activation,
    /// The gate: [`Activation::Sigmoid`] or [`Activation::HardSigmoid`].
    pub gate: Activation,
}

impl SeGateParams {
    /// Floats of scratch the CPU kernels need: the pooled (n, c) and hidden (n, hidden)
    /// vectors.
    pub fn scratch_len(&self) -> usize {
        self.n * (self.c + self.hidden)
    }

    /// Checks every size is at least 1, the element counts fit in `usize` and the gate is
    /// a sigmoid or a hardsigmoid.
    pub fn validate(&self) -> Result<(), ParamError> {
        check_dims(&[
            ("n", self.n),
            ("c", self.c),
            ("hw", self.hw),
            ("hidden", self.hidden),
        ])?;
        checked_numel("input", &[self.n, self.c, self.hw])?;
        checked_numel("w1", &[self.hidden, self.c])?;
        if !matches!(self.gate, Activation::Sigmoid | Activation::HardSigmoid) {
            return Err(ParamError(format!(
                "the gate is {}, not sigmoid or hardsigmoid",
                self.gate.describe()
            )));
        }
        Ok(())
    }
}
