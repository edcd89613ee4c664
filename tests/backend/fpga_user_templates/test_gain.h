// FpgaTestGain (a user primitive of the tests): y = sat(rhu(sat(w[i] * x[i], ACC_BITS), SHIFT), OUT_BITS),
// the synaptic rule with a fan-in of one; LANES elements per cycle.
template <int N, int ACC_BITS, int SHIFT, int OUT_BITS, int LANES = 1, typename WT>
void k_test_gain(const int64_t x[N], const WT w[N], int64_t y[N]) {
TEST_GAIN:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[i] = talon::sat(talon::rhu(talon::sat((int64_t)w[i] * x[i], ACC_BITS), SHIFT), OUT_BITS);
    }
}
