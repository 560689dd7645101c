// emu.h: just enough of CUDA for g++ to run Kestrel's kernels on the CPU (cuda/emu.rs).
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
// - A "wide" case (emu.rs's `run_tail`) puts 16 GiB of reserved, inaccessible address
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

// ---- the fiber scheduler ---------------------------------------------------------
namespace emu {

enum State { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Fiber {
    void* sp;  // saved stack pointer while switched out
    int state;
    int line;  // source line of the barrier it waits at
};

typedef void (*Kernel)(float**);

constexpr size_t STACK_BYTES = 128 * 1024;
constexpr int MAX_THREADS = 1024;

inline Fiber fibers[MAX_THREADS];
inline char* stacks[MAX_THREADS];  // lazily mmapped, reused by every block
inline int n_threads;
inline int current;  // the running fiber
inline void* scheduler_sp;
inline Kernel kernel;
inline float** kernel_args;
inline uint64_t exchange[MAX_THREADS];  // warp shuffles and votes

// cp.async: each thread's copies not yet waited for, and how many groups it committed.
struct AsyncCopy {
    void* dst;
    const void* src;  // null: zero-fill
    int bytes;
    int group;  // the commit group it belongs to
};
inline std::vector<AsyncCopy> async_copies[MAX_THREADS];
inline int async_groups[MAX_THREADS];
// The section's bounds, which the linker defines once some variable is placed in it;
// weak, so a program whose kernels declare no __shared__ still links.
extern "C" char __start_emu_shared[] __attribute__((weak));
extern "C" char __stop_emu_shared[] __attribute__((weak));
inline void poison_shared() {
    if (__start_emu_shared && __stop_emu_shared)
        memset(__start_emu_shared, 0xff, (size_t)(__stop_emu_shared - __start_emu_shared));
}
inline void async_reset() {
    for (int t = 0; t < n_threads; t++) {
        async_copies[t].clear();
        async_groups[t] = 0;
    }
}
// mma.sync: each lane's A and B fragment registers, gathered to compute the warp's tile.
inline uint32_t mma_a[MAX_THREADS][4], mma_b[MAX_THREADS][2];

// What is running, for error messages.
inline int case_index = -1;
inline const char* launch_name = "";
inline int launch_index = -1;

inline bool in_block = false;  // blockIdx/threadIdx name the running thread

[[noreturn]] inline void fail(const char* what, int line) {
    fprintf(stderr, "emu: case %d", case_index);
    if (launch_index >= 0) fprintf(stderr, ", launch %d (%s)", launch_index, launch_name);
    if (in_block)
        fprintf(stderr, ", block (%u,%u,%u), thread (%u,%u,%u)", blockIdx.x, blockIdx.y,
                blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    fprintf(stderr, ": %s", what);
    if (line > 0) fprintf(stderr, " (line %d)", line);
    fprintf(stderr, "\n");
    fflush(stderr);
    _exit(3);
}

}  // namespace emu

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
// emu_switch(save, to): saves the callee-saved registers and the FP control words on the
// current stack, stores the stack pointer in *save, and resumes the stack `to`.
extern "C" void emu_switch(void** save, void* to);
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw 12(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw 12(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

namespace emu {

[[noreturn]] inline void fiber_main();

// A fresh stack that emu_switch "returns" into fiber_main on: the frame emu_switch pops
// (FP control words, six registers, return address), 16-byte aligned as a call leaves it.
inline void* fresh_stack(char* base) {
    uintptr_t top = ((uintptr_t)base + STACK_BYTES) & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)top;
    *--sp = 0;                            // fiber_main's return address (it never returns)
    *--sp = (uint64_t)(void*)&fiber_main;  // emu_switch's ret
    for (int i = 0; i < 6; i++) *--sp = 0;  // rbp rbx r12 r13 r14 r15
    *--sp = 0x037fULL << 32 | 0x1f80;      // fpcw (x87 default) : mxcsr (SSE default)
    *--sp = 0;
    return sp;
}

inline void switch_to_fiber(int t) { emu_switch(&scheduler_sp, fibers[t].sp); }
inline void switch_to_scheduler() { emu_switch(&fibers[current].sp, scheduler_sp); }

}  // namespace emu

#else
// Portable fallback: ucontext (a signal-mask syscall per switch, so slower).
#include <ucontext.h>

namespace emu {

inline ucontext_t scheduler_ctx;
inline ucontext_t fiber_ctx[MAX_THREADS];

[[noreturn]] inline void fiber_main();
inline void fiber_entry() { fiber_main(); }

inline void switch_to_fiber(int t) { swapcontext(&scheduler_ctx, &fiber_ctx[t]); }
inline void switch_to_scheduler() { swapcontext(&fiber_ctx[current], &scheduler_ctx); }

}  // namespace emu
#endif

namespace emu {

[[noreturn]] inline void fiber_main() {
    kernel(kernel_args);
    fibers[current].state = DONE;
    switch_to_scheduler();
    fail("a finished thread was resumed", 0);
}

inline char* stack_of(int t) {
    if (!stacks[t]) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        void* p = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) fail("cannot map a thread stack", 0);
        mprotect(p, page, PROT_NONE);  // overflow faults instead of corrupting
        stacks[t] = (char*)p + page;
    }
    return stacks[t];
}

inline void start_fiber(int t) {
    fibers[t].state = READY;
    fibers[t].line = 0;
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    fibers[t].sp = fresh_stack(stack_of(t));
#else
    getcontext(&fiber_ctx[t]);
    fiber_ctx[t].uc_stack.ss_sp = stack_of(t);
    fiber_ctx[t].uc_stack.ss_size = STACK_BYTES;
    fiber_ctx[t].uc_link = nullptr;
    makecontext(&fiber_ctx[t], fiber_entry, 0);
#endif
}

inline void set_thread_index(int t) {
    current = t;
    threadIdx.x = (unsigned)t % blockDim.x;
    threadIdx.y = (unsigned)t / blockDim.x % blockDim.y;
    threadIdx.z = (unsigned)t / (blockDim.x * blockDim.y);
}

inline void describe_deadlock() {
    fprintf(stderr, "emu: threads of one block wait at different barriers:\n");
    for (int t = 0; t < n_threads; t++) {
        const char* s = fibers[t].state == AT_BLOCK_BARRIER ? "__syncthreads"
                        : fibers[t].state == AT_WARP_BARRIER ? "warp barrier/shuffle"
                        : fibers[t].state == DONE            ? "returned"
                                                             : "ready";
        fprintf(stderr, "  thread %d: %s (line %d)\n", t, s, fibers[t].line);
    }
}

// Runs the block blockIdx to completion: passes over the ready threads, each running
// until it blocks or returns, then releases whichever barrier is complete.
inline void run_block() {
    for (int t = 0; t < n_threads; t++) start_fiber(t);
    int live = n_threads;
    for (;;) {
        for (int t = 0; t < n_threads; t++) {
            if (fibers[t].state != READY) continue;
            set_thread_index(t);
            switch_to_fiber(t);
            if (fibers[t].state == DONE) live--;
        }
        if (live == 0) return;
        // A warp whose live lanes all wait at a warp barrier goes on first.
        bool released = false;
        for (int w = 0; w < n_threads; w += 32) {
            int end = w + 32 < n_threads ? w + 32 : n_threads;
            bool all = true, any = false;
            for (int t = w; t < end; t++) {
                if (fibers[t].state == DONE) continue;
                any = true;
                all = all && fibers[t].state == AT_WARP_BARRIER;
            }
            if (any && all) {
                for (int t = w; t < end; t++)
                    if (fibers[t].state == AT_WARP_BARRIER) fibers[t].state = READY;
                released = true;
            }
        }
        if (released) continue;
        // Otherwise every live thread must wait at the same __syncthreads.
        int line = -1;
        bool ok = true;
        for (int t = 0; t < n_threads; t++) {
            if (fibers[t].state == DONE) continue;
            ok = ok && fibers[t].state == AT_BLOCK_BARRIER &&
                 (line == -1 || fibers[t].line == line);
            line = fibers[t].line;
        }
        if (!ok) {
            describe_deadlock();
            set_thread_index(0);
            fail("divergent barriers", line);
        }
        for (int t = 0; t < n_threads; t++)
            if (fibers[t].state == AT_BLOCK_BARRIER) fibers[t].state = READY;
    }
}

inline void wait_at(int state, int line) {
    fibers[current].state = state;
    fibers[current].line = line;
    switch_to_scheduler();
}

inline int lane() { return current & 31; }

// A warp-wide call with mask 0xffffffff names every lane of the warp: one that has
// returned makes it undefined on the GPU, so it is an error here.
inline void check_whole_warp(const char* what, int line) {
    int w = current & ~31;
    for (int t = w; t < w + 32 && t < n_threads; t++)
        if (fibers[t].state == DONE) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "%s in a warp whose lane %d has returned (undefined on the GPU)", what,
                     t - w);
            fail(msg, line);
        }
}

// Value `v` of every lane goes through `exchange`; returns lane `src`'s (own when `src`
// is past the block's last thread). Two waits: the second keeps a fast lane from overwriting its slot
// before the slower ones have read it.
template <class T>
inline T exchange_with(T v, int src, int line) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    memcpy(&exchange[current], &v, sizeof(T));
    wait_at(AT_WARP_BARRIER, line);
    check_whole_warp("warp shuffle", line);
    T r = v;
    int s = (current & ~31) + src;
    if (src >= 0 && src < 32 && s < n_threads) memcpy(&r, &exchange[s], sizeof(T));
    wait_at(AT_WARP_BARRIER, line);
    return r;
}

// Lanes of the calling warp whose `pred` is nonzero, as a bit mask.
inline unsigned int ballot(int pred, int line) {
    exchange[current] = pred != 0;
    wait_at(AT_WARP_BARRIER, line);
    check_whole_warp("warp vote", line);
    unsigned int bits = 0;
    int w = current & ~31;
    for (int t = w; t < w + 32 && t < n_threads; t++)
        if (exchange[t]) bits |= 1u << (t - w);
    wait_at(AT_WARP_BARRIER, line);
    return bits;
}

// Number of the block's live threads whose `pred` is nonzero.
inline int count_block(int pred, int line) {
    exchange[current] = pred != 0;
    wait_at(AT_BLOCK_BARRIER, line);
    int n = 0;
    for (int t = 0; t < n_threads; t++)
        if (fibers[t].state != DONE && exchange[t]) n++;
    wait_at(AT_BLOCK_BARRIER, line);
    return n;
}

inline void sigsegv(int) {
    fail("memory fault: out-of-bounds access (buffers end at a guard page) or stack overflow",
         0);
}

inline void install_fault_handler() {
    static char alt[64 * 1024];
    stack_t ss = {};
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, nullptr);
    struct sigaction sa = {};
    sa.sa_handler = sigsegv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

// Runs `k` over the grid, one block at a time, x fastest, from block number `first` in
// that order (0: the whole grid; more: only the last blocks, as a test of the top of a
// large grid runs them).
inline void launch(Kernel k, float** args, dim3 grid, dim3 block, uint64_t first) {
    int threads = (int)(block.x * block.y * block.z);
    if (threads < 1 || threads > MAX_THREADS) fail("block size outside 1..1024", 0);
    if (grid.x < 1 || grid.y < 1 || grid.z < 1) fail("empty grid", 0);
    kernel = k;
    kernel_args = args;
    n_threads = threads;
    gridDim = grid;
    blockDim = block;
    const uint64_t count = (uint64_t)grid.x * grid.y * grid.z;
    for (uint64_t b = first; b < count; b++) {
        blockIdx = uint3{(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                         (unsigned)(b / grid.x / grid.y)};
        async_reset();
        poison_shared();
        in_block = true;
        run_block();
        in_block = false;
    }
}

// `len` zeroed floats between two PROT_NONE guards: the end touches the upper one, so
// reading or writing past the end faults; the few bytes of padding below the start must
// still be zero after the case (written_before_start), and anything further down faults.
// A guard is one page, or in a wide case WIDE_GUARD: address space only (PROT_NONE,
// MAP_NORESERVE), wide enough that a float reached from a view at most 2^31 floats below
// the buffer with any 32-bit index, signed or unsigned, stays inside the mapping, so it
// is in the buffer or it faults (16 GiB = 2^32 floats each side).
inline size_t page_size() { return (size_t)sysconf(_SC_PAGESIZE); }
inline size_t padded_bytes(size_t len) {
    return (len * sizeof(float) + page_size() - 1) / page_size() * page_size();
}
constexpr size_t WIDE_GUARD = (size_t)16 << 30;
inline size_t guard_bytes(bool wide) { return wide ? WIDE_GUARD + page_size() : page_size(); }

inline float* guarded_alloc(size_t len, bool wide) {
    size_t guard = guard_bytes(wide), bytes = padded_bytes(len);
    char* p = (char*)mmap(nullptr, guard + bytes + guard, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == (char*)MAP_FAILED) fail("cannot map a buffer", 0);
    if (bytes > 0 && mprotect(p + guard, bytes, PROT_READ | PROT_WRITE) != 0)
        fail("cannot map a buffer", 0);
    return (float*)(p + guard + bytes) - len;
}

inline bool written_before_start(const float* data, size_t len) {
    const char* start = (const char*)(data + len) - padded_bytes(len);
    for (const char* c = start; c < (const char*)data; c++)
        if (*c) return true;
    return false;
}

inline void guarded_free(float* data, size_t len, bool wide) {
    size_t guard = guard_bytes(wide), bytes = padded_bytes(len);
    char* end = (char*)(data + len);
    munmap(end - bytes - guard, guard + bytes + guard);
}

}  // namespace emu

// ---- barriers, shuffles and votes as the kernels spell them ----------------------
#define __syncthreads() emu::wait_at(emu::AT_BLOCK_BARRIER, __LINE__)
#define __syncthreads_count(pred) emu::count_block((pred), __LINE__)
#define __syncthreads_or(pred) (emu::count_block((pred), __LINE__) != 0)
#define __syncwarp(...) emu::wait_at(emu::AT_WARP_BARRIER, __LINE__)
#define __ballot_sync(mask, pred) emu::ballot((pred), __LINE__)
#define __any_sync(mask, pred) (emu::ballot((pred), __LINE__) != 0)
#define __all_sync(mask, pred) (emu::ballot(!(pred), __LINE__) == 0)
#define __activemask() 0xffffffffu

namespace emu {
template <class T>
inline T shfl_down(T v, unsigned int delta, int width, int line) {
    int l = lane(), seg = l & ~(width - 1);
    int src = l - seg + (int)delta < width ? l + (int)delta : l;
    return exchange_with(v, src, line);
}
template <class T>
inline T shfl_up(T v, unsigned int delta, int width, int line) {
    int l = lane(), seg = l & ~(width - 1);
    int src = l - seg - (int)delta >= 0 ? l - (int)delta : l;
    return exchange_with(v, src, line);
}
template <class T>
inline T shfl_xor(T v, int mask, int width, int line) {
    int l = lane(), src = l ^ mask;
    // A lane may read from earlier width-groups, not later ones.
    if (src >= (l / width + 1) * width) src = l;
    return exchange_with(v, src, line);
}
template <class T>
inline T shfl(T v, int src_lane, int width, int line) {
    int l = lane();
    return exchange_with(v, (l & ~(width - 1)) + (src_lane & (width - 1)), line);
}
}  // namespace emu

#define EMU_WIDTH_(w, ...) (w)
#define __shfl_down_sync(mask, v, delta, ...) \
    emu::shfl_down((v), (delta), EMU_WIDTH_(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)
#define __shfl_up_sync(mask, v, delta, ...) \
    emu::shfl_up((v), (delta), EMU_WIDTH_(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
    emu::shfl_xor((v), (lane_mask), EMU_WIDTH_(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)
#define __shfl_sync(mask, v, src, ...) \
    emu::shfl((v), (src), EMU_WIDTH_(__VA_ARGS__ __VA_OPT__(, ) 32), __LINE__)

// ---- cp.async and mma.sync, as prelude.cuh wraps them -----------------------------
// cp.async copies land when the thread waits for their group, not when issued: the
// latest a GPU may land them, so a read of a stage before its wait sees stale data here
// every time. mma.sync is warp-collective: every lane posts its fragments, then computes
// its own four outputs from the whole warp's, with the register layouts of the PTX ISA
// (groupID = lane / 4, threadID_in_group = lane % 4).
#define KESTREL_EMU 1

namespace emu {
inline void async_copy(void* dst, const void* src, int bytes) {
    async_copies[current].push_back(AsyncCopy{dst, src, bytes, async_groups[current]});
}

// Lands every copy of the calling thread's committed groups but the `pending` newest.
inline void async_wait(int pending) {
    std::vector<AsyncCopy>& q = async_copies[current];
    int done = async_groups[current] - pending;
    size_t kept = 0;
    for (const AsyncCopy& c : q) {
        if (c.group >= done) {
            q[kept++] = c;
        } else if (c.src) {
            memcpy(c.dst, c.src, (size_t)c.bytes);
        } else {
            memset(c.dst, 0, (size_t)c.bytes);
        }
    }
    q.resize(kept);
}

inline float tf32_value(uint32_t r) {
    return __uint_as_float(r & 0xffffe000u);  // the mma reads 19 bits
}
inline float half_value(uint32_t r, int high) {
    uint16_t bits = (uint16_t)(r >> (16 * high));
    _Float16 h;
    memcpy(&h, &bits, 2);
    return (float)h;
}

// d (16x8, fp32) += a (16xK) * b (Kx8); K = 8 for tf32, 16 for fp16.
inline void mma(float d[4], const unsigned a[4], const unsigned b[2], bool f16, int line) {
    memcpy(mma_a[current], a, sizeof mma_a[0]);
    memcpy(mma_b[current], b, sizeof mma_b[0]);
    wait_at(AT_WARP_BARRIER, line);
    check_whole_warp("mma.sync", line);
    const int w = current & ~31, l = current & 31, g = l / 4, t = l % 4;
    const int k_len = f16 ? 16 : 8;
    for (int q = 0; q < 4; q++) {
        const int row = g + (q >= 2 ? 8 : 0), col = 2 * t + (q & 1);
        float sum = d[q];
        for (int k = 0; k < k_len; k++) {
            float av, bv;
            if (f16) {
                // a: reg (row>=8) + 2*(k>=8), lane (row%8)*4 + (k%8)/2, half k%2;
                // b: reg k>=8, lane col*4 + (k%8)/2, half k%2.
                av = half_value(mma_a[w + (row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)],
                                k % 2);
                bv = half_value(mma_b[w + col * 4 + (k % 8) / 2][k >= 8], k % 2);
            } else {
                // a: reg (row>=8) + 2*(k>=4), lane (row%8)*4 + k%4; b: reg k>=4, lane col*4 + k%4.
                av = tf32_value(mma_a[w + (row % 8) * 4 + k % 4][(row >= 8) + 2 * (k >= 4)]);
                bv = tf32_value(mma_b[w + col * 4 + k % 4][k >= 4]);
            }
            sum = fmaf(av, bv, sum);
        }
        d[q] = sum;
    }
    wait_at(AT_WARP_BARRIER, line);
}
}  // namespace emu

inline void cp_async16(float* smem, const float* gmem) { emu::async_copy(smem, gmem, 16); }
inline void cp_async4(float* smem, const float* gmem, bool valid) {
    emu::async_copy(smem, valid ? gmem : nullptr, 4);
}
inline void cp_async_commit() { emu::async_groups[emu::current]++; }
template <int N>
inline void cp_async_wait() {
    emu::async_wait(N);
}
#define mma_tf32_16x8x8(d, a, b) emu::mma((d), (a), (b), false, __LINE__)
#define mma_f16_16x8x16(d, a, b) emu::mma((d), (a), (b), true, __LINE__)
inline unsigned to_tf32(float x) {
    if (isnan(x)) return 0x7fffffffu;
    return (__float_as_uint(x) + 0x1000u) & 0xffffe000u;  // to nearest, ties away
}
inline unsigned pack_half2(float lo, float hi) {
    _Float16 h[2] = {(_Float16)lo, (_Float16)hi};  // round to nearest even, as cvt.rn
    unsigned r;
    memcpy(&r, h, 4);
    return r;
}
template <class T>
inline T __ldcg(const T* p) {
    return *p;
}

// ---- the driver: what emu.rs's generated main() calls ----------------------------
namespace emu {

// Reads the cases emu.rs wrote and runs them. manifest (text), per case:
//   <wide 0/1> <n_bufs> <len>...       inputs then consts, their floats in `data` in order
//   <out_len> <n_launches> <result buffer, -1 = output>
//   per launch: <kernel> <first block> <gx gy gz> <bx by bz> <n_args>
//               then per argument <buffer index, -1 = output> <offset in floats>
// An offset is within its buffer; a wide case's may also be negative, down to -2^31 (a
// view of a window of a larger tensor). Writes every case's result, in order, to `out`.
inline int run_cases(int argc, char** argv, const Kernel* kernels, const char* const* names,
                     int n_kernels) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s manifest data out\n", argv[0]);
        return 2;
    }
    FILE* manifest = fopen(argv[1], "r");
    FILE* data = fopen(argv[2], "rb");
    FILE* out = fopen(argv[3], "wb");
    if (!manifest || !data || !out) {
        fprintf(stderr, "emu: cannot open %s, %s or %s\n", argv[1], argv[2], argv[3]);
        return 2;
    }
    install_fault_handler();
    auto bad = [](const char* what) {
        fprintf(stderr, "emu: case %d: malformed manifest (%s)\n", case_index, what);
        exit(2);
    };
    int n_cases;
    if (fscanf(manifest, "%d", &n_cases) != 1) bad("case count");
    for (case_index = 0; case_index < n_cases; case_index++) {
        int wide, n_bufs;
        if (fscanf(manifest, "%d %d", &wide, &n_bufs) != 2 || wide < 0 || wide > 1 ||
            n_bufs < 0)
            bad("buffer count");
        float** bufs = (float**)calloc((size_t)n_bufs + 1, sizeof(float*));
        size_t* lens = (size_t*)calloc((size_t)n_bufs + 1, sizeof(size_t));
        for (int b = 0; b < n_bufs; b++) {
            if (fscanf(manifest, "%zu", &lens[b]) != 1) bad("buffer length");
            bufs[b] = guarded_alloc(lens[b], wide);
            if (fread(bufs[b], sizeof(float), lens[b], data) != lens[b]) bad("data too short");
        }
        size_t out_len;
        int n_launches, result;
        if (fscanf(manifest, "%zu %d %d", &out_len, &n_launches, &result) != 3 || result < -1 ||
            result >= n_bufs)
            bad("output");
        float* output = guarded_alloc(out_len, wide);
        for (launch_index = 0; launch_index < n_launches; launch_index++) {
            int k, n_args;
            unsigned long long first;
            dim3 g, b;
            if (fscanf(manifest, "%d %llu %u %u %u %u %u %u %d", &k, &first, &g.x, &g.y, &g.z,
                       &b.x, &b.y, &b.z, &n_args) != 9 ||
                k < 0 || k >= n_kernels || n_args < 0)
                bad("launch");
            float** args = (float**)calloc((size_t)n_args + 1, sizeof(float*));
            size_t* arg_lens = (size_t*)calloc((size_t)n_args + 1, sizeof(size_t));
            float** bases = (float**)calloc((size_t)n_args + 1, sizeof(float*));
            for (int a = 0; a < n_args; a++) {
                // A view: buffer (-1: the output) and an offset in floats into it.
                int which;
                long long offset;
                if (fscanf(manifest, "%d %lld", &which, &offset) != 2 || which < -1 ||
                    which >= n_bufs)
                    bad("argument");
                size_t len = which < 0 ? out_len : lens[which];
                long long lowest = wide ? -(1LL << 31) : 0;
                if (offset < lowest || (offset > 0 && (size_t)offset > len))
                    bad("argument offset");
                // The padding check below looks under the whole buffer, not the view.
                bases[a] = which < 0 ? output : bufs[which];
                arg_lens[a] = len;
                // Integer arithmetic: a wide case's view may lie outside the buffer.
                const long long bytes = offset * (long long)sizeof(float);
                args[a] = (float*)((uintptr_t)bases[a] + (uintptr_t)bytes);
            }
            launch_name = names[k];
            launch(kernels[k], args, g, b, first);
            for (int a = 0; a < n_args; a++)
                if (written_before_start(bases[a], arg_lens[a])) {
                    char msg[80];
                    snprintf(msg, sizeof msg, "argument %d was written before its start", a);
                    fail(msg, 0);
                }
            free(args);
            free(arg_lens);
            free(bases);
        }
        launch_index = -1;
        launch_name = "";
        float* result_buf = result < 0 ? output : bufs[result];
        size_t result_len = result < 0 ? out_len : lens[result];
        if (fwrite(result_buf, sizeof(float), result_len, out) != result_len)
            bad("cannot write output");
        guarded_free(output, out_len, wide);
        for (int b = 0; b < n_bufs; b++) guarded_free(bufs[b], lens[b], wide);
        free(bufs);
        free(lens);
    }
    if (fclose(out) != 0) {
        fprintf(stderr, "emu: cannot write %s\n", argv[3]);
        return 2;
    }
    return 0;
}

}  // namespace emu
