use super::LayerNormParams;
use crate::activation::reference::apply;
use crate::Activation;

/// Slow on purpose: the test oracle.
///
/// Each line in f64, two passes: mean = Σx / norm, var = Σ(x - mean)² / norm, then
/// `y = act((x - mean) / sqrt(var + eps) · weight + bias)` (weight 1 and bias 0 when
/// absent), the activation on the f32 value as `activation::reference` computes it. A
/// line holding a NaN or an infinity comes out all NaN, as in PyTorch.
pub fn layer_norm(
    p: &LayerNormParams,
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    act: Activation,
    y: &mut [f32],
) {
    // x, y: (outer, norm, inner)  weight, bias: (norm)
    p.check(x, weight, bias, y);
    let block = p.norm * p.inner;
    for (x_o, y_o) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
        for i in 0..p.inner {
            let line = || (0..p.norm).map(|k| (k, k * p.inner + i));
            let value = |j: usize| f64::from(x_o[j]);
            let mean = line().map(|(_, j)| value(j)).sum::<f64>() / p.norm as f64;
            let var = line().map(|(_, j)| (value(j) - mean).powi(2)).sum::<f64>() / p.norm as f64;
            let rstd = 1.0 / (var + f64::from(p.eps)).sqrt();
            for (k, j) in line() {
                let w = weight.map_or(1.0, |w| f64::from(w[k]));
                let b = bias.map_or(0.0, |b| f64::from(b[k]));
                y_o[j] = apply(act, ((value(j) - mean) * rstd * w + b) as f32);
            }
        }
    }
}
