// binary.cu: binary_f32, y = act(a op b) with broadcasting, one thread per output element.
//
// Defines, prepended by binary/cuda.rs: LEN (the output's length), OP (0 add, 1 sub, 2 mul,
// 3 div), the merged dims D0..D5 (outermost first, unused ones 1) and each operand's
// strides SA0..SA5, SB0..SB5 in elements (0 where broadcast), ACT (and ACT_A/ACT_B:
// prelude.cuh). LEN < 2^31 and every offset fits an int: cuda.rs refuses longer tensors.
//
// y may share a's buffer (in place, when a has y's shape): no __restrict__, and each thread
// reads its operands before writing.

#define THREADS 256

// activate(): the fused activation, from cuda/prelude.cuh.

extern "C" __global__ void __launch_bounds__(THREADS) binary_f32(
    const float* a,
    const float* b,
    float* y)  // (LEN)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    const unsigned int dims[6] = {D0, D1, D2, D3, D4, D5};
    const unsigned int sa[6] = {SA0, SA1, SA2, SA3, SA4, SA5};
    const unsigned int sb[6] = {SB0, SB1, SB2, SB3, SB4, SB5};
    unsigned int rest = i, ia = 0, ib = 0;
#pragma unroll
    for (int d = 5; d >= 0; d--) {
        const unsigned int k = rest % dims[d];
        rest /= dims[d];
        ia += k * sa[d];
        ib += k * sb[d];
    }
    const float x = a[ia], z = b[ib];
#if OP == 0
    y[i] = activate(x + z);
#elif OP == 1
    y[i] = activate(x - z);
#elif OP == 2
    y[i] = activate(x * z);
#else
    y[i] = activate(x / z);
#endif
}
