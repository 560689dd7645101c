//! The test kit: what the tests of every crate share (behind the `testing` feature).
//!
//! - [`Rng`]: the one seeded generator (`crate::rng`), so a failing sweep replays.
//! - [`compare`] / [`assert_close`]: the one comparison rule, `crate::compare`'s element
//!   error within a [`Tol`] each test states with its reason.
//! - [`require_or_skip`]: a test whose machine lacks NVRTC, g++ or a GPU says `skipping …`
//!   and passes, unless `KESTREL_REQUIRE_NVRTC`, `KESTREL_REQUIRE_EMU` or `REQUIRE_CUDA`
//!   makes that resource a requirement.
//! - [`CountingAlloc`] / [`allocations`]: a counting global allocator, for the tests that
//!   prove a run allocates nothing.
//! - `everywhere::check` (this crate's own tests): one op's cases on every CPU instruction
//!   set × 1 and 2 threads and on every CUDA backend (NVRTC, emulator, GPU).

mod compare;
mod counting;
#[cfg(test)]
pub(crate) mod everywhere;
mod require;
#[cfg(test)]
mod tests;

pub use crate::rng::Rng;
pub use compare::{assert_close, assert_near, compare, Scale, Tol};
pub use counting::{allocations, CountingAlloc};
pub use require::{require_or_skip, Need};
