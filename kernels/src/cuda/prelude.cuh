// prelude.cuh: put before every Kestrel kernel's source (after its #defines) by
// Launch::module_text, for what several kernels share.

#ifdef ACT
// The fused activation: ACT's codes and the ACT_A / ACT_B parameters (f32 bit patterns) are
// activation/cuda.rs's act_defines. NaN passes through every one, as in PyTorch: no
// fmaxf/fminf here. The piecewise-linear ones (codes 0-6) compute exactly what the CPU
// does; the others use CUDA's own expf, tanhf and erff.
__device__ __forceinline__ float activate(float v) {
#if ACT == 1
    return v < 0.f ? 0.f : v;
#elif ACT == 2
    return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
#elif ACT == 3
    const float lo = __int_as_float(ACT_A), hi = __int_as_float(ACT_B);
    v = lo > v ? lo : v;
    return hi < v ? hi : v;
#elif ACT == 4
    return 0.f < v ? v : v * __int_as_float(ACT_A);
#elif ACT == 5 || ACT == 6
    float r = v + 3.f;
    r = 0.f > r ? 0.f : r;
    r = (6.f < r ? 6.f : r) / 6.f;
#if ACT == 5
    return r;
#else
    return v * r;
#endif
#elif ACT == 7
    return 0.f < v ? v : __int_as_float(ACT_A) * (expf(v) - 1.f);
#elif ACT == 8
    return 1.f / (1.f + expf(-v));
#elif ACT == 9
    return v / (1.f + expf(-v));
#elif ACT == 10
    return tanhf(v);
#elif ACT == 11
    return 0.5f * v * (1.f + erff(v * 0.70710678f));
#elif ACT == 12
    return 0.5f * v * (1.f + tanhf(0.7978846f * (v + 0.044715f * v * v * v)));
#else
    return v;
#endif
}
#endif

// The sum of v over the 32 lanes of a warp, in every lane (a shuffle butterfly); every
// lane must call it together. The block reductions of mean.cu, softmax.cu, layer_norm.cu.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
        v += __shfl_xor_sync(0xffffffff, v, offset);
    }
    return v;
}

#if defined(MATH) && !defined(KESTREL_EMU)
// cp.async (sm_80+): global-to-shared copies that bypass the registers and run behind the
// math, committed in groups and waited for by group. 4-byte copies zero-fill when !valid
// (src-size 0 reads nothing, so `gmem` only has to be some valid address).
__device__ __forceinline__ void cp_async16(float* smem, const float* gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async4(float* smem, const float* gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem),
                 "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Tensor-core products with fp32 accumulation, d += a * b, one warp together; register
// layouts as in the PTX ISA (groupID = lane / 4, threadID_in_group = lane % 4).
// m16n8k8 on tf32: a (16x8) 4 registers, b (8x8) 2.
__device__ __forceinline__ void mma_tf32_16x8x8(float* d, const unsigned* a, const unsigned* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// m16n8k16 on fp16: a (16x16) 4 registers of two halves, b (16x8) 2.
__device__ __forceinline__ void mma_f16_16x8x16(float* d, const unsigned* a, const unsigned* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// fp32 to tf32: to nearest, ties away from zero (what precision::round_tf32 does on the
// host for the weights).
__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
// Two fp32 to one register of two fp16 (round to nearest even), `lo` in the low half.
__device__ __forceinline__ unsigned pack_half2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#endif
