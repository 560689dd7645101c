//! The one comparison rule of the tests: an output against its expected values, element
//! by element with `crate::compare::element_error` (the rule `kestrel compare` uses), within
//! a tolerance whose scale each test chooses.

use crate::compare::{element_error, max_finite_abs};

/// How close is close enough: |out − expected| ≤ `rtol · scale + atol` for every finite
/// expected value, NaN exactly where expected has NaN, infinities equal.
#[derive(Debug, Clone, Copy)]
pub struct Tol<'a> {
    /// The relative term, times the scale.
    pub rtol: f64,
    /// The absolute term: keeps an all-zero expectation from demanding exact zeros.
    pub atol: f64,
    /// What `rtol` is relative to.
    pub scale: Scale<'a>,
}

/// What `rtol` is relative to.
#[derive(Debug, Clone, Copy)]
pub enum Scale<'a> {
    /// max |expected| over the finite values: an error is measured against the tensor,
    /// as `kestrel compare` does. For kernels that reorder sums.
    Max,
    /// |expected[i]|: stricter for small values. For hand-derived values and sums that
    /// keep their order.
    Each,
    /// `mags[i]`: a bound given per element, e.g. the sum of a reduction's term
    /// magnitudes (the rounding of a sum scales with its terms, not its result).
    Given(&'a [f32]),
    /// Bit-identical (signed zeros too), NaN matching NaN; `rtol` and `atol` unused. For
    /// kernels that compute exactly what the reference does, in the same order.
    Bits,
}

impl Tol<'static> {
    /// Relative to max |expected|.
    pub const fn max(rtol: f64, atol: f64) -> Self {
        Tol {
            rtol,
            atol,
            scale: Scale::Max,
        }
    }

    /// Relative to each |expected[i]|.
    pub const fn each(rtol: f64, atol: f64) -> Self {
        Tol {
            rtol,
            atol,
            scale: Scale::Each,
        }
    }

    /// Bit-identical.
    pub const BITS: Self = Tol {
        rtol: 0.0,
        atol: 0.0,
        scale: Scale::Bits,
    };
}

impl<'a> Tol<'a> {
    /// Relative to `mags[i]` (as long as the output).
    pub const fn given(rtol: f64, mags: &'a [f32]) -> Self {
        Tol {
            rtol,
            atol: 0.0,
            scale: Scale::Given(mags),
        }
    }
}

/// Ok when `out` matches `expected` within `tol` (see [`Tol`]); otherwise the worst
/// element, its values and the allowance, for the failure message.
pub fn compare(out: &[f32], expected: &[f32], tol: Tol<'_>) -> Result<(), String> {
    if out.len() != expected.len() {
        return Err(format!(
            "{} outputs, expected {}",
            out.len(),
            expected.len()
        ));
    }
    if let Scale::Given(mags) = tol.scale {
        assert_eq!(
            mags.len(),
            expected.len(),
            "Tol::given: one magnitude per output"
        );
    }
    let max = max_finite_abs(expected);
    // The worst index by excess over its allowance: a NaN or infinity mismatch counts as
    // an infinite error.
    let mut worst: Option<(usize, f64, f64)> = None; // (index, error, excess)
    for (i, (&o, &e)) in out.iter().zip(expected).enumerate() {
        let (err, allowed) = match tol.scale {
            Scale::Bits if o.to_bits() == e.to_bits() || (o.is_nan() && e.is_nan()) => continue,
            Scale::Bits => (f64::INFINITY, 0.0),
            Scale::Max => (element_error(o, e), tol.rtol * max + tol.atol),
            Scale::Each => (
                element_error(o, e),
                tol.rtol * f64::from(e).abs() + tol.atol,
            ),
            Scale::Given(mags) => (
                element_error(o, e),
                tol.rtol * f64::from(mags[i]) + tol.atol,
            ),
        };
        // A NaN allowance (a magnitude of a NaN sum) allows nothing.
        let allowed = if allowed.is_nan() { 0.0 } else { allowed };
        // An infinite error is a NaN or infinity mismatch: no allowance covers it (a
        // magnitude under `Given` may itself be infinite).
        let excess = if err.is_infinite() {
            f64::INFINITY
        } else {
            err - allowed
        };
        if excess > 0.0 && worst.is_none_or(|(_, _, w)| excess > w) {
            worst = Some((i, err, excess));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, err, _)) => Err(format!(
            "|out - expected| = {err:e} at index {i} of {} (out {:?}, expected {:?}); \
             allowed {}",
            out.len(),
            out[i],
            expected[i],
            tol.describe(max, i)
        )),
    }
}

impl Tol<'_> {
    /// The allowance at index `i` spelt out, for failure messages.
    fn describe(&self, max: f64, i: usize) -> String {
        let (rtol, atol) = (self.rtol, self.atol);
        match self.scale {
            Scale::Max => format!("rtol {rtol:e} x max|expected| {max:e} + atol {atol:e}"),
            Scale::Each => format!("rtol {rtol:e} x |expected| + atol {atol:e}"),
            Scale::Given(m) => format!("rtol {rtol:e} x magnitude {:e} + atol {atol:e}", m[i]),
            Scale::Bits => "0 (bit-identical)".into(),
        }
    }
}

/// Asserts [`compare`], naming `what` and the worst element on failure.
#[track_caller]
pub fn assert_close(out: &[f32], expected: &[f32], tol: Tol<'_>, what: &str) {
    if let Err(e) = compare(out, expected, tol) {
        panic!("{what}: {e}");
    }
}

/// Hand-derived values are exact in f32 or within a rounding: rel 1e-6 of each value.
#[track_caller]
pub fn assert_near(out: &[f32], expected: &[f32]) {
    assert_close(out, expected, Tol::each(1e-6, 1e-7), "hand-derived values");
}
