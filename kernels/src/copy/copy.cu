// copy.cu: the strided copy y = x[view], y contiguous (copy/mod.rs's CopyParams). Moves
// bits: NaN payloads come through.
//
// Defines, prepended by copy/cuda.rs: LEN (y's length), OFFSET (x's element at y[0]), and
// for TRANSPOSE:
//   0 compiles copy_f32, one thread per element of y: the merged dims D0..D5 (outermost
//     first, unused ones 1) and x's strides S0..S5;
//   1 compiles copy_transpose_f32, for y viewed as (outer, R, C) with x strides (·, 1, SC):
//     R C SC, and the outer dims O0..O3 with x's strides OS0..OS3 (unused ones 1 and 0).
// LEN < 2^31 and every x index < 2^31: cuda.rs refuses larger copies.

#if TRANSPOSE == 0

#define THREADS 256

// Consecutive threads write consecutive elements of y (coalesced); the reads are as
// coalesced as the innermost stride allows.
extern "C" __global__ void __launch_bounds__(THREADS) copy_f32(
    const float* __restrict__ x,  // (≥ span)
    float* __restrict__ y)        // (LEN)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    const unsigned int dims[6] = {D0, D1, D2, D3, D4, D5};
    const unsigned int strides[6] = {S0, S1, S2, S3, S4, S5};
    unsigned int rest = i, at = OFFSET;
#pragma unroll
    for (int d = 5; d >= 0; d--) {
        at += rest % dims[d] * strides[d];
        rest /= dims[d];
    }
    y[i] = x[at];
}

#else

#define TILE 32
#define ROWS 8  // threads per block: TILE x ROWS, each moving TILE / ROWS elements

// Block (bx, by, o) moves the tile rows r0 = by·TILE.., columns c0 = bx·TILE.. of outer
// index o: read with threadIdx.x along r (x's stride 1: coalesced), through shared memory
// (a 33-float row pitch, so the transposed reads hit 32 banks), written with threadIdx.x
// along c (y's stride 1: coalesced).
extern "C" __global__ void __launch_bounds__(TILE * ROWS) copy_transpose_f32(
    const float* __restrict__ x,  // (≥ span)
    float* __restrict__ y)        // (outer, R, C)
{
    __shared__ float tile[TILE][TILE + 1];  // [c - c0][r - r0]
    const unsigned int o = blockIdx.z, r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE;
    const unsigned int odims[4] = {O0, O1, O2, O3};
    const unsigned int ostrides[4] = {OS0, OS1, OS2, OS3};
    unsigned int rest = o, base = OFFSET;
#pragma unroll
    for (int d = 3; d >= 0; d--) {
        base += rest % odims[d] * ostrides[d];
        rest /= odims[d];
    }
    const unsigned int r = r0 + threadIdx.x;
#pragma unroll
    for (unsigned int k = threadIdx.y; k < TILE; k += ROWS) {
        const unsigned int c = c0 + k;
        if (r < R && c < C) tile[k][threadIdx.x] = x[base + r + c * SC];
    }
    __syncthreads();
    const unsigned int c = c0 + threadIdx.x;
#pragma unroll
    for (unsigned int k = threadIdx.y; k < TILE; k += ROWS) {
        const unsigned int rr = r0 + k;
        if (rr < R && c < C) y[(o * R + rr) * C + c] = tile[threadIdx.x][k];
    }
}

#endif
