// se_gate.cu: squeeze-and-excitation's gate in one launch, fp32, a block per image:
//   pooled[c] = mean_hw x[img][c]                                  (shared memory)
//   hidden[j] = activate(b1[j] + sum_c w1[j][c] pooled[c])          (shared memory)
//   y[img][c] = GATE(b2[c] + sum_j w2[c][j] hidden[j])
//
// Defines, prepended by se_gate/cuda.rs: C HW HIDDEN, GATE (5 hardsigmoid, 8 sigmoid: the
// activation codes of prelude.cuh) and the first layer's ACT (ACT_A/ACT_B). C + HIDDEN
// floats of static shared memory: cuda.rs refuses more than MAX_SHARED. Indices fit in an
// int: cuda.rs refuses tensors of 2^31 elements or more.
//
// x: (n, C, HW)  w1: (HIDDEN, C)  w2: (C, HIDDEN)  b1: (HIDDEN)  b2: (C)  y: (n, C)
//
// Each phase gives a warp one row at a time: the pool a channel (lanes stride its pixels,
// coalesced), the linear layers an output (lanes stride the weight row, coalesced), and
// ends in a shuffle butterfly. One block per image keeps the three phases in one launch
// (blocks cannot wait for each other); the SE blocks of MobileNetV3 and EfficientNet pool
// at most 16 x 112 x 112 floats (800 KB), where one SM's ~100 GB/s costs ~8 us.

#define WARPS (THREADS / 32)

__device__ __forceinline__ float gate(float v) {
#if GATE == 5
    float r = v + 3.f;
    r = 0.f > r ? 0.f : r;
    return (6.f < r ? 6.f : r) / 6.f;
#else
    return 1.f / (1.f + expf(-v));
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS) se_gate_f32(
    const float* __restrict__ x,   // (n, C, HW)
    const float* __restrict__ w1,  // (HIDDEN, C)
    const float* __restrict__ w2,  // (C, HIDDEN)
    const float* __restrict__ b1,  // (HIDDEN)
    const float* __restrict__ b2,  // (C)
    float* __restrict__ y)         // (n, C)
{
    __shared__ float pooled[C];
    __shared__ float hidden[HIDDEN];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const float* xi = x + blockIdx.x * (C * HW);

    for (int c = warp; c < C; c += WARPS) {
        float s = 0.f;
        for (int p = lane; p < HW; p += 32) s += xi[c * HW + p];
        s = warp_sum(s);
        if (lane == 0) pooled[c] = s / (float)HW;
    }
    __syncthreads();
    for (int j = warp; j < HIDDEN; j += WARPS) {
        float s = 0.f;
        for (int k = lane; k < C; k += 32) s += w1[j * C + k] * pooled[k];
        s = warp_sum(s);
        if (lane == 0) hidden[j] = activate(s + b1[j]);
    }
    __syncthreads();
    for (int c = warp; c < C; c += WARPS) {
        float s = 0.f;
        for (int k = lane; k < HIDDEN; k += 32) s += w2[c * HIDDEN + k] * hidden[k];
        s = warp_sum(s);
        if (lane == 0) y[blockIdx.x * C + c] = gate(s + b2[c]);
    }
}
