//! Element-wise activations: relu and relu6 (`hardtanh(x, 0, 6)`). No params: any length.

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
pub(crate) mod backend_tests;
#[cfg(test)]
mod tests;
