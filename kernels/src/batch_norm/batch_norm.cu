// batch_norm.cu: batch_norm_f32, inference batch norm as y = x * scale[c] + shift[c]
// (scale and shift folded once by batch_norm::scale_shift), one thread per element.
//
// Defines, prepended by batch_norm/cuda.rs: C SPATIAL (h * w; 1 after a linear layer),
// LEN (= n * C * SPATIAL, < 2^31: cuda.rs refuses longer tensors).
//
// x, y: (n, C, SPATIAL)  scale, shift: (C). y may share x's buffer (in place): no
// __restrict__ on them, and each thread reads its element before writing it.

#define THREADS 256

extern "C" __global__ void __launch_bounds__(THREADS) batch_norm_f32(
    const float* x,                   // (n, C, SPATIAL)
    const float* __restrict__ scale,  // (C)
    const float* __restrict__ shift,  // (C)
    float* y)                         // (n, C, SPATIAL)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    const int c = (int)i / SPATIAL % C;
    y[i] = fmaf(x[i], scale[c], shift[c]);
}
