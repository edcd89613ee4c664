// Scale (y = x * s elementwise; snnTorch's one-to-one recurrence): ACC = S[i] * X[i] (exact),
// sat_acc, rhu to the output format, sat: the synaptic rule with a fan-in of one.
template <int N, int ACC_BITS, int SHIFT, int OUT_BITS, int LANES = 1, typename ST>
void k_scale(const int64_t x[N], const ST s[N], int64_t y[N]) {
SCALE:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = talon::sat(talon::rhu(talon::sat((int64_t)s[i] * x[i], ACC_BITS), SHIFT), OUT_BITS);
    }
}
