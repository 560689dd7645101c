// emu_fibers.h: the fiber scheduler, guarded buffers and fault handler of the CUDA
// emulator; included by emu.h, whose header says how the threads of a block run.
#pragma once

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
