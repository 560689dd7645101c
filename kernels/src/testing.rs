//! Helpers shared by the unit tests.

/// Asserts `got` and `want` have equal lengths and agree element-wise within
/// `rel * |want| + abs`; NaN must match NaN, infinities must match exactly.
#[track_caller]
pub fn assert_close(got: &[f32], want: &[f32], rel: f32, abs: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "lengths differ: got {got:?}, want {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() || w.is_infinite() {
            g.is_nan() == w.is_nan() && (w.is_nan() || g == w)
        } else {
            (g - w).abs() <= rel * w.abs() + abs
        };
        assert!(
            ok,
            "element {i}: got {g}, want {w}\n got: {got:?}\nwant: {want:?}"
        );
    }
}

/// Hand-derived values are exact in f32 or within a rounding: rel 1e-6.
#[track_caller]
pub fn assert_near(got: &[f32], want: &[f32]) {
    assert_close(got, want, 1e-6, 1e-7);
}

/// xorshift64*: a tiny seeded generator, so sweeps are reproducible without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.f32()).collect()
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}
