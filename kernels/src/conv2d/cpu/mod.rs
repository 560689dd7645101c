//! conv2d on the CPU: the packed GEMM (`gemm.rs`, im2col folded into its packing),
//! Winograd (`winograd/`), the direct kernel (`direct.rs`) and the depthwise kernel
//! (`depthwise/`).

pub mod depthwise;
pub mod direct;
pub mod gemm;
mod im2col;
pub mod winograd;
