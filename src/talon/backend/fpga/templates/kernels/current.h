// CubaLIF's synaptic current, docs/fixed_point.md section 3 (CubaLIF). `isum` is the sum of the
// inputs aligned to fraction Fi = max(f_i, f_k...): Z = (A*I << SH_A) + G_in*isum is exact at fraction
// c + Fi; the stored current is I' = sat(rhu(Z, SH_R), IBITS) (round half up), and y = I' << SH_Y, aligned
// to the membrane stage's fraction max(f_v, f_i), is the single input of k_neuron in the same step.
// SH_A = Fi - f_i, SH_R = c + Fi - f_i, SH_Y = max(f_v, f_i) - f_i. The current is never reset.
template <int N, int IBITS, int SH_A, int SH_R, int SH_Y, int LANES = 1, typename AT, typename GT>
void k_current(const int64_t isum[N], int64_t cur[N], const AT alpha[N], const GT gain_in[N], int64_t y[N]) {
CURRENT:
    for (int n = 0; n < N; ++n) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int64_t Z = talon::up((int64_t)alpha[n] * cur[n], SH_A) + (int64_t)gain_in[n] * isum[n];
        const int64_t I = talon::sat(talon::rhu(Z, SH_R), IBITS);
        cur[n] = I;
        y[n] = talon::up(I, SH_Y);
    }
}
