// Threshold: Y = X > theta (format Q2.0).
template <int N, int LANES = 1, typename TT>
void k_threshold(const int64_t x[N], const TT thr[N], int64_t y[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = x[i] > (int64_t)thr[i] ? 1 : 0;
    }
}
