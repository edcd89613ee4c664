// Alpha neuron (snnTorch Alpha), docs/neurons/alpha.md "Fixed point". Traces E, N in Q(IBITS).f_i, membrane
// U in Q(MBITS).f_v. `isum` is the sum of the inputs aligned to Fm = max(f_i, f_k...). The traces are
// exact at fraction c + Fm and rounded half up to f_i; the membrane W = T*(E_b + N_b) is exact at
// Fw = max(c + f_i, f_v) and rounded up (ceil) to f_v, so the spike W > Θ is the stored membrane's.
// MODE: 0 none, 1 subtract, 2 zero. SH_A = Fm - f_i, SH_C = c, SH_R = c + Fm - f_i, SH_W = Fw - c - f_i,
// SH_N = Fw - f_i, SH_T = Fw - f_v. thr: Θ in the membrane format, thre: Θ in the trace format.
template <int N, int MODE, int IBITS, int MBITS, int SH_A, int SH_C, int SH_R, int SH_W, int SH_N, int SH_T, int LANES = 1,
          typename AT, typename BT, typename TT, typename HT, typename ET>
void k_alpha(const int64_t isum[N], int64_t e[N], int64_t nn[N], int64_t u[N], const AT alpha[N], const BT beta[N],
             const TT talpha[N], const HT thr[N], const ET thre[N], int64_t gs, int64_t out[N], int64_t mem[N]) {
ALPHA:
    for (int n = 0; n < N; ++n) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int64_t Np = nn[n];
        const int64_t th = (int64_t)thr[n];
        const int64_t R = (MODE != 0 && u[n] > th) ? 1 : 0;  // the previous step's spike
        const int64_t X = talon::up(isum[n], SH_C);
        const int64_t Eb = talon::sat(talon::rhu(talon::up((int64_t)alpha[n] * e[n], SH_A) + X, SH_R), IBITS);
        const int64_t Nb = talon::sat(talon::rhu(talon::up((int64_t)beta[n] * Np, SH_A) - X, SH_R), IBITS);
        int64_t W = talon::up((int64_t)talpha[n] * (Eb + Nb), SH_W);
        int64_t E = Eb, Nx = Nb;
        if (MODE == 1 && R) {
            W += talon::up(Np, SH_N);
            E = talon::sat(Eb - (int64_t)thre[n], IBITS);
            Nx = 0;
        } else if (MODE == 2 && R) {
            W = 0;
            E = 0;
            Nx = 0;
        }
        const int64_t S = W > talon::up(th, SH_T) ? 1 : 0;
        const int64_t Un = talon::sat(talon::ceil_shift(W, SH_T), MBITS);
        e[n] = E;
        nn[n] = Nx;
        u[n] = Un;
        mem[n] = Un;
        out[n] = S * gs;
    }
}
