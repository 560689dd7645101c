// concat.cu: concat_part_f32, one input of a concat copied into its columns of the output,
// one thread per input element. concat/cuda.rs launches it once per input.
//
// Defines, prepended by concat/cuda.rs: OUTER INNER (this input's row), AT (its first
// column in the output row), TOTAL (the output row: the sum of every input's INNER).
// OUTER * TOTAL < 2^31: cuda.rs refuses longer tensors.
//
// x: (OUTER, INNER)  y: (OUTER, TOTAL), x going to y[:, AT..AT + INNER]
//
// Consecutive threads copy consecutive elements: reads and writes both coalesced (the
// writes are shifted by AT, so a warp may straddle one more cache line).

#define THREADS 256
#define LEN (OUTER * INNER)

extern "C" __global__ void __launch_bounds__(THREADS) concat_part_f32(
    const float* __restrict__ x,  // (OUTER, INNER)
    float* __restrict__ y)        // (OUTER, TOTAL)
{
    const unsigned int i = blockIdx.x * THREADS + threadIdx.x;  // < 2^31 + THREADS
    if (i >= LEN) return;
    const int o = (int)i / INNER, j = (int)i % INNER;
    y[o * TOTAL + AT + j] = x[i];
}
