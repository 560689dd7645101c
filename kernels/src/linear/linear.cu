// linear.cu: y = act(x wᵀ + bias) for a single row (batch 1), in fp32. More rows run as a
// 1×1 convolution through conv2d/cuda/igemm.cu's implicit GEMM (see linear/cuda.rs).
//
// Defines, prepended by linear/cuda.rs: IN_F OUT_F (in_features, out_features) and the
// epilogue HAS_BIAS ACT (and ACT_A/ACT_B: prelude.cuh). Indices fit in an int: cuda.rs refuses
// a weight of 2^31 elements or more.

// activate(): the fused activation, from cuda/prelude.cuh.

// GEMV: every weight is read once, so the kernel is bound by reading w (4·IN_F·OUT_F
// bytes); all that matters is that those reads are coalesced and plentiful. One warp per
// output feature o: lane l reads w[o][l], w[o][l + 32], ... (128 contiguous bytes per warp
// per step, x's matching 128 bytes shared by every warp through L1), into 4 independent
// sums so 4 loads are in flight per lane; then a shuffle butterfly adds the 32 lanes.
// 8 warps (256 threads) a block: OUT_F = 1000 gives 125 blocks, about one per SM.
#define WARPS 8

extern "C" __global__ void __launch_bounds__(WARPS * 32) linear_gemv_f32(
    const float* __restrict__ x,     // (1, IN_F)
    const float* __restrict__ w,     // (OUT_F, IN_F), as PyTorch
#if HAS_BIAS
    const float* __restrict__ bias,  // (OUT_F)
#endif
    float* __restrict__ y)           // (1, OUT_F)
{
    const int lane = threadIdx.x % 32;
    // Unsigned: the last block's warps reach OUT_F + WARPS - 1, which passes INT_MAX when
    // WARPS does not divide 2^31.
    const unsigned int o = blockIdx.x * WARPS + threadIdx.x / 32;
    // A warp past OUT_F still runs the loop (on row 0) and the shuffles, which every
    // thread of the block must reach; it just stores nothing.
    const bool live = o < OUT_F;
    const float* w_o = w + (live ? o : 0) * IN_F;  // (IN_F); o * IN_F < 2^31

    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    // Unsigned: i ends below IN_F + 32 and i + 96 below IN_F + 128, past INT_MAX for a
    // row within 128 of 2^31, where a signed i would wrap negative and read before w_o.
    unsigned int i = lane;
    for (; i + 96 < IN_F; i += 128) {
        s0 = fmaf(x[i], w_o[i], s0);
        s1 = fmaf(x[i + 32], w_o[i + 32], s1);
        s2 = fmaf(x[i + 64], w_o[i + 64], s2);
        s3 = fmaf(x[i + 96], w_o[i + 96], s3);
    }
    for (; i < IN_F; i += 32) {  // the last < 128 features
        s0 = fmaf(x[i], w_o[i], s0);
    }
    float sum = (s0 + s1) + (s2 + s3);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
        sum += __shfl_xor_sync(0xffffffff, sum, offset);
    }

    if (live && lane == 0) {
#if HAS_BIAS
        sum += bias[o];
#endif
        y[o] = activate(sum);
    }
}
