// conv2d.cu: 2-D convolution over NCHW in fp32, with the fused epilogue
// y = act(acc + bias[c] + residual), the same order as the CPU kernels.
//
// Defines, prepended by conv2d/cuda.rs:
//   the layer:    N_IMG C_IN IN_H IN_W C_OUT K_H K_W STRIDE_H STRIDE_W PAD_H PAD_W
//                 DIL_H DIL_W GROUPS OUT_H OUT_W (Conv2dParams::output_hw's result)
//   the epilogue: HAS_BIAS HAS_RESIDUAL ACT (0 none, 1 relu, 2 relu6)
//   DEPTHWISE 0:  conv2d_f32, the implicit GEMM, with its tile BM BN BK TM TN and the
//                 packed weight's padded sizes K_PAD M_PAD
//   DEPTHWISE 1:  conv2d_dw_f32, groups == C_IN, with MULT = C_OUT / C_IN
// Every index fits in an int: cuda.rs refuses tensors of 2^31 elements or more.
//
// x: (N_IMG, C_IN, IN_H, IN_W)  bias: (C_OUT)  residual, y: (N_IMG, C_OUT, OUT_H, OUT_W)

#define CG_IN (C_IN / GROUPS)
#define CG_OUT (C_OUT / GROUPS)
#define HW_IN (IN_H * IN_W)
#define HW_OUT (OUT_H * OUT_W)

// activate(): the fused activation, from cuda/prelude.cuh.

#if DEPTHWISE == 0

// Implicit GEMM, one per group g (blockIdx.z):
//   Y[m][n] = sum_k A[k][m] * B[k][n]
//   m: output channel inside the group         M = CG_OUT
//   n: output pixel (img, oy, ox) flattened     N = N_IMG * OUT_H * OUT_W
//   k: tap (ci, ky, kx) flattened               K = CG_IN * K_H * K_W
//   A: the weight, packed once by cuda.rs as (GROUPS, K_PAD, M_PAD), zero-padded up to
//      whole tiles: loads along m are coalesced and need no bounds check.
//   B: never stored (no im2col buffer): B[k][n] = x[img][g*CG_IN + ci][iy][ix] with
//      iy = oy*STRIDE_H - PAD_H + ky*DIL_H and ix = ox*STRIDE_W - PAD_W + kx*DIL_W,
//      or 0 in the padding and for k >= K
//      (0, not a read past x: A's zero rows would turn an Inf there into NaN).
//
// Tiling: a block owns a BM x BN tile of Y and walks K in slabs of BK. Its NT threads each
// keep TM x TN accumulators, strided BM/TM rows and BN/TN columns apart: a warp's reads of
// the shared tiles are conflict-free (16 consecutive columns, broadcast across rows) and
// its stores run along n, i.e. along ow. While one slab is multiplied out of shared memory,
// the next is already loading into registers (register double buffering, one shared
// buffer). cuda.rs picks 64x64x16 with 4x4 per thread (256 threads: 16 FMAs per 8 shared
// loads, 8 KiB of shared memory) and, when that grid would leave SMs idle (batch 1, 7x7
// layers), 32x32x16 with 2x2 per thread (256 threads, 4x the blocks).

#define GEMM_M CG_OUT
#define GEMM_N (N_IMG * HW_OUT)
#define GEMM_K (CG_IN * K_H * K_W)
#define NT ((BM / TM) * (BN / TN))
#define A_LOADS (BK * BM / NT)  // A elements each thread moves per slab
#define B_LOADS (BK * BN / NT)

#if BM % TM != 0 || BN % TN != 0 || NT % BM != 0 || NT % BN != 0 || K_PAD % BK != 0 \
    || M_PAD % BM != 0
#error "conv2d_f32: inconsistent tile defines"
#endif

extern "C" __global__ void __launch_bounds__(NT) conv2d_f32(
    const float* __restrict__ x,         // (N_IMG, C_IN, IN_H, IN_W)
    const float* __restrict__ w,         // (GROUPS, K_PAD, M_PAD), packed
#if HAS_BIAS
    const float* __restrict__ bias,      // (C_OUT)
#endif
#if HAS_RESIDUAL
    const float* __restrict__ residual,  // (N_IMG, C_OUT, OUT_H, OUT_W)
#endif
    float* __restrict__ y)               // (N_IMG, C_OUT, OUT_H, OUT_W)
{
    __shared__ float a_tile[BK][BM];
    __shared__ float b_tile[BK][BN];
    const int tid = threadIdx.x;
    const int g = blockIdx.z;
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;

    // A loads: column a_m of the tile, rows a_k, a_k + NT/BM, ...
    const int a_m = tid % BM;
    const int a_k = tid / BM;
    const float* w_g = w + g * (K_PAD * M_PAD) + m0 + a_m;

    // B loads: column b_n of the tile, rows b_k, b_k + NT/BN, ... The column is one output
    // pixel for the whole K loop, so its (img, oy, ox) is decoded once, here.
    const int b_n = tid % BN;
    const int b_k = tid / BN;
    const int n = n0 + b_n;
    const bool n_ok = n < GEMM_N;
    const int img = n_ok ? n / HW_OUT : 0;
    const int pix = n_ok ? n % HW_OUT : 0;
    const int iy0 = (pix / OUT_W) * STRIDE_H - PAD_H;
    const int ix0 = (pix % OUT_W) * STRIDE_W - PAD_W;
    const float* x_n = x + (img * C_IN + g * CG_IN) * HW_IN;  // (CG_IN, IN_H, IN_W)

    float a_next[A_LOADS];
    float b_next[B_LOADS];
    auto load_slab = [&](int k0) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) {
            a_next[i] = w_g[(k0 + a_k + i * (NT / BM)) * M_PAD];
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            const int k = k0 + b_k + i * (NT / BN);
            const int ci = k / (K_H * K_W);  // constant divisors: a multiply and a shift
            const int tap = k % (K_H * K_W);
            const int iy = iy0 + (tap / K_W) * DIL_H;
            const int ix = ix0 + (tap % K_W) * DIL_W;
            const bool ok = n_ok && k < GEMM_K && iy >= 0 && iy < IN_H && ix >= 0 && ix < IN_W;
            b_next[i] = ok ? x_n[(ci * IN_H + iy) * IN_W + ix] : 0.f;
        }
    };

    // This thread's outputs: rows ty + i*(BM/TM), columns tx + j*(BN/TN) of the tile.
    const int tx = tid % (BN / TN);
    const int ty = tid / (BN / TN);
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            acc[i][j] = 0.f;
        }
    }

    load_slab(0);
    for (int k0 = 0; k0 < K_PAD; k0 += BK) {
#pragma unroll
        for (int i = 0; i < A_LOADS; ++i) {
            a_tile[a_k + i * (NT / BM)][a_m] = a_next[i];
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            b_tile[b_k + i * (NT / BN)][b_n] = b_next[i];
        }
        __syncthreads();
        if (k0 + BK < K_PAD) {
            load_slab(k0 + BK);
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[TM];
            float b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                a[i] = a_tile[kk][ty + i * (BM / TM)];
            }
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                b[j] = b_tile[kk][tx + j * (BN / TN)];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int j = 0; j < TN; ++j) {
        const int nj = n0 + tx + j * (BN / TN);
        if (nj >= GEMM_N) {
            continue;
        }
        const int y_n = (nj / HW_OUT) * (C_OUT * HW_OUT) + nj % HW_OUT;  // y[img][0][pix]
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const int m = m0 + ty + i * (BM / TM);
            if (m >= GEMM_M) {
                continue;
            }
            const int oc = g * CG_OUT + m;
            const int idx = y_n + oc * HW_OUT;
            float v = acc[i][j];
#if HAS_BIAS
            v += bias[oc];
#endif
#if HAS_RESIDUAL
            v += residual[idx];
#endif
            y[idx] = activate(v);
        }
    }
}

#else  // DEPTHWISE

// Depthwise (groups == C_IN): output channel oc reads only input channel oc / MULT, through
// K_H*K_W weights. K is 9-49 taps, far too short for a GEMM tile, so: one thread per output
// value, consecutive threads along ox (x reads coalesced at stride 1, the window's rows
// shared through L1), the channel's few weights broadcast to the warp. 256 threads a
// block, one-dimensional grid over every output.
#define DW_THREADS 256

extern "C" __global__ void __launch_bounds__(DW_THREADS) conv2d_dw_f32(
    const float* __restrict__ x,         // (N_IMG, C_IN, IN_H, IN_W)
    const float* __restrict__ w,         // (C_OUT, 1, K_H, K_W), as PyTorch
#if HAS_BIAS
    const float* __restrict__ bias,      // (C_OUT)
#endif
#if HAS_RESIDUAL
    const float* __restrict__ residual,  // (N_IMG, C_OUT, OUT_H, OUT_W)
#endif
    float* __restrict__ y)               // (N_IMG, C_OUT, OUT_H, OUT_W)
{
    const int idx = blockIdx.x * DW_THREADS + threadIdx.x;
    if (idx >= N_IMG * C_OUT * HW_OUT) {
        return;
    }
    const int ox = idx % OUT_W;
    const int oy = (idx / OUT_W) % OUT_H;
    const int oc = (idx / HW_OUT) % C_OUT;
    const int img = idx / (C_OUT * HW_OUT);
    const float* x_c = x + (img * C_IN + oc / MULT) * HW_IN;  // (IN_H, IN_W)
    const float* w_c = w + oc * (K_H * K_W);                  // (K_H, K_W)
    float acc = 0.f;
#pragma unroll
    for (int ky = 0; ky < K_H; ++ky) {
        const int iy = oy * STRIDE_H - PAD_H + ky * DIL_H;
        if (iy < 0 || iy >= IN_H) {
            continue;
        }
#pragma unroll
        for (int kx = 0; kx < K_W; ++kx) {
            const int ix = ox * STRIDE_W - PAD_W + kx * DIL_W;
            if (ix >= 0 && ix < IN_W) {
                acc = fmaf(w_c[ky * K_W + kx], x_c[iy * IN_W + ix], acc);
            }
        }
    }
#if HAS_BIAS
    acc += bias[oc];
#endif
#if HAS_RESIDUAL
    acc += residual[idx];
#endif
    y[idx] = activate(acc);
}

#endif  // DEPTHWISE
