// Concat / Skip(concatenate), one input at a time: viewed as (OUTER, INNER), the input fills columns
// [OFFSET, OFFSET + INNER) of the (OUTER, TOTAL) output, rounded to the output format:
// y = sat(rhu(x, SHIFT)), SHIFT = f_k - f (an exact left shift when negative).
template <int OUTER, int INNER, int TOTAL, int OFFSET, int SHIFT, int OUT_BITS, int LANES = 1>
void k_concat(const int64_t x[OUTER * INNER], int64_t y[OUTER * TOTAL]) {
CONCAT:
    for (int k = 0; k < OUTER * INNER; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[(k / INNER) * TOTAL + OFFSET + k % INNER] = talon::sat(talon::rhu(x[k], SHIFT), OUT_BITS);
    }
}
