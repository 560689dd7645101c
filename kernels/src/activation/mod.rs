//! Element-wise activations (`Activation`): relu, relu6, clamp, leaky_relu, hardsigmoid,
//! hardswish, elu, sigmoid, silu, tanh and gelu (both forms). No params beyond the
//! activation's own: any length.

pub mod cpu;
pub mod cuda;
/// Plain loops: the test oracle.
pub mod reference;

#[cfg(test)]
pub(crate) mod backend_tests;
#[cfg(test)]
mod tests;
