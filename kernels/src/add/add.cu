// add.cu: add_f32, y = act(a + b) element-wise (the residual add), one thread per element.
//
// Defines, prepended by add/cuda.rs: LEN, ACT (0 none, 1 relu, 2 relu6).
// LEN < 2^31: cuda.rs refuses longer tensors.
//
// a, b, y: (LEN). y may share a's or b's buffer (in place): no __restrict__, and each
// thread reads its elements before writing.

#define THREADS 256

// NaN passes through both activations, as in PyTorch: no fmaxf/fminf here.
__device__ __forceinline__ float activate(float v) {
#if ACT == 1
    return v < 0.f ? 0.f : v;
#elif ACT == 2
    return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
#else
    return v;
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS) add_f32(
    const float* a,  // (LEN)
    const float* b,  // (LEN)
    float* y)        // (LEN)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    y[i] = activate(a[i] + b[i]);
}
