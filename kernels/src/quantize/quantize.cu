// quantize.cu: fake_quant_f32, y = dequantize(quantize(x)) element-wise as PyTorch's PT2E
// ops compute it (quantize/mod.rs), one thread per element.
//
// Defines, prepended by quantize/cuda.rs: LEN; INV and SCALE, the f32 bit patterns of the
// inverse scale and the scale; ZP, QMIN, QMAX, integers.
// LEN < 2^31: cuda.rs refuses longer tensors.

#define THREADS 256

extern "C" __global__ void __launch_bounds__(THREADS) fake_quant_f32(
    const float* __restrict__ x,  // (LEN)
    float* __restrict__ y)        // (LEN)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    // __fmul_rn and __fadd_rn: no contraction into an FMA, each step rounded as on the CPU.
    float q = __fadd_rn(rintf(__fmul_rn(x[i], __int_as_float(INV))), (float)ZP);
    // A NaN becomes 0, as PyTorch's integer cast makes it; fminf/fmaxf would drop it.
    q = isnan(q) ? 0.0f : fminf(fmaxf(q, (float)QMIN), (float)QMAX);
    y[i] = __fmul_rn(__fadd_rn(q, (float)(-ZP)), __int_as_float(SCALE));
}
