// Affine / Linear / SpikingAffine: ACC = W.X + B (exact), sat_acc, rhu to the output format, sat.
// One loop over the N_OUT * N_IN multiply-accumulates k = o * N_IN + i, LANES of them per cycle (the reuse
// factor is the trip count ceil(N_OUT * N_IN / LANES)): the running sum restarts from the bias at i == 0
// and is rounded at i == N_IN - 1. Integer sums are exact, so LANES never changes a result.
template <int N_IN, int N_OUT, int ACC_BITS, int SHIFT, int OUT_BITS, int LANES = 1, typename WT, typename BT>
void k_affine(const int64_t x[N_IN], const WT w[N_OUT][N_IN], const BT b[N_OUT], int64_t y[N_OUT]) {
    int64_t acc = 0;
AFFINE_MAC:
    for (int k = 0; k < N_OUT * N_IN; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int o = k / N_IN, i = k % N_IN;
        acc = (i == 0 ? (int64_t)b[o] : acc) + (int64_t)w[o][i] * x[i];
        if (i == N_IN - 1) y[o] = talon::sat(talon::rhu(talon::sat(acc, ACC_BITS), SHIFT), OUT_BITS);
    }
}
