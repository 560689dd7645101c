// emu_run.h: barriers, shuffles, votes, cp.async and mma.sync as the kernels spell them,
// and the driver that runs a manifest's cases; included by emu.h.
#pragma once

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

// ---- the driver: what mod.rs's generated main() calls ----------------------------
namespace emu {

// Reads the cases mod.rs wrote and runs them. manifest (text), per case:
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
