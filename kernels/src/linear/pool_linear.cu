// pool_linear.cu: a classifier head in one launch, fp32:
//   pooled[img][c] = mean_hw x[img][c][:]             (adaptive_avg_pool2d to 1x1, flatten)
//   y[img][o]      = act(bias[o] + sum_c w[o][c] * pooled[img][c])          (linear)
// It also stores `pooled`, so the engine can still show the pool step's output.
//
// Defines, prepended by linear/pool_linear.rs: C HW OUT_F, ROWS (outputs per block, a
// multiple of WARPS), GROUP (lanes per channel while pooling: a power of two, at most 32)
// and the epilogue HAS_BIAS ACT (and ACT_A/ACT_B: prelude.cuh). Indices fit in an int:
// pool_linear.rs refuses tensors of 2^31 elements or more.
//
// x: (n, C, HW)  w: (OUT_F, C4), rows zero-padded to C4 = C rounded up to 4, for float4
// loads  bias: (OUT_F)  pooled: (n, C)  y: (n, OUT_F)
//
// Grid (OUT_F / ROWS, n): block (b, img) computes y[img][b*ROWS .. b*ROWS + ROWS).
// Every output needs the whole pooled vector and blocks cannot wait for each other, so
// each block pools all of x[img] into shared memory itself (phase 1), then runs the GEMV
// of linear.cu on its rows with x read from shared memory (phase 2). Block 0 of each
// image also stores its pooled vector; every block computes it in the same order, so
// the copies agree to the bit.
//
// Phase 1: GROUP lanes per channel (the least power of two >= HW, at most 32), so
// a warp reads 32 / GROUP whole channels side by side: HW 1 -> 32 channels of 1 value,
// HW 4 -> 8 of 4, HW 49 -> one channel in two loads (32 + 17 lanes). Each warp-load is
// one contiguous run, and a warp keeps UNROLL such channel sets in flight (8 x 196 B at
// HW 49; 16 warps: 25 KB a block). Lane sums, then a butterfly inside each group.
//
// Phase 2: one warp per output row, lanes reading w and the pooled vector as float4
// (512 contiguous bytes of w per warp-load), 4 independent sums, a butterfly.
//
// Cost (H100, batch 1, not yet timed): redundant pooling is the price of one launch.
// Each block reads C*HW*4 bytes of x from L2 (ResNet-18 100 KB, MobileNetV2 250 KB,
// ResNet-50 400 KB) at ~100 GB/s per SM, and the grid reads G times that from L2 at
// ~5.5 TB/s, so pooling costs ~C*HW*4 / 100 GB/s as long as G <= ~48; w (OUT_F*C*4
// bytes: 2 / 5 / 8 MB) streams from HBM at ~3 TB/s once G >= ~32 SMs stream it. Hence
// ROWS = 32 at OUT_F 1000: G = 32. Expected (pool + w): ResNet-18 ~1 + 0.7 us,
// MobileNetV2 ~2.5 + 1.7 us, ResNet-50 ~4 + 2.7 us. mean_hw + linear_gemv spread the
// pooling over every SM (~0.5 / 1 / 1.5 us) but pay a second launch (~1 us): this kernel
// should win on ResNet-18, tie on MobileNetV2 and may lose ~1 us on ResNet-50. Time it
// before the planner prefers it for wide heads.

#define WARPS 16
#define THREADS (WARPS * 32)
#define UNROLL 8                      // channel sets in flight per warp in phase 1
#define C4 ((C + 3) / 4 * 4)
#define SET (32 / GROUP)              // channels a warp reads side by side
#define STEP (UNROLL * SET)           // channels a warp pools per iteration

#if GROUP < 1 || GROUP > 32 || (GROUP & (GROUP - 1)) != 0
#error "pool_linear_f32: GROUP must be a power of two, at most 32"
#endif
#if ROWS % WARPS != 0
#error "pool_linear_f32: ROWS must be a multiple of WARPS"
#endif

// a . b added to s, x first.
__device__ __forceinline__ float dot4(float4 a, float4 b, float s) {
    return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, s))));
}

extern "C" __global__ void __launch_bounds__(THREADS) pool_linear_f32(
    const float* __restrict__ x,     // (n, C, HW)
    const float* __restrict__ w,     // (OUT_F, C4), as PyTorch's (OUT_F, C) zero-padded
#if HAS_BIAS
    const float* __restrict__ bias,  // (OUT_F)
#endif
    float* __restrict__ pooled,      // (n, C): written by block 0 of each image
    float* __restrict__ y)           // (n, OUT_F)
{
    __shared__ float4 pooled4[C4 / 4];  // (C4): this image's pooled vector, zero-padded
    float* pooled_s = reinterpret_cast<float*>(pooled4);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int img = blockIdx.y;
    const float* x_img = x + img * (C * HW);  // (C, HW)

    // Phase 1. Lane `lane` pools channel c0 + u*SET + sub for u < UNROLL, reading its
    // values g, g + GROUP, ...; c0 is the same for the whole warp, so the shuffles below
    // run on full warps.
    const int sub = lane / GROUP, g = lane % GROUP;
    for (int c0 = warp * STEP; c0 < C; c0 += WARPS * STEP) {
        float s[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) s[u] = 0.f;
        // j is 64-bit: it ends below HW + GROUP, past INT_MAX for a plane within 32 of
        // 2^31. (Unsigned would do, but c * HW + j then costs an address computation per
        // load instead of an offset.)
        for (long long j = g; j < HW; j += GROUP) {
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                const int c = c0 + u * SET + sub;
                if (c < C) s[u] += x_img[c * HW + j];
            }
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            float v = s[u];
#pragma unroll
            for (int offset = GROUP / 2; offset > 0; offset /= 2) {
                v += __shfl_xor_sync(0xffffffff, v, offset);
            }
            const int c = c0 + u * SET + sub;
            if (g == 0 && c < C) {
                v = v / (float)HW;
                pooled_s[c] = v;
                if (blockIdx.x == 0) pooled[img * C + c] = v;
            }
        }
    }
#if C4 > C
    // The padding meets w's zero padding: it must be a number, not stale shared memory.
    if (threadIdx.x < C4 - C) pooled_s[C + threadIdx.x] = 0.f;
#endif
    __syncthreads();

    // Phase 2. The row loop is the same for every lane of a warp (shuffles again). Rows
    // are C4 >= 4 floats and OUT_F * C4 < 2^31, so o + ROWS, o * C4 and the rest fit an int.
    const int o_end = min((int)blockIdx.x * ROWS + ROWS, OUT_F);
    for (int o = blockIdx.x * ROWS + warp; o < o_end; o += WARPS) {
        const float4* w_o = reinterpret_cast<const float4*>(w + o * C4);  // (C4 / 4)
        float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
        int i = lane;
        for (; i + 96 < C4 / 4; i += 128) {
            s0 = dot4(pooled4[i], w_o[i], s0);
            s1 = dot4(pooled4[i + 32], w_o[i + 32], s1);
            s2 = dot4(pooled4[i + 64], w_o[i + 64], s2);
            s3 = dot4(pooled4[i + 96], w_o[i + 96], s3);
        }
        for (; i < C4 / 4; i += 32) {  // the last < 512 channels
            s0 = dot4(pooled4[i], w_o[i], s0);
        }
        float sum = (s0 + s1) + (s2 + s3);
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) {
            sum += __shfl_xor_sync(0xffffffff, sum, offset);
        }
        if (lane == 0) {
#if HAS_BIAS
            sum += bias[o];
#endif
            y[img * OUT_F + o] = activate(sum);
        }
    }
}
