//! The gate on the CPU: the SIMD mean and linear kernels in a row, the pooled and hidden
//! vectors in the caller's scratch (no allocation per run).

use super::SeGateParams;
use crate::linear::{cpu::LinearCpu, LinearParams};
use crate::mean::{cpu::mean_hw, MeanParams};
use crate::Isa;

/// An SE gate with both layers' weights packed for `isa`.
pub struct SeGateCpu {
    p: SeGateParams,
    isa: Isa,
    squeeze: LinearCpu,
    excite: LinearCpu,
}

impl SeGateCpu {
    /// `p` must be validated. w1: (hidden, c)  w2: (c, hidden)  b1: (hidden)  b2: (c)
    pub fn new(
        p: &SeGateParams,
        [w1, w2]: [&[f32]; 2],
        [b1, b2]: [Option<&[f32]>; 2],
        isa: Isa,
    ) -> SeGateCpu {
        let layer = |in_features, out_features| LinearParams {
            rows: p.n,
            in_features,
            out_features,
        };
        SeGateCpu {
            p: *p,
            isa,
            squeeze: LinearCpu::new(&layer(p.c, p.hidden), w1, b1, isa),
            excite: LinearCpu::new(&layer(p.hidden, p.c), w2, b2, isa),
        }
    }

    /// Floats of scratch `run` needs ([`SeGateParams::scratch_len`]).
    pub fn scratch_len(&self) -> usize {
        self.p.scratch_len()
    }

    /// gate = gate(excite(act(squeeze(mean_hw(x))))). x: (n, c, hw)  gate: (n, c)
    pub fn run(&self, x: &[f32], gate: &mut [f32], scratch: &mut [f32], threads: usize) {
        let p = &self.p;
        let (pooled, rest) = scratch[..self.scratch_len()].split_at_mut(p.n * p.c);
        let mean = MeanParams {
            n: p.n,
            c: p.c,
            h: p.hw,
            w: 1,
        };
        mean_hw(self.isa, &mean, x, pooled, threads);
        self.squeeze.run(pooled, p.act, rest, threads);
        self.excite.run(rest, p.gate, gate, threads);
    }
}
