//! The one error type of this crate, and the checks every op's `validate` shares.

/// An attribute or shape the op cannot take; the message says which and why, e.g.
/// "stride must be at least 1, got [0, 1]" or "kernel 7x7 (dilated) is larger than the padded input 5x5".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// Each named dimension must be at least 1: "c_in must be at least 1, got 0".
pub(crate) fn check_dims(dims: &[(&str, usize)]) -> Result<(), ParamError> {
    match dims.iter().find(|(_, v)| *v == 0) {
        Some((name, v)) => Err(ParamError(format!("{name} must be at least 1, got {v}"))),
        None => Ok(()),
    }
}

/// `eps` (added to a variance) must be finite and at least 0: "eps must be finite and at
/// least 0, got -1".
pub(crate) fn check_eps(eps: f32) -> Result<(), ParamError> {
    match eps.is_finite() && eps >= 0.0 {
        true => Ok(()),
        false => Err(ParamError(format!(
            "eps must be finite and at least 0, got {eps}"
        ))),
    }
}

/// Both entries of a per-axis attribute must be at least 1: "stride must be at least 1, got [0, 1]".
pub(crate) fn check_pair(name: &str, v: [usize; 2]) -> Result<(), ParamError> {
    if v.contains(&0) {
        return Err(ParamError(format!("{name} must be at least 1, got {v:?}")));
    }
    Ok(())
}

/// The element count of a shape, or an error if it does not fit in `usize`
/// (attributes come from model files, so absurd values must fail here, not overflow later).
pub(crate) fn checked_numel(what: &str, shape: &[usize]) -> Result<usize, ParamError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| ParamError(format!("{what} shape {shape:?} has too many elements")))
}

/// `d * (k - 1) + 1`: how far a dilated kernel of `k` taps reaches, or `None` on overflow.
pub(crate) fn dilated_extent(k: usize, d: usize) -> Option<usize> {
    k.checked_sub(1)?.checked_mul(d)?.checked_add(1)
}

/// What every convolution checks, conv2d and conv_transpose2d alike: x's
/// `[n, c_in, h, w]`, c_out, the kernel `[kh, kw]` and groups at least 1, stride and
/// dilation at least 1, and both channel counts divisible by groups: "c_out 5 is not
/// divisible by groups 2".
pub(crate) fn check_conv(
    x: [usize; 4],
    c_out: usize,
    kernel: [usize; 2],
    [stride, dilation]: [[usize; 2]; 2],
    groups: usize,
) -> Result<(), ParamError> {
    let [n, c_in, h, w] = x;
    let [kh, kw] = kernel;
    check_dims(&[
        ("n", n),
        ("c_in", c_in),
        ("h", h),
        ("w", w),
        ("c_out", c_out),
        ("kh", kh),
        ("kw", kw),
        ("groups", groups),
    ])?;
    check_pair("stride", stride)?;
    check_pair("dilation", dilation)?;
    for (name, c) in [("c_in", c_in), ("c_out", c_out)] {
        if c % groups != 0 {
            return Err(ParamError(format!(
                "{name} {c} is not divisible by groups {groups}"
            )));
        }
    }
    Ok(())
}
