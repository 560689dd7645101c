//! Element-wise add of two same-shape tensors (the residual add). No params: any length.

pub mod cpu;
pub mod cuda;
pub mod reference;

#[cfg(test)]
mod cuda_tests;
#[cfg(test)]
mod tests;
