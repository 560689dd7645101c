// depthwise.cu: depthwise 2-D convolution (groups == C_IN) over NCHW in fp32, with the
// fused epilogue y = act(acc + bias[c] + residual), the same order as the CPU kernels.
// Every other conv is igemm.cu's.
//
// Defines, prepended by conv2d/cuda/mod.rs:
//   the layer:    N_IMG C_IN IN_H IN_W C_OUT K_H K_W STRIDE_H STRIDE_W PAD_H PAD_W
//                 DIL_H DIL_W GROUPS OUT_H OUT_W (Conv2dParams::output_hw's result),
//                 MULT = C_OUT / C_IN
//   the epilogue: HAS_BIAS HAS_RESIDUAL ACT (and ACT_A/ACT_B: prelude.cuh)
// Every index fits in an int: cuda/mod.rs refuses tensors of 2^31 elements or more, and
// window coordinates (oy * STRIDE_H - PAD_H + ky * DIL_H) that would not fit one.
//
// x: (N_IMG, C_IN, IN_H, IN_W)  bias: (C_OUT)  residual, y: (N_IMG, C_OUT, OUT_H, OUT_W)

#define HW_IN (IN_H * IN_W)
#define HW_OUT (OUT_H * OUT_W)

// activate(): the fused activation, from cuda/prelude.cuh.

// Depthwise (groups == C_IN): output channel oc reads only input channel oc / MULT, through
// K_H*K_W weights. K is 9-49 taps, far too short for a GEMM tile, so: one thread per output
// value, consecutive threads along ox (x reads coalesced at stride 1, the window's rows
// shared through L1), the channel's few weights broadcast to the warp. 256 threads a
// block, one-dimensional grid over every output.
#define DW_THREADS 256

extern "C" __global__ void __launch_bounds__(DW_THREADS) conv2d_dw_f32(
    const float* __restrict__ x,         // (N_IMG, C_IN, IN_H, IN_W)
    const float* __restrict__ w,         // (C_OUT, 1, K_H, K_W), as PyTorch
#if HAS_BIAS
    const float* __restrict__ bias,      // (C_OUT)
#endif
#if HAS_RESIDUAL
    const float* __restrict__ residual,  // (N_IMG, C_OUT, OUT_H, OUT_W)
#endif
    float* __restrict__ y)               // (N_IMG, C_OUT, OUT_H, OUT_W)
{
    // Unsigned: the last block's threads reach N_IMG * C_OUT * HW_OUT + DW_THREADS - 1,
    // under 2^31 + DW_THREADS; a signed index would wrap negative and pass the test below
    // whenever DW_THREADS does not divide 2^31.
    const unsigned int t = blockIdx.x * DW_THREADS + threadIdx.x;
    if (t >= N_IMG * C_OUT * HW_OUT) {
        return;
    }
    const int idx = t;  // < 2^31
    const int ox = idx % OUT_W;
    const int oy = (idx / OUT_W) % OUT_H;
    const int oc = (idx / HW_OUT) % C_OUT;
    const int img = idx / (C_OUT * HW_OUT);
    const float* x_c = x + (img * C_IN + oc / MULT) * HW_IN;  // (IN_H, IN_W)
    const float* w_c = w + oc * (K_H * K_W);                  // (K_H, K_W)
    float acc = 0.f;
#pragma unroll
    for (int ky = 0; ky < K_H; ++ky) {
        const int iy = oy * STRIDE_H - PAD_H + ky * DIL_H;
        if (iy < 0 || iy >= IN_H) {
            continue;
        }
#pragma unroll
        for (int kx = 0; kx < K_W; ++kx) {
            const int ix = ox * STRIDE_W - PAD_W + kx * DIL_W;
            if (ix >= 0 && ix < IN_W) {
                acc = fmaf(w_c[ky * K_W + kx], x_c[iy * IN_W + ix], acc);
            }
        }
    }
#if HAS_BIAS
    acc += bias[oc];
#endif
#if HAS_RESIDUAL
    acc += residual[idx];
#endif
    y[idx] = activate(acc);
}

