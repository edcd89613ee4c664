// ReLU: max(X, 0) (grid-preserving); leaky ReLU: rhu(X > 0 ? X << c : S * X) to the output format.
// Element-wise kernels handle LANES elements per cycle (trip count ceil(N / LANES), the reuse factor).
template <int N, int LANES = 1>
void k_relu(const int64_t x[N], int64_t y[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = x[i] > 0 ? x[i] : 0;
    }
}
template <int N, int C, int SHIFT, int OUT_BITS, int LANES = 1>
void k_leaky_relu(const int64_t x[N], int64_t slope, int64_t y[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int64_t z = x[i] > 0 ? talon::up(x[i], C) : slope * x[i];
        y[i] = talon::sat(talon::rhu(z, SHIFT), OUT_BITS);
    }
}
