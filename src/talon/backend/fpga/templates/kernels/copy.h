// Grid-preserving copies: Flatten, Output, Dropout, HybridRegion, Skip(passthrough) (same integers, same format).
template <int N, int LANES = 1>
void k_copy(const int64_t x[N], int64_t y[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = x[i];
    }
}
