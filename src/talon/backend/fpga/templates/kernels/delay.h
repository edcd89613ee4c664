// Delay (grid-preserving): y[t] = x[t - d] per element, zero before the first input (the bridge's
// DelayRuntime). ring[LEN][N], LEN = max(d) + 1, is static state cleared on reset; slot `head` receives
// this step's input, so slot (head - d) mod LEN holds the input of d steps ago (d = 0: this step's).
// The caller advances head by one (mod LEN) after each step.
template <int N, int LEN, int LANES = 1, typename DT>
void k_delay(const int64_t x[N], int64_t ring[LEN][N], int head, const DT d[N], int64_t y[N]) {
DELAY:
    for (int i = 0; i < N; ++i) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        ring[head][i] = x[i];
        y[i] = ring[(head + LEN - (int)d[i]) % LEN][i];
    }
}
