// emu.h: just enough of CUDA for g++ to run Kestrel's kernels on the CPU (cuda/emu/mod.rs).
//
// The kernel sources are compiled unchanged (each in its own namespace, `extern "C"`
// stripped), so their *logic* is tested against the reference loops without a GPU.
//
// Execution model:
// - One block at a time, so `__shared__` is function-static storage (`static`): every
//   thread of the running block sees the same array, as on the GPU. It is filled with
//   0xff bytes (NaN floats) before each block, so a kernel reading shared memory it did
//   not write gets NaN, not a convenient zero.
// - Every CUDA thread of the block is a fiber (its own 128 KiB stack, a guard page below)
//   on one OS thread. The scheduler runs each fiber until it blocks at a barrier or
//   returns, then releases the barrier when every live thread waits at it. Deterministic,
//   and cheap: 30 ns per thread per __syncthreads (256 threads x 1000 barriers x 10
//   blocks in 0.08 s; with the ucontext fallback 470 ns), where waking an OS thread from
//   a condition variable costs microseconds. Running each thread as
//   far as it can go before the next one starts is also the worst case for a missing
//   __syncthreads: a read-before-write or write-before-read race shows up as a wrong
//   value every time instead of once in a while.
// - __syncthreads() waits for the block's live threads (those that have not returned:
//   out-of-range threads may `return` early, as sm_70+ allows). Threads of one block
//   waiting at different __syncthreads (different source lines) are reported as an
//   error: that is undefined behaviour on the GPU.
// - Warp shuffles / votes / __syncwarp wait for the live lanes of the calling warp
//   (lane = linear thread index % 32), so `if (warp == 0) { ...shuffle reduction... }`
//   works; every live lane of the warp must call them together.
// - Buffers end at a PROT_NONE page: reading or writing past the end of an input, const
//   or output segfaults, and the handler names the case, launch, block and thread.
// - A "wide" case (tail.rs's `run_tail`) puts 16 GiB of reserved, inaccessible address
//   space on either side of each buffer instead, and may start the grid at a later block:
//   a small buffer then stands for the window of a 2^31-element tensor a kernel's last
//   blocks touch, and an index that wrapped past 2^31 faults.
#pragma once

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <type_traits>
#include <unistd.h>
#include <vector>

// ---- CUDA keywords -----------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
// Every __shared__ variable lands in one linker section, which each block start fills
// with 0xff bytes (a NaN in every float, -1 in every int): like CUDA shared memory it has
// no initial value a kernel may rely on, and a read of a word no thread wrote shows.
#define __shared__ static __attribute__((section("emu_shared")))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
        : x(x_), y(y_), z(z_) {}
};

// Vector types, with CUDA's alignment (a float4 load needs a 16-byte aligned address).
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

// One OS thread runs every fiber: the scheduler sets these before it resumes a thread.
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline constexpr int warpSize = 32;

// ---- math and bit casts ----------------------------------------------------------
using std::isfinite;
using std::isinf;
using std::isnan;

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline float __int2float_rn(int i) { return (float)i; }
inline int __mul24(int a, int b) { return a * b; }
inline unsigned int __umul24(unsigned int a, unsigned int b) { return a * b; }
inline void __threadfence() {}
inline void __threadfence_block() {}
// CUDA's __saturatef maps NaN to 0.
inline float __saturatef(float x) { return x > 0.f ? (x < 1.f ? x : 1.f) : 0.f; }

inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, 4);
    return i;
}
inline float __uint_as_float(unsigned int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int i;
    memcpy(&i, &f, 4);
    return i;
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }

// CUDA's min/max: every integer width, and fminf/fmaxf for floating point.
template <class A, class B>
inline auto min(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) {
        return (T)fmin((T)a, (T)b);
    } else {
        return (T)a < (T)b ? (T)a : (T)b;
    }
}
template <class A, class B>
inline auto max(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) {
        return (T)fmax((T)a, (T)b);
    } else {
        return (T)a > (T)b ? (T)a : (T)b;
    }
}

template <class T>
inline T __ldg(const T* p) {
    return *p;
}

// One OS thread runs the block's threads, one at a time: plain read-modify-writes are
// atomic here.
template <class T>
inline T atomicAdd(T* p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
    T old = *p;
    *p = old > v ? old : v;
    return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
    T old = *p;
    *p = old < v ? old : v;
    return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
    T old = *p;
    if (old == compare) *p = v;
    return old;
}

// The fiber scheduler and buffers (emu_fibers.h), then what the kernels call on top of it
// and the driver emu/mod.rs's generated main() calls (emu_run.h).
#include "emu_fibers.h"
#include "emu_run.h"
