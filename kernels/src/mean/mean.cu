// mean.cu: mean_hw_f32, the mean over H and W of NCHW (x.mean([2, 3])), a block per plane.
//
// Defines, prepended by mean/cuda.rs: NC PLANE (= h * w) THREADS (a multiple of 32, at
// most 1024). Every index fits in an int: cuda.rs refuses inputs of 2^31 elements or more
// (the loop counter, which steps past PLANE, is 64-bit).
//
// x: (NC, PLANE)  y: (NC)
//
// Block b sums plane b: thread t adds x[t], x[t + THREADS], ... (coalesced), then the
// block adds its THREADS partial sums: a shuffle butterfly in each warp, the warp sums
// through shared memory, and a second butterfly that every warp runs on them (so every
// thread of the block takes part in every shuffle). ResNet's 7x7 head: PLANE 49, 64
// threads; 2048 planes give 2048 blocks.

#define WARPS (THREADS / 32)

#if THREADS % 32 != 0 || THREADS > 1024
#error "mean_hw_f32: THREADS must be a multiple of 32, at most 1024"
#endif

// warp_sum(): from cuda/prelude.cuh.

extern "C" __global__ void __launch_bounds__(THREADS) mean_hw_f32(
    const float* __restrict__ x,  // (NC, PLANE)
    float* __restrict__ y)        // (NC)
{
    __shared__ float warp_sums[WARPS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const float* x_c = x + blockIdx.x * PLANE;  // (PLANE)

    float sum = 0.f;
    // j is 64-bit: it ends below PLANE + THREADS, past INT_MAX for a plane within THREADS
    // of 2^31, where an int would wrap negative and read before x_c. (Unsigned would do,
    // but NVRTC then stops unrolling.) The 4x unroll, loads in flight, is the one NVRTC
    // chose for the int loop.
#pragma unroll 4
    for (long long j = threadIdx.x; j < PLANE; j += THREADS) {
        sum += x_c[j];
    }
    sum = warp_sum(sum);
    if (lane == 0) warp_sums[warp] = sum;
    __syncthreads();
    sum = warp_sum(lane < WARPS ? warp_sums[lane] : 0.f);
    if (threadIdx.x == 0) y[blockIdx.x] = sum / (float)PLANE;
}
