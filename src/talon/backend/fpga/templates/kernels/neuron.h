// LIF / IF / LI / Integrator, and CubaLIF's membrane, docs/fixed_point.md section 3 (Neurons). `isum`
// is the sum of the inputs aligned to fraction Fm = max(f_v, f_k...); the wide fraction is F = c + Fm.
// MODE: 0 none, 1 subtract, 2 zero, 3 zero_post. SH_V = F - f_v - c, SH_L = F - f_v.
template <int N, int MODE, bool DELAY, bool SPIKING, int MBITS, int SH_V, int SH_L, int LANES = 1,
          typename BT, typename GT, typename LT, typename TT, typename RT>
void k_neuron(const int64_t isum[N], int64_t v[N], const BT beta[N], const GT gain[N], const LT leak[N],
              const TT thr[N], const RT vreset[N], int64_t gs, int64_t out[N], int64_t mem[N]) {
NEURON:
    for (int n = 0; n < N; ++n) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int64_t V = v[n];
        const int64_t th = (int64_t)thr[n];
        const int64_t thu = talon::up(th, SH_L);
        const int64_t R = (SPIKING && V > th) ? 1 : 0;
        const int64_t V0 = (SPIKING && MODE == 2 && R) ? (int64_t)vreset[n] : V;
        int64_t Wv = talon::up((int64_t)beta[n] * V0, SH_V) + talon::up((int64_t)leak[n], SH_L) + (int64_t)gain[n] * isum[n];
        int64_t S = 0;
        if (SPIKING) {
            if (MODE == 1) Wv -= R * thu;
            else if (MODE == 3) Wv = R ? talon::up((int64_t)vreset[n], SH_L) : Wv;
            S = Wv > thu ? 1 : 0;
            if (!DELAY && MODE != 0) {
                const int64_t D = S - R;
                Wv = (MODE == 1) ? Wv - D * thu : Wv - D * Wv;
            }
        }
        const int64_t Vn = talon::sat(talon::ceil_shift(Wv, SH_L), MBITS);
        v[n] = Vn;
        mem[n] = Vn;
        out[n] = SPIKING ? S * gs : Vn;
    }
}
