// activation.cu: activation_f32, y = act(x) element-wise, one thread per element.
//
// Defines, prepended by activation/cuda.rs: LEN, ACT (0 none = a copy; the codes and
// ACT_A/ACT_B: prelude.cuh).
// LEN < 2^31: cuda.rs refuses longer tensors.
//
// x, y: (LEN). x and y may be the same buffer (in place): no __restrict__, and each
// thread reads its element before writing it.

#define THREADS 256

// activate(): the fused activation, from cuda/prelude.cuh.

extern "C" __global__ void __launch_bounds__(THREADS) activation_f32(
    const float* x,  // (LEN)
    float* y)        // (LEN), may be x
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    y[i] = activate(x[i]);
}
