//! The gate as the unfused ops compute it: mean_hw, linear, act, linear, gate, each a
//! reference loop of its own op.

use super::SeGateParams;
use crate::linear::{reference::linear, LinearParams};
use crate::mean::{reference::mean_hw, MeanParams};

/// Slow on purpose: the test oracle. x: (n, c, hw)  gate: (n, c); `scratch` holds
/// [`SeGateParams::scratch_len`] floats (the pooled and hidden vectors), so the reference
/// executor's runs allocate nothing either.
pub fn se_gate(
    p: &SeGateParams,
    x: &[f32],
    [w1, w2]: [&[f32]; 2],
    [b1, b2]: [Option<&[f32]>; 2],
    gate: &mut [f32],
    scratch: &mut [f32],
) {
    let (n, c, hidden) = (p.n, p.c, p.hidden);
    let (pooled, h) = scratch[..p.scratch_len()].split_at_mut(n * c);
    let mean = MeanParams {
        n,
        c,
        h: p.hw,
        w: 1,
    };
    mean_hw(&mean, x, pooled);
    let squeeze = LinearParams {
        rows: n,
        in_features: c,
        out_features: hidden,
    };
    linear(&squeeze, pooled, w1, b1, h);
    h.iter_mut().for_each(|v| *v = p.act.apply(*v));
    let excite = LinearParams {
        rows: n,
        in_features: hidden,
        out_features: c,
    };
    linear(&excite, h, w2, b2, gate);
    gate.iter_mut().for_each(|v| *v = p.gate.apply(*v));
}
