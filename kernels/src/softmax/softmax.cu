// softmax.cu: softmax along one axis of x viewed as (OUTER, AXIS, INNER). A line is the
// AXIS values x[o][0..AXIS][i], INNER apart.
//
// Defines, prepended by softmax/cuda.rs: OUTER AXIS INNER THREADS, and BLOCK_PER_LINE:
//   1 compiles softmax_block_f32, a block of THREADS (a multiple of 32) per line: the
//     usual case, INNER == 1 (softmax over the last dim, e.g. (n, 1000) logits);
//   0 compiles softmax_thread_f32, a thread per line: for INNER >= 32 and AXIS <= 1024
//     (softmax over channels of NCHW), where consecutive threads take consecutive i and
//     every load of a warp is coalesced.
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more (the block
// kernel's loop counter, which steps past AXIS, is 64-bit).
//
// x, y: (OUTER, AXIS, INNER)
//
// Numerically stable, like the reference: m = max of the line, s = sum of expf(x - m),
// y = expf(x - m) / s, each exp computed twice rather than staged. fmaxf skips NaN (as
// the reference's f32::max does), but the NaN then reaches s, so a line holding a NaN is
// all NaN; so is a line holding +inf (inf - inf) or all -inf, as in PyTorch. expf, not
// __expf: the fast one loses ~2 ulp per unit of |x - m|.

#define LINES (OUTER * INNER)

#if BLOCK_PER_LINE

#define WARPS (THREADS / 32)

#if THREADS % 32 != 0 || THREADS > 1024
#error "softmax_block_f32: THREADS must be a multiple of 32, at most 1024"
#endif

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, offset));
    }
    return v;
}

// warp_sum(): from cuda/prelude.cuh.

// Block b owns line b: thread t takes elements t, t + THREADS, ... Each reduction is a
// shuffle butterfly per warp, the warp results through shared memory (one array per
// reduction, so no second barrier is needed before reuse), then a butterfly that every
// warp runs on them: every thread of the block ends with the block's result.
extern "C" __global__ void __launch_bounds__(THREADS) softmax_block_f32(
    const float* __restrict__ x,  // (OUTER, AXIS, INNER)
    float* __restrict__ y)        // (OUTER, AXIS, INNER)
{
    __shared__ float warp_maxes[WARPS];
    __shared__ float warp_sums[WARPS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int o = blockIdx.x / INNER, i = blockIdx.x % INNER;
    const float* x_l = x + o * (AXIS * INNER) + i;  // element a at x_l[a * INNER]
    float* y_l = y + o * (AXIS * INNER) + i;

    // a is 64-bit: it ends below AXIS + THREADS, past INT_MAX on a line within THREADS of
    // 2^31, where an int would wrap negative and read before x_l. (Unsigned would do, but
    // NVRTC then stops unrolling.) The 4x unroll is the one NVRTC chose for the int loops.
    float m = __int_as_float(0xff800000);  // -inf
#pragma unroll 4
    for (long long a = threadIdx.x; a < AXIS; a += THREADS) {
        m = fmaxf(m, x_l[a * INNER]);
    }
    m = warp_max(m);
    if (lane == 0) warp_maxes[warp] = m;
    __syncthreads();
    m = warp_max(lane < WARPS ? warp_maxes[lane] : __int_as_float(0xff800000));

    float s = 0.f;
#pragma unroll 4
    for (long long a = threadIdx.x; a < AXIS; a += THREADS) {
        s += expf(x_l[a * INNER] - m);
    }
    s = warp_sum(s);
    if (lane == 0) warp_sums[warp] = s;
    __syncthreads();
    s = warp_sum(lane < WARPS ? warp_sums[lane] : 0.f);

#pragma unroll 4
    for (long long a = threadIdx.x; a < AXIS; a += THREADS) {
        y_l[a * INNER] = expf(x_l[a * INNER] - m) / s;
    }
}

#else

// Thread t owns line (o, i) = (t / INNER, t % INNER) and walks it three times alone.
extern "C" __global__ void __launch_bounds__(THREADS) softmax_thread_f32(
    const float* __restrict__ x,  // (OUTER, AXIS, INNER)
    float* __restrict__ y)        // (OUTER, AXIS, INNER)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= LINES) return;
    const int o = (int)t / INNER, i = (int)t % INNER;
    const float* x_l = x + o * (AXIS * INNER) + i;  // element a at x_l[a * INNER]
    float* y_l = y + o * (AXIS * INNER) + i;

    float m = __int_as_float(0xff800000);  // -inf
    for (int a = 0; a < AXIS; a++) {
        m = fmaxf(m, x_l[a * INNER]);
    }
    float s = 0.f;
    for (int a = 0; a < AXIS; a++) {
        s += expf(x_l[a * INNER] - m);
    }
    for (int a = 0; a < AXIS; a++) {
        y_l[a * INNER] = expf(x_l[a * INNER] - m) / s;
    }
}

#endif
