use crate::Activation;

/// Slow on purpose: the test oracle.
///
/// y = max(x, 0); NaN stays NaN, as in PyTorch (`f32::max` would turn it into 0).
pub fn relu(x: &[f32], y: &mut [f32]) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "relu: x and y lengths");
    for (xv, yv) in x.iter().zip(y.iter_mut()) {
        *yv = if *xv < 0.0 { 0.0 } else { *xv };
    }
}

/// Slow on purpose: the test oracle.
///
/// y = min(max(x, 0), 6); NaN stays NaN, as in PyTorch.
pub fn relu6(x: &[f32], y: &mut [f32]) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "relu6: x and y lengths");
    for (xv, yv) in x.iter().zip(y.iter_mut()) {
        *yv = xv.clamp(0.0, 6.0); // f32::clamp keeps NaN
    }
}

/// Slow on purpose: the test oracle.
///
/// y = act(x), each value computed in f64 with exact math (`exp`, `tanh`, and an erf good
/// to ~1e-12), so that it checks the f32 polynomials the kernels use; the exact
/// activations are `Activation::apply` itself.
pub fn activate(act: Activation, x: &[f32], y: &mut [f32]) {
    // x, y: (len)
    assert_eq!(x.len(), y.len(), "activate: x and y lengths");
    for (xv, yv) in x.iter().zip(y.iter_mut()) {
        *yv = apply(act, *xv);
    }
}

/// One value of [`activate`].
pub fn apply(act: Activation, v: f32) -> f32 {
    if act.is_exact() {
        return act.apply(v);
    }
    let x = v as f64;
    let y = match act {
        Activation::Elu(_) if x > 0.0 => x,
        Activation::Elu(alpha) => alpha as f64 * x.exp_m1(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
        _ => unreachable!("{act:?} is exact"),
    };
    y as f32
}

/// erf in f64: its Taylor series up to |x| = 3 (~1e-12), past that 1 − erfc from erfc's
/// asymptotic series (erfc(3) = 2.2e-5, known there to ~1e-9). NaN stays NaN.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let e = if a <= 3.0 {
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a.is_finite() {
        let inv = 1.0 / (2.0 * a * a);
        let series = 1.0 - inv + 3.0 * inv * inv - 15.0 * inv * inv * inv;
        1.0 - (-a * a).exp() / (a * std::f64::consts::PI.sqrt()) * series
    } else {
        1.0 // ±inf; NaN took the first branch's comparison as false and lands here too
    };
    match x.is_nan() {
        true => f64::NAN,
        false => e.copysign(x),
    }
}
