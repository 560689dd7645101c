// conv_transpose2d.cu: conv_transpose2d_f32 over NCHW, one thread per output value.
//
// Defines, prepended by conv_transpose2d/cuda.rs: N C_IN IN_H IN_W C_OUT OUT_H OUT_W
// (ConvTranspose2dParams::output_hw's result) K_H K_W STRIDE_H STRIDE_W PAD_H PAD_W DIL_H
// DIL_W GROUPS HAS_BIAS, and the activation's ACT (prelude.cuh).
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more, and tap
// coordinates (oy + PAD_H, (K_H - 1) * DIL_H, ...) that would not fit one.
//
// x: (N, C_IN, IN_H, IN_W)  w: (C_IN, C_OUT / GROUPS, K_H, K_W)  bias: (C_OUT)
// y: (N, C_OUT, OUT_H, OUT_W)
//
// A gather, the transpose read from the output side: output oy takes tap ky from input
// row (oy + PAD_H - ky * DIL_H) / STRIDE_H when that divides exactly and lies in the
// input, and likewise along x; with STRIDE known at compile time the test is a multiply
// and a compare. For each valid tap the thread sums over its group's input channels, so
// consecutive threads (consecutive ox) read neighbouring x and the same weights.

#define CG_IN (C_IN / GROUPS)
#define CG_OUT (C_OUT / GROUPS)
#define TOTAL (N * C_OUT * OUT_H * OUT_W)
#define THREADS 256

// The input index that output o takes through tap k along one axis, or -1.
__device__ __forceinline__ int source(int o, int k, int stride, int pad, int dil, int len) {
    const int at = o + pad - k * dil;
    if (at < 0 || at % stride != 0) return -1;
    const int i = at / stride;
    return i < len ? i : -1;
}

extern "C" __global__ void __launch_bounds__(THREADS) conv_transpose2d_f32(
    const float* __restrict__ x,     // (N, C_IN, IN_H, IN_W)
    const float* __restrict__ w,     // (C_IN, CG_OUT, K_H, K_W)
#if HAS_BIAS
    const float* __restrict__ bias,  // (C_OUT)
#endif
    float* __restrict__ y)           // (N, C_OUT, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const int i = t;
    const int ox = i % OUT_W;
    const int oy = i / OUT_W % OUT_H;
    const int co = i / (OUT_W * OUT_H) % C_OUT;
    const int img = i / (OUT_W * OUT_H * C_OUT);
    const int g = co / CG_OUT;
    // x_g: (CG_IN, IN_H, IN_W)  w_co: weight of (g * CG_IN + ci, co % CG_OUT), ci apart by
    // CG_OUT * K_H * K_W
    const float* x_g = x + (img * C_IN + g * CG_IN) * (IN_H * IN_W);
    const float* w_co = w + (g * CG_IN * CG_OUT + co % CG_OUT) * (K_H * K_W);

    float acc = 0.f;
    for (int ky = 0; ky < K_H; ky++) {
        const int iy = source(oy, ky, STRIDE_H, PAD_H, DIL_H, IN_H);
        if (iy < 0) continue;
        for (int kx = 0; kx < K_W; kx++) {
            const int ix = source(ox, kx, STRIDE_W, PAD_W, DIL_W, IN_W);
            if (ix < 0) continue;
            const float* xp = x_g + iy * IN_W + ix;
            const float* wp = w_co + ky * K_W + kx;
            for (int ci = 0; ci < CG_IN; ci++) {
                acc += xp[ci * (IN_H * IN_W)] * wp[ci * (CG_OUT * K_H * K_W)];
            }
        }
    }
#if HAS_BIAS
    acc += bias[co];
#endif
    y[i] = activate(acc);
}
