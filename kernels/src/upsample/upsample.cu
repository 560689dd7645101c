// upsample.cu: upsample_nearest_f32 and upsample_bilinear_f32 over NCHW, one thread per
// output value.
//
// Defines, prepended by upsample/cuda.rs: NC IN_H IN_W OUT_H OUT_W.
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more.
//
// x: (NC, IN_H, IN_W)  y: (NC, OUT_H, OUT_W)   (NC = n * c)
//
// The source indices and weights come from cuda.rs as tables (UpsampleParams' rule, see
// upsample/mod.rs), indices stored as exact f32 values. Consecutive threads take
// consecutive ox, so a warp reads one or two source rows, mostly the same cache lines.

#define TOTAL (NC * OUT_H * OUT_W)
#define THREADS 256

// Output t's column, row and input plane.
struct Out {
    int ox, oy;
    const float* x_c;  // (IN_H, IN_W)
};

__device__ __forceinline__ Out locate(const float* x, int t) {
    Out o;
    o.ox = t % OUT_W;
    o.oy = t / OUT_W % OUT_H;
    o.x_c = x + t / (OUT_W * OUT_H) * (IN_H * IN_W);
    return o;
}

// y[oy][ox] = x[src_h[oy]][src_w[ox]]
extern "C" __global__ void __launch_bounds__(THREADS) upsample_nearest_f32(
    const float* __restrict__ x,      // (NC, IN_H, IN_W)
    const float* __restrict__ src_h,  // (OUT_H)
    const float* __restrict__ src_w,  // (OUT_W)
    float* __restrict__ y)            // (NC, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const Out o = locate(x, t);
    y[t] = o.x_c[(int)src_h[o.oy] * IN_W + (int)src_w[o.ox]];
}

// t_r = x[r][i0w]*l0w + x[r][i1w]*l1w for r = i0h, i1h, then y = t_i0h*l0h + t_i1h*l1h,
// each product and sum rounded on its own (__fmul_rn / __fadd_rn: no FMA contraction),
// as the CPU computes it: the same bits. Both taps are always read: Inf * 0 is NaN.
extern "C" __global__ void __launch_bounds__(THREADS) upsample_bilinear_f32(
    const float* __restrict__ x,       // (NC, IN_H, IN_W)
    const float* __restrict__ taps_h,  // (OUT_H, 4): i0, i1, l0, l1
    const float* __restrict__ taps_w,  // (OUT_W, 4)
    float* __restrict__ y)             // (NC, OUT_H, OUT_W)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= TOTAL) return;
    const Out o = locate(x, t);
    const float* th = taps_h + 4 * o.oy;
    const float* tw = taps_w + 4 * o.ox;
    const float* r0 = o.x_c + (int)th[0] * IN_W;
    const float* r1 = o.x_c + (int)th[1] * IN_W;
    const int c0 = (int)tw[0], c1 = (int)tw[1];
    const float t0 = __fadd_rn(__fmul_rn(r0[c0], tw[2]), __fmul_rn(r0[c1], tw[3]));
    const float t1 = __fadd_rn(__fmul_rn(r1[c0], tw[2]), __fmul_rn(r1[c1], tw[3]));
    y[t] = __fadd_rn(__fmul_rn(t0, th[2]), __fmul_rn(t1, th[3]));
}
