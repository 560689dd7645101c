//! The test kit: what the tests of every crate share (behind the `testing` feature).
//!
//! - [`Rng`]: the one seeded generator (`crate::rng`), so a failing sweep replays.
//! - [`compare`] / [`assert_close`]: the one comparison rule, `crate::compare`'s element
//!   error within a [`Tol`] each test states with its reason.

mod compare;
#[cfg(test)]
mod tests;

pub use crate::rng::Rng;
pub use compare::{assert_close, assert_near, compare, Scale, Tol};
