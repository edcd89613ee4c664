// ALIF (Lava-DL's adaptive-threshold LIF) in Lava-DL's / Loihi's integer arithmetic, docs/neurons/alif.md.
// Every state (current U, threshold T, refractory R, voltage V) is a word of MBITS bits at the state
// fraction f; K* are the 12-bit retention multipliers 4096 - D (D = round(4096 * decay)); T0 and STEP
// lie at fraction f. `isum` is the sum of the inputs aligned to Fm = max(f, input fractions); SH_IN = Fm - f.
//   X = sat(rhu(isum, SH_IN))            U = sat(rstz(U*KU) + X)        V = sat(rstz(V*KV) + U)
//   T = sat(rstz((T-T0)*KT) + T0)        R = sat(rstz(R*KR))            S = V >= T + R
//   R = sat(R + 2*T*S)                   T = sat(T + STEP*S)
// rstz(P) = P / 4096 rounded towards zero (Lava-DL's right_shift_to_zero(P, 12)).
static inline int64_t talon_alif_rstz(int64_t p) {
    return p >= 0 ? (p >> 12) : -((-p) >> 12);
}

// Each constant array has its own element type (the generator stores each at its narrowest integer type).
template <int N, int MBITS, int SH_IN, int LANES = 1, typename KU, typename KV, typename KTH, typename KR, typename T0T,
          typename STT>
void k_alif(const int64_t isum[N], int64_t u[N], int64_t th[N], int64_t rf[N], int64_t v[N],
            const KU ku[N], const KV kv[N], const KTH kth[N], const KR kr[N], const T0T th0[N], const STT step[N],
            int64_t out[N], int64_t mem[N]) {
ALIF:
    for (int n = 0; n < N; ++n) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int64_t X = talon::sat(talon::rhu(isum[n], SH_IN), MBITS);
        const int64_t T0 = (int64_t)th0[n];
        const int64_t U = talon::sat(talon_alif_rstz(u[n] * (int64_t)ku[n]) + X, MBITS);
        const int64_t V = talon::sat(talon_alif_rstz(v[n] * (int64_t)kv[n]) + U, MBITS);
        const int64_t T = talon::sat(talon_alif_rstz((th[n] - T0) * (int64_t)kth[n]) + T0, MBITS);
        const int64_t R = talon::sat(talon_alif_rstz(rf[n] * (int64_t)kr[n]), MBITS);
        const int64_t S = (V >= T + R) ? 1 : 0;
        u[n] = U;
        v[n] = V;
        rf[n] = talon::sat(R + 2 * T * S, MBITS);
        th[n] = talon::sat(T + (int64_t)step[n] * S, MBITS);
        mem[n] = V;
        out[n] = S;
    }
}
