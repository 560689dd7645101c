// prelude.cuh: put before every Kestrel kernel's source (after its #defines) by
// Launch::module_text, for what several kernels share.

#ifdef ACT
// The fused activation, ACT 0 none, 1 relu, 2 relu6. NaN passes through both, as in
// PyTorch: no fmaxf/fminf here.
__device__ __forceinline__ float activate(float v) {
#if ACT == 1
    return v < 0.f ? 0.f : v;
#elif ACT == 2
    return v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
#else
    return v;
#endif
}
#endif
