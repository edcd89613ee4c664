// Exact alignment of one input to a wider fraction, accumulated: acc[i] += x[i] << SHIFT.
template <int N, int SHIFT, int LANES = 1>
void k_align_add(const int64_t x[N], int64_t acc[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        acc[i] += talon::up(x[i], SHIFT);
    }
}
// Round an aligned sum to the output format: y = sat(rhu(acc, SHIFT)).
template <int N, int SHIFT, int OUT_BITS, int LANES = 1>
void k_requant(const int64_t acc[N], int64_t y[N]) {
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = talon::sat(talon::rhu(acc[i], SHIFT), OUT_BITS);
    }
}
