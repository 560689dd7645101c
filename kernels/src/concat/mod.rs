//! Concatenation along one axis (`torch.cat`).
//!
//! Each input `i` is viewed as `(outer, inner[i])` where `inner[i]` = (size of the concat axis
//! in input `i`) * (product of the dims after it); the output is `(outer, sum(inner))`.
//! Concat along channels of NCHW: `outer = n`, `inner[i] = c_i * h * w`. Nothing to validate
//! beyond lengths.

/// The CPU copy, split over threads.
pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;
