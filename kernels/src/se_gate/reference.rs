//! The gate as the unfused ops compute it: mean_hw, linear, act, linear, gate, each a
//! reference loop of its own op.

use super::SeGateParams;
use crate::linear::{reference::linear, LinearParams};
use crate::mean::{reference::mean_hw, MeanParams};

/// Slow on purpose: the test oracle. x: (n, c, hw)  gate: (n, c)
pub fn se_gate(
    p: &SeGateParams,
    x: &[f32],
    [w1, w2]: [&[f32]; 2],
    [b1, b2]: [Option<&[f32]>; 2],
    gate: &mut [f32],
) {
    let (n, c, hidden) = (p.n, p.c, p.hidden);
    let mut pooled = vec![0.0; n * c];
    mean_hw(
        &MeanParams {
            n,
            c,
            h: p.hw,
            w: 1,
        },
        x,
        &mut pooled,
    );
    let squeeze = LinearParams {
        rows: n,
        in_features: c,
        out_features: hidden,
    };
    let mut h = vec![0.0; n * hidden];
    linear(&squeeze, &pooled, w1, b1, &mut h);
    h.iter_mut().for_each(|v| *v = p.act.apply(*v));
    let excite = LinearParams {
        rows: n,
        in_features: hidden,
        out_features: c,
    };
    linear(&excite, &h, w2, b2, gate);
    gate.iter_mut().for_each(|v| *v = p.gate.apply(*v));
}
