// ChannelSplit, one chunk at a time (grid-preserving): viewed as (OUTER, TOTAL) around the split
// dimension, chunk y is the columns [OFFSET, OFFSET + INNER) of x, copied (Concat's inverse, no rounding).
template <int OUTER, int INNER, int TOTAL, int OFFSET, int LANES = 1>
void k_split(const int64_t x[OUTER * TOTAL], int64_t y[OUTER * INNER]) {
SPLIT:
    for (int k = 0; k < OUTER * INNER; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[k] = x[(k / INNER) * TOTAL + OFFSET + k % INNER];
    }
}
