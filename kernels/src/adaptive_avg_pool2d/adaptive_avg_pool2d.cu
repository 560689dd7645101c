// adaptive_avg_pool2d.cu: adaptive_avg_pool2d_f32 over NCHW, one thread per output value.
//
// Defines, prepended by adaptive_avg_pool2d/cuda.rs: NC IN_H IN_W OUT_H OUT_W.
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more, and the
// window arithmetic (o + 1) * IN is done in long long.
//
// x: (NC, IN_H, IN_W)  y: (NC, OUT_H, OUT_W)   (NC = n * c)
//
// PyTorch's windows: output o of OUT on an axis of length IN averages
// [floor(o*IN/OUT), ceil((o+1)*IN/OUT)), never empty. Windows overlap when OUT does not
// divide IN, and several outputs share one input when OUT > IN.

#define TOTAL (NC * OUT_H * OUT_W)
#define THREADS 256

__device__ __forceinline__ int window_start(int o, int in, int out) {
    return (int)((long long)o * in / out);
}

__device__ __forceinline__ int window_end(int o, int in, int out) {
    return (int)(((long long)(o + 1) * in + out - 1) / out);
}

extern "C" __global__ void __launch_bounds__(THREADS) adaptive_avg_pool2d_f32(
    const float* __restrict__ x,  // (NC, IN_H, IN_W)
    float* __restrict__ y)        // (NC, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const int i = t;
    const int ox = i % OUT_W;
    const int oy = i / OUT_W % OUT_H;
    const float* x_c = x + i / (OUT_W * OUT_H) * (IN_H * IN_W);  // (IN_H, IN_W)

    const int y0 = window_start(oy, IN_H, OUT_H), y1 = window_end(oy, IN_H, OUT_H);
    const int x0 = window_start(ox, IN_W, OUT_W), x1 = window_end(ox, IN_W, OUT_W);
    float sum = 0.f;
    for (int iy = y0; iy < y1; iy++) {
        for (int ix = x0; ix < x1; ix++) {
            sum += x_c[iy * IN_W + ix];
        }
    }
    y[i] = sum / (float)((y1 - y0) * (x1 - x0));
}
