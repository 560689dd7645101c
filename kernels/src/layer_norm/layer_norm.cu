// layer_norm.cu: layer norm of x viewed as (OUTER, NORM, INNER). A line is the NORM values
// x[o][0..NORM][i], INNER apart, normalised on its own:
//   y = activate((x - mean) * rstd * weight[k] + bias[k]),  rstd = 1 / sqrtf(var + EPS),
// mean and var (biased) in two passes over the line, a third one writing.
//
// Defines, prepended by layer_norm/cuda.rs: OUTER NORM INNER THREADS, EPS (the f32 bit
// pattern of eps), HAS_WEIGHT and HAS_BIAS (0 or 1: the kernel then takes that pointer),
// ACT (and ACT_A/ACT_B: prelude.cuh), and BLOCK_PER_LINE:
//   1 compiles layer_norm_block_f32, a block of THREADS (a multiple of 32) per line: for
//     INNER == 1 (a layer norm over the last dim, e.g. NHWC over C) and for long lines;
//   0 compiles layer_norm_thread_f32, a thread per line: for INNER >= 32 and NORM <= 1024
//     (a channel layer norm of NCHW), where consecutive threads take consecutive i and
//     every load of a warp is coalesced.
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more (the block
// kernel's loop counter, which steps past NORM, is 64-bit).
//
// x, y: (OUTER, NORM, INNER)  weight, bias: (NORM)
//
// y may share x's buffer (in place): no __restrict__ on them. Each thread writes only the
// elements it reads in the last pass, and every read of the first two passes is done
// before the block's last barrier.
//
// A NaN or an infinity in a line makes its mean or its variance NaN, so the whole line
// comes out NaN, as in PyTorch.

#define LINES (OUTER * INNER)

// activate(): the fused activation, from cuda/prelude.cuh.

__device__ __forceinline__ float affine(float v, int k, const float* weight, const float* bias) {
#if HAS_WEIGHT
    v *= weight[k];
#endif
#if HAS_BIAS
    v += bias[k];
#endif
    return activate(v);
}

#if HAS_WEIGHT
#define WEIGHT_PARAM const float* __restrict__ weight,  // (NORM)
#define WEIGHT weight
#else
#define WEIGHT_PARAM
#define WEIGHT nullptr
#endif
#if HAS_BIAS
#define BIAS_PARAM const float* __restrict__ bias,  // (NORM)
#define BIAS bias
#else
#define BIAS_PARAM
#define BIAS nullptr
#endif

#if BLOCK_PER_LINE

#define WARPS (THREADS / 32)

#if THREADS % 32 != 0 || THREADS > 1024
#error "layer_norm_block_f32: THREADS must be a multiple of 32, at most 1024"
#endif

// warp_sum(): from cuda/prelude.cuh.

// The sum of v over the block, in every thread: a shuffle butterfly per warp, the warp
// sums through `partial` (each reduction its own array, so no barrier is needed before the
// next one writes), then a butterfly over them in every warp.
__device__ __forceinline__ float block_sum(float v, float* partial) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    return warp_sum(lane < WARPS ? partial[lane] : 0.f);
}

// Block b owns line b: thread t takes elements t, t + THREADS, ...
extern "C" __global__ void __launch_bounds__(THREADS) layer_norm_block_f32(
    const float* x,  // (OUTER, NORM, INNER)
    WEIGHT_PARAM
    BIAS_PARAM
    float* y)        // (OUTER, NORM, INNER)
{
    __shared__ float sums[WARPS];
    __shared__ float squares[WARPS];
    const int o = blockIdx.x / INNER, i = blockIdx.x % INNER;
    const float* x_l = x + o * (NORM * INNER) + i;  // element k at x_l[k * INNER]
    float* y_l = y + o * (NORM * INNER) + i;

    // k is 64-bit: it ends below NORM + THREADS, past INT_MAX on a line within THREADS of
    // 2^31, where an int would wrap negative and read before x_l.
    float s = 0.f;
#pragma unroll 4
    for (long long k = threadIdx.x; k < NORM; k += THREADS) {
        s += x_l[k * INNER];
    }
    const float mean = block_sum(s, sums) / (float)NORM;

    float q = 0.f;
#pragma unroll 4
    for (long long k = threadIdx.x; k < NORM; k += THREADS) {
        const float d = x_l[k * INNER] - mean;
        q = fmaf(d, d, q);
    }
    const float rstd = 1.f / sqrtf(block_sum(q, squares) / (float)NORM + __int_as_float(EPS));

#pragma unroll 4
    for (long long k = threadIdx.x; k < NORM; k += THREADS) {
        y_l[k * INNER] = affine((x_l[k * INNER] - mean) * rstd, (int)k, WEIGHT, BIAS);
    }
}

#else

// Thread t owns line (o, i) = (t / INNER, t % INNER) and walks it three times alone.
extern "C" __global__ void __launch_bounds__(THREADS) layer_norm_thread_f32(
    const float* x,  // (OUTER, NORM, INNER)
    WEIGHT_PARAM
    BIAS_PARAM
    float* y)        // (OUTER, NORM, INNER)
{
    const unsigned int t = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (t >= LINES) return;
    const int o = (int)t / INNER, i = (int)t % INNER;
    const float* x_l = x + o * (NORM * INNER) + i;  // element k at x_l[k * INNER]
    float* y_l = y + o * (NORM * INNER) + i;

    float s = 0.f;
    for (int k = 0; k < NORM; k++) {
        s += x_l[k * INNER];
    }
    const float mean = s / (float)NORM;
    float q = 0.f;
    for (int k = 0; k < NORM; k++) {
        const float d = x_l[k * INNER] - mean;
        q = fmaf(d, d, q);
    }
    const float rstd = 1.f / sqrtf(q / (float)NORM + __int_as_float(EPS));
    for (int k = 0; k < NORM; k++) {
        y_l[k * INNER] = affine((x_l[k * INNER] - mean) * rstd, k, WEIGHT, BIAS);
    }
}

#endif
