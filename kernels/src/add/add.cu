// add.cu: add_f32, y = act(a + b) element-wise (the residual add), one thread per element.
//
// Defines, prepended by add/cuda.rs: LEN, ACT (and ACT_A/ACT_B: prelude.cuh).
// LEN < 2^31: cuda.rs refuses longer tensors.
//
// a, b, y: (LEN). y may share a's or b's buffer (in place): no __restrict__, and each
// thread reads its elements before writing.

#define THREADS 256

// activate(): the fused activation, from cuda/prelude.cuh.

extern "C" __global__ void __launch_bounds__(THREADS) add_f32(
    const float* a,  // (LEN)
    const float* b,  // (LEN)
    float* y)        // (LEN)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    y[i] = activate(a[i] + b[i]);
}
