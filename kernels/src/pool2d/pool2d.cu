// pool2d.cu: max_pool2d_f32 and avg_pool2d_f32 over NCHW, one thread per output value.
//
// Defines, prepended by pool2d/cuda.rs:
//   NC IN_H IN_W OUT_H OUT_W (Pool2dParams::output_hw's result) K_H K_W STRIDE_H STRIDE_W
//   PAD_H PAD_W, and POOL_MAX: 1 compiles max_pool2d_f32 (with DIL_H DIL_W),
//   0 compiles avg_pool2d_f32 (with COUNT_INCLUDE_PAD 0/1).
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more, and
// window coordinates (oy * STRIDE_H - PAD_H + ky * DIL_H, IN_H + PAD_H, ...) that would
// not fit one.
//
// x: (NC, IN_H, IN_W)  y: (NC, OUT_H, OUT_W)   (NC = n * c)
//
// Pools read each input about K_H*K_W / (STRIDE_H*STRIDE_W) times and do no arithmetic to
// speak of, so they are bound by memory: consecutive threads take consecutive outputs
// along ox, so a warp's loads of one window row are STRIDE_W floats apart and mostly hit
// the same cache lines.

#define TOTAL (NC * OUT_H * OUT_W)
#define THREADS 256

#if POOL_MAX

// PyTorch's windows: tap (ky, kx) reads x[oy*STRIDE_H - PAD_H + ky*DIL_H][ox*... + kx*DIL_W];
// padding acts as -inf (it is skipped). A NaN anywhere in the window wins, as in PyTorch's
// `val > max || isnan(val)` (written v != v: no headers).
extern "C" __global__ void __launch_bounds__(THREADS) max_pool2d_f32(
    const float* __restrict__ x,  // (NC, IN_H, IN_W)
    float* __restrict__ y)        // (NC, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const int i = t;
    const int ox = i % OUT_W;
    const int oy = i / OUT_W % OUT_H;
    const float* x_c = x + i / (OUT_W * OUT_H) * (IN_H * IN_W);  // (IN_H, IN_W)
    const int y0 = oy * STRIDE_H - PAD_H;
    const int x0 = ox * STRIDE_W - PAD_W;

    float m = __int_as_float(0xff800000);  // -inf
#pragma unroll
    for (int ky = 0; ky < K_H; ky++) {
        const int iy = y0 + ky * DIL_H;
        if (iy < 0 || iy >= IN_H) continue;
#pragma unroll
        for (int kx = 0; kx < K_W; kx++) {
            const int ix = x0 + kx * DIL_W;
            if (ix < 0 || ix >= IN_W) continue;
            const float v = x_c[iy * IN_W + ix];
            if (v > m || v != v) m = v;
        }
    }
    y[i] = m;
}

#else

// PyTorch's divisor rule: the window [o*S - P, min(o*S - P + K, LEN + P)) is measured
// (pool size) before it is clipped to the input, then clipped and summed. The divisor is
// the pool size with COUNT_INCLUDE_PAD, else the taps inside the input; a window wholly
// outside the input (ceil mode only) gives 0.
extern "C" __global__ void __launch_bounds__(THREADS) avg_pool2d_f32(
    const float* __restrict__ x,  // (NC, IN_H, IN_W)
    float* __restrict__ y)        // (NC, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const int i = t;
    const int ox = i % OUT_W;
    const int oy = i / OUT_W % OUT_H;
    const float* x_c = x + i / (OUT_W * OUT_H) * (IN_H * IN_W);  // (IN_H, IN_W)

    int y0 = oy * STRIDE_H - PAD_H;
    int y1 = min(y0 + K_H, IN_H + PAD_H);
    int x0 = ox * STRIDE_W - PAD_W;
    int x1 = min(x0 + K_W, IN_W + PAD_W);
    // Measured before clipping: the divisor with COUNT_INCLUDE_PAD.
    int divisor = (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0);
    y1 = min(y1, IN_H);
    x0 = max(x0, 0);
    x1 = min(x1, IN_W);
    if (y0 >= y1 || x0 >= x1) {
        y[i] = 0.f;
        return;
    }
#if !COUNT_INCLUDE_PAD
    divisor = (y1 - y0) * (x1 - x0);
#endif

    float sum = 0.f;
    for (int iy = y0; iy < y1; iy++) {
        for (int ix = x0; ix < x1; ix++) {
            sum += x_c[iy * IN_W + ix];
        }
    }
    y[i] = sum / (float)divisor;
}

#endif
