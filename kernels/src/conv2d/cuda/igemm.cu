// igemm.cu: 2-D convolution over NCHW as an implicit GEMM, fp32 in and out, with the
// fused epilogue y = act(acc + bias[c] + residual), the same order as the CPU kernels.
// Depthwise convs are depthwise.cu's.
//
// Defines, prepended by conv2d/cuda/mod.rs:
//   the layer:    N_IMG C_IN IN_H IN_W C_OUT K_H K_W STRIDE_H STRIDE_W PAD_H PAD_W
//                 DIL_H DIL_W GROUPS OUT_H OUT_W (Conv2dParams::output_hw's result)
//   the epilogue: HAS_BIAS HAS_RESIDUAL ACT (and ACT_A/ACT_B: prelude.cuh)
//   MATH          0 fp32 FMA on the CUDA cores; 1 tf32 and 2 fp16 on the tensor cores
//                 (mma.sync m16n8k8 / m16n8k16); fp32 accumulation in every mode
//   BM BN BK      the block's tile of Y and the K slab; STAGES slabs in flight (cp.async)
//   TM TN         MATH 0: each thread's register block
//   WARPS_M WARPS_N  MATH 1, 2: the warps' grid over the tile
//   SPLITS        K ranges computed by separate blocks (split-K); > 1 adds `ws`
//   POOL          0, or 2: also the 2x2 stride-2 max pool of y (PH = OUT_H/2, PW =
//                 OUT_W/2, floor), written to `pooled`: the conv + max_pool of a CIFAR net
//   K_PAD M_PAD   the packed weight's padded sizes
//   HAS_IN_SCALE  1: B is x * in_scale[img][ci] (squeeze-excite's gate, (N_IMG, C_IN)),
//                 for 1x1 stride-1 unpadded one-group convs (Conv2dParams::in_scale_applies)
// Indices: cuda/mod.rs refuses tensors (x, y, the packed weight, split-K's workspace) of 2^31
// elements or more, and window coordinates (oy * STRIDE_H - PAD_H + ky * DIL_H) that would
// not fit an int. So the hot loops index in 32-bit ints, each product below the size of
// the tensor it indexes; only the GEMM column, which the last tile carries past GEMM_N,
// is unsigned.
//
// The GEMM, one per group g:
//   Y[m][n] = sum_k A[k][m] * B[k][n]
//   m: output channel inside the group         M = CG_OUT
//   n: output pixel (img, oy, ox) flattened     N = N_IMG * OUT_H * OUT_W
//   k: tap (ci, ky, kx) flattened               K = CG_IN * K_H * K_W
//   A: the weight, packed once by cuda/mod.rs as (GROUPS, K_PAD, M_PAD) f32 (MATH 0; tf32
//      already rounded for MATH 1) or (GROUPS, K_PAD/2, M_PAD) pairs of fp16 along k
//      (MATH 2), zero-padded to whole tiles: 16-byte copies with no bounds check.
//   B: never stored (no im2col buffer): B[k][n] = x[img][g*CG_IN + ci][iy][ix] with
//      iy = oy*STRIDE_H - PAD_H + ky*DIL_H and ix = ox*STRIDE_W - PAD_W + kx*DIL_W, or 0
//      in the padding and for k >= K (a zero, not a read past x: A's zero rows would turn
//      an Inf there into NaN). Gathered by 4-byte cp.async with zero-fill.
//
// Pipeline: STAGES shared-memory slots, each one K slab of A and B. cp.async fills slab
// i + STAGES - 1 while slab i is multiplied, so global latency hides behind STAGES - 1
// slabs of math with no register staging. One __syncthreads per slab: after it, every
// thread has finished slab i - 1, whose slot the next copies overwrite.
//
// Math 0 (fp32): NT = (BM/TM)*(BN/TN) threads, each TM x TN accumulators strided BM/TM
// rows and BN/TN columns apart, as the register-blocked SIMT GEMMs do: a warp reads 16
// consecutive B columns (conflict-free) and broadcasts A.
// Math 1, 2 (tensor cores): NT = 32*WARPS_M*WARPS_N; a warp owns a (BM/WARPS_M) x
// (BN/WARPS_N) piece as 16x8 mma tiles. Shared rows are padded (A by 8 floats, B by 8
// for tf32, 4 for fp16) so a fragment load, whose lanes step 1 along m/n and 1 (or 2)
// rows along k, hits 32 distinct banks.
//
// Split-K (batch 1, 7x7 layers: a 512x49 output is 16 blocks of 32x32, 132 SMs): the
// K slabs are shared out over SPLITS blocks per tile. Each writes its partial sums to
// ws, then counts itself in the tile's counter; the block that counts last adds the
// partials in split order (so the result does not depend on which finished last), runs
// the epilogue and sets the counter back to 0 for the next run (graph replays).
//   ws: (SPLITS, TILES, ACC_N, NT) partials, then TILES counters (unsigned)
//
// Input scale (HAS_IN_SCALE): cp.async copies x to shared memory with no register in
// between, so each thread multiplies the B values it gathered once they have landed: after
// its cp_async_wait for the slab, before the __syncthreads that shows the slab to the
// block. The scales are loaded before the wait, so their latency hides behind it. Values
// not read from x (k >= K, columns past GEMM_N) are multiplied by 1: their zeros stay
// zeros (0 * Inf would be NaN). The product is what a separate x * in_scale would store,
// and x * in_scale itself is never written: a write and a read of the whole tensor saved.
//
// Max pool (POOL 2): the columns run over the pool's windows instead of the output's
// pixels, a window's four pixels in four consecutive columns (cuda/mod.rs fuses only even
// output sizes, whose windows cover every pixel: y is then complete). The epilogue
// writes y as usual, then takes each window's max
// (NaN if any is NaN, as max_pool2d) across the threads that hold its four columns: lanes
// differing in bits 0-1 for MATH 0, the pair q, q^1 of one thread and lanes differing in
// bit 0 for the tensor cores.
//
// x: (N_IMG, C_IN, IN_H, IN_W)  bias: (C_OUT)  residual, y: (N_IMG, C_OUT, OUT_H, OUT_W)
// pooled: (N_IMG, C_OUT, OUT_H / 2, OUT_W / 2)

#define CG_IN (C_IN / GROUPS)
#define CG_OUT (C_OUT / GROUPS)
#define HW_IN (IN_H * IN_W)
#define HW_OUT (OUT_H * OUT_W)
#define GEMM_M CG_OUT
#if POOL
#define PH (OUT_H / 2)
#define PW (OUT_W / 2)
#define GEMM_N (N_IMG * PH * PW * 4)
#else
#define GEMM_N (N_IMG * HW_OUT)
#endif
#define GEMM_K (CG_IN * K_H * K_W)
#define M_TILES (M_PAD / BM)
#define N_TILES ((GEMM_N + BN - 1) / BN)
#define TILES (GROUPS * M_TILES * N_TILES)
#define K_SLABS (K_PAD / BK)

#if MATH == 0
#define NT ((BM / TM) * (BN / TN))
#define ACC_N (TM * TN)
#define A_ROWS BK  // shared rows of A per slab
#define A_PAD 0
#define B_PAD 0
#define MMA_K BK
#else
#define NT (32 * WARPS_M * WARPS_N)
#define WTM (BM / WARPS_M)  // one warp's rows
#define WTN (BN / WARPS_N)  // and columns
#define MMA_M (WTM / 16)    // its 16x8 mma tiles
#define MMA_N (WTN / 8)
#define ACC_N (MMA_M * MMA_N * 4)
#define A_PAD 8
#if MATH == 1
#define A_ROWS BK
#define B_PAD 8
#define MMA_K 8
#else
#define A_ROWS (BK / 2)  // pairs of fp16 along k
#define B_PAD 4
#define MMA_K 16
#endif
#endif
#define A_STRIDE (BM + A_PAD)
#define B_STRIDE (BN + B_PAD)
#define A_CHUNKS (A_ROWS * BM / 4)  // 16-byte copies of A per slab
#define B_LOADS (BK * BN / NT)      // B elements each thread gathers per slab

#if NT % BN != 0 || K_PAD % BK != 0 || M_PAD % BM != 0 || BK % MMA_K != 0 || BM % 4 != 0 \
    || STAGES < 2
#error "conv2d_igemm: inconsistent tile defines"
#endif
#if MATH != 0 && (WTM % 16 != 0 || WTN % 8 != 0)
#error "conv2d_igemm: a warp's piece must be whole 16x8 mma tiles"
#endif
#if POOL != 0 && (POOL != 2 || (MATH == 0 && (BN / TN) % 4 != 0))
#error "conv2d_igemm: POOL is 0 or 2, with a window's columns in one warp"
#endif
#if HAS_IN_SCALE && (K_H != 1 || K_W != 1 || STRIDE_H != 1 || STRIDE_W != 1 || PAD_H != 0 \
                     || PAD_W != 0 || GROUPS != 1)
#error "conv2d_igemm: HAS_IN_SCALE is for 1x1 stride-1 unpadded one-group convs"
#endif

// GEMM column n: its image and output pixel (oy * OUT_W + ox).
__device__ __forceinline__ void column_pixel(int n, int& img, int& pix) {
#if POOL
    const int win = n % 4, window = n / 4;  // window: (img, py, px) flattened
    img = window / (PH * PW);
    const int pp = window % (PH * PW);
    pix = ((pp / PW) * 2 + win / 2) * OUT_W + (pp % PW) * 2 + win % 2;
#else
    img = n / HW_OUT;
    pix = n % HW_OUT;
#endif
}

// The larger, or NaN if either is: max_pool2d's rule.
__device__ __forceinline__ float max_or_nan(float a, float b) {
    return (b > a || b != b) ? b : a;
}

// acc[e]'s place in the block's tile: row (m) and column (n).
__device__ __forceinline__ void tile_coords(int e, int tid, int& mi, int& ni) {
#if MATH == 0
    mi = tid / (BN / TN) + (e / TN) * (BM / TM);
    ni = tid % (BN / TN) + (e % TN) * (BN / TN);
#else
    const int warp = tid / 32, lane = tid % 32;
    const int tile = e / 4, q = e % 4;  // mma tile (i, j) = (tile / MMA_N, tile % MMA_N)
    mi = (warp / WARPS_N) * WTM + (tile / MMA_N) * 16 + lane / 4 + (q >= 2 ? 8 : 0);
    ni = (warp % WARPS_N) * WTN + (tile % MMA_N) * 8 + 2 * (lane % 4) + (q & 1);
#endif
}

extern "C" __global__ void __launch_bounds__(NT) conv2d_igemm(
    const float* __restrict__ x,         // (N_IMG, C_IN, IN_H, IN_W)
    const float* __restrict__ w,         // packed, see above
#if HAS_BIAS
    const float* __restrict__ bias,      // (C_OUT)
#endif
#if HAS_RESIDUAL
    const float* __restrict__ residual,  // (N_IMG, C_OUT, OUT_H, OUT_W)
#endif
#if HAS_IN_SCALE
    const float* __restrict__ in_scale,  // (N_IMG, C_IN)
#endif
    float* __restrict__ y                // (N_IMG, C_OUT, OUT_H, OUT_W)
#if POOL
    , float* __restrict__ pooled         // (N_IMG, C_OUT, PH, PW)
#endif
#if SPLITS > 1
    , float* __restrict__ ws             // partials and counters, see above
#endif
)
{
    __shared__ __align__(16) float a_s[STAGES][A_ROWS][A_STRIDE];
    __shared__ __align__(16) float b_s[STAGES][BK][B_STRIDE];
    const int tid = threadIdx.x;
    const int g = blockIdx.z % GROUPS;
    const int split = blockIdx.z / GROUPS;
    const int m0 = blockIdx.y * BM;
    const unsigned int n0 = blockIdx.x * BN;  // < GEMM_N
    // This block's K slabs: [slab0, slab0 + slabs).
    const int slab0 = split * K_SLABS / SPLITS;
    const int slabs = (split + 1) * K_SLABS / SPLITS - slab0;

    const float* w_g = w + g * (K_PAD / BK * A_ROWS) * M_PAD + m0;

    // B gathers: column b_n of the tile, rows b_k, b_k + NT/BN, ... The column is one
    // output pixel for the whole K loop, so its (img, oy, ox) is decoded once, here.
    const int b_n = tid % BN;
    const int b_k = tid / BN;
    // Unsigned: the last tile's columns reach N_TILES * BN - 1 < GEMM_N + BN, past INT_MAX
    // when BN does not divide 2^31 (a signed n would wrap negative and pass n_ok).
    const unsigned int n = n0 + b_n;
    const bool n_ok = n < GEMM_N;
    int img, pix;
    column_pixel(n_ok ? (int)n : 0, img, pix);
    const int iy0 = (pix / OUT_W) * STRIDE_H - PAD_H;
    const int ix0 = (pix % OUT_W) * STRIDE_W - PAD_W;
    const float* x_n = x + (img * C_IN + g * CG_IN) * HW_IN;  // (CG_IN, IN_H, IN_W)
#if HAS_IN_SCALE
    const float* s_n = in_scale + img * C_IN;  // (C_IN): column b_n's image's scales

    // s: the scales of this thread's B_LOADS values of slab `slab` (row k is channel k).
    auto slab_scales = [&](int slab, float* s) {
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            const int k = slab * BK + b_k + i * (NT / BN);
            s[i] = n_ok && k < GEMM_K ? s_n[k] : 1.f;
        }
    };
    // Multiplies them in, once the slab has landed in `stage`.
    auto scale_slab = [&](int stage, const float* s) {
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            b_s[stage][b_k + i * (NT / BN)][b_n] *= s[i];
        }
    };
#endif

    auto load_slab = [&](int stage, int slab) {
#pragma unroll
        for (int c = tid; c < A_CHUNKS; c += NT) {
            const int r = c / (BM / 4), col = c % (BM / 4) * 4;
            cp_async16(&a_s[stage][r][col], w_g + (slab * A_ROWS + r) * M_PAD + col);
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            const int kr = b_k + i * (NT / BN);
            const int k = slab * BK + kr;
            const int ci = k / (K_H * K_W);  // constant divisors: a multiply and a shift
            const int tap = k % (K_H * K_W);
            const int iy = iy0 + (tap / K_W) * DIL_H;
            const int ix = ix0 + (tap % K_W) * DIL_W;
            const bool ok = n_ok && k < GEMM_K && iy >= 0 && iy < IN_H && ix >= 0 && ix < IN_W;
            cp_async4(&b_s[stage][kr][b_n], ok ? x_n + (ci * IN_H + iy) * IN_W + ix : x, ok);
        }
    };

    float acc[ACC_N];
#pragma unroll
    for (int e = 0; e < ACC_N; ++e) {
        acc[e] = 0.f;
    }

    auto multiply_slab = [&](int st) {
#if MATH == 0
        const int tx = tid % (BN / TN);
        const int ty = tid / (BN / TN);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[TM];
            float b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                a[i] = a_s[st][kk][ty + i * (BM / TM)];
            }
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                b[j] = b_s[st][kk][tx + j * (BN / TN)];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    acc[i * TN + j] = fmaf(a[i], b[j], acc[i * TN + j]);
                }
            }
        }
#else
        const int warp = tid / 32, lane = tid % 32;
        const int wm = (warp / WARPS_N) * WTM, wn = (warp % WARPS_N) * WTN;
        const int gq = lane / 4, tq = lane % 4;  // PTX: groupID, threadID_in_group
#pragma unroll
        for (int kk = 0; kk < BK; kk += MMA_K) {
            unsigned a[MMA_M][4];
            unsigned b[MMA_N][2];
#pragma unroll
            for (int i = 0; i < MMA_M; ++i) {
                const int r = wm + i * 16 + gq;
#if MATH == 1
                // a0 (r, k), a1 (r+8, k), a2 (r, k+4), a3 (r+8, k+4) with k = kk + tq
                const int kr = kk + tq;
#else
                // a0 (r, k..k+1), a1 (r+8, k..k+1), a2/a3 the same at k+8: pair row kr
                const int kr = kk / 2 + tq;
#endif
                a[i][0] = __float_as_uint(a_s[st][kr][r]);
                a[i][1] = __float_as_uint(a_s[st][kr][r + 8]);
                a[i][2] = __float_as_uint(a_s[st][kr + 4][r]);
                a[i][3] = __float_as_uint(a_s[st][kr + 4][r + 8]);
            }
#pragma unroll
            for (int j = 0; j < MMA_N; ++j) {
                const int c = wn + j * 8 + gq;
#if MATH == 1
                // b0 (k, c), b1 (k+4, c) with k = kk + tq
                b[j][0] = to_tf32(b_s[st][kk + tq][c]);
                b[j][1] = to_tf32(b_s[st][kk + tq + 4][c]);
#else
                // b0 (k..k+1, c), b1 (k+8..k+9, c) with k = kk + 2*tq
                b[j][0] = pack_half2(b_s[st][kk + 2 * tq][c], b_s[st][kk + 2 * tq + 1][c]);
                b[j][1] = pack_half2(b_s[st][kk + 2 * tq + 8][c], b_s[st][kk + 2 * tq + 9][c]);
#endif
            }
#pragma unroll
            for (int i = 0; i < MMA_M; ++i) {
#pragma unroll
                for (int j = 0; j < MMA_N; ++j) {
#if MATH == 1
                    mma_tf32_16x8x8(acc + (i * MMA_N + j) * 4, a[i], b[j]);
#else
                    mma_f16_16x8x16(acc + (i * MMA_N + j) * 4, a[i], b[j]);
#endif
                }
            }
        }
#endif
    };

    // Prologue: the first STAGES - 1 slabs in flight. Every iteration commits a group,
    // empty or not, so "all but the newest STAGES - 2 groups" always means "slab i".
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < slabs) {
            load_slab(s, slab0 + s);
        }
        cp_async_commit();
    }
    for (int i = 0; i < slabs; ++i) {
#if HAS_IN_SCALE
        float s[B_LOADS];
        slab_scales(slab0 + i, s);
        cp_async_wait<STAGES - 2>();
        scale_slab(i % STAGES, s);
#else
        cp_async_wait<STAGES - 2>();
#endif
        __syncthreads();
        if (i + STAGES - 1 < slabs) {
            load_slab((i + STAGES - 1) % STAGES, slab0 + i + STAGES - 1);
        }
        cp_async_commit();
        multiply_slab(i % STAGES);
    }

#if SPLITS > 1
    {
        const int tile = (g * M_TILES + blockIdx.y) * N_TILES + blockIdx.x;
        unsigned* counter = (unsigned*)(ws + SPLITS * TILES * ACC_N * NT) + tile;
#pragma unroll
        for (int e = 0; e < ACC_N; ++e) {
            ws[((split * TILES + tile) * ACC_N + e) * NT + tid] = acc[e];
        }
        __threadfence();  // the partials are visible device-wide before the count
        __syncthreads();
        __shared__ int last;
        if (tid == 0) {
            last = atomicAdd(counter, 1u) == SPLITS - 1;
        }
        __syncthreads();
        if (!last) {
            return;
        }
        __threadfence();
#pragma unroll
        for (int e = 0; e < ACC_N; ++e) {
            float v = 0.f;
            for (int s = 0; s < SPLITS; ++s) {
                // L2 reads (__ldcg): other SMs wrote these, this SM's L1 may be stale.
                v += s == split ? acc[e] : __ldcg(&ws[((s * TILES + tile) * ACC_N + e) * NT + tid]);
            }
            acc[e] = v;
        }
        if (tid == 0) {
            *counter = 0;
        }
    }
#endif

    // The epilogue, in place in acc (the pool below takes its maxima from there); only
    // what lies inside Y is read or written.
#pragma unroll
    for (int e = 0; e < ACC_N; ++e) {
        int mi, ni;
        tile_coords(e, tid, mi, ni);
        const int m = m0 + mi;
        const unsigned int nn = n0 + ni;  // < GEMM_N + BN: unsigned, as n above
        const bool inside = m < GEMM_M && nn < GEMM_N;
        const int oc = g * CG_OUT + m;
        int img, pix;
        column_pixel(inside ? (int)nn : 0, img, pix);
        const int idx = (img * C_OUT + oc) * HW_OUT + pix;
        float v = acc[e];
        if (inside) {
#if HAS_BIAS
            v += bias[oc];
#endif
#if HAS_RESIDUAL
            v += residual[idx];
#endif
            v = activate(v);
            y[idx] = v;
        }
        acc[e] = v;
    }
#if POOL
    // Every thread runs every e: the shuffles need whole warps.
#pragma unroll
    for (int e = 0; e < ACC_N; ++e) {
        int mi, ni;
        tile_coords(e, tid, mi, ni);
        float v = acc[e];
#if MATH == 0
        v = max_or_nan(v, __shfl_xor_sync(0xffffffff, v, 1));
        v = max_or_nan(v, __shfl_xor_sync(0xffffffff, v, 2));
#else
        if (e % 2 != 0) {
            continue;  // uniform across the warp: the pair (e, e+1) is one thread's
        }
        v = max_or_nan(v, acc[e + 1]);
        v = max_or_nan(v, __shfl_xor_sync(0xffffffff, v, 1));
#endif
        const int m = m0 + mi;
        const unsigned int nn = n0 + ni;  // < GEMM_N + BN, as above
        if (nn % 4 == 0 && m < GEMM_M && nn < GEMM_N) {
            const int oc = g * CG_OUT + m;
            const int window = nn / 4;
            pooled[((window / (PH * PW)) * C_OUT + oc) * (PH * PW) + window % (PH * PW)] = v;
        }
    }
#endif
}
