// AvgPool2d (no padding): Y = sat(floor(sum * 2^(f - f_in) / N + 1/2)), N = KH * KW.
// One loop over the C * HO * WO * N window positions, LANES per cycle.
template <int C, int H, int W, int KH, int KW, int SH, int SW, int HO, int WO, int UP, int DOWN, int OUT_BITS, int LANES = 1>
void k_avgpool2d(const int64_t x[C * H * W], int64_t y[C * HO * WO]) {
    const int64_t N = KH * KW;
    int64_t total = 0;
AVGPOOL:
    for (int k = 0; k < C * HO * WO * KH * KW; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / (KH * KW), r = k % (KH * KW);
        const int c = q / (HO * WO), oh = (q / WO) % HO, ow = q % WO;
        total = (r == 0 ? 0 : total) + x[(c * H + oh * SH + r / KW) * W + ow * SW + r % KW];
        if (r == KH * KW - 1) {
            const int64_t v = (DOWN == 0) ? talon::floor_div(2 * talon::up(total, UP) + N, 2 * N)
                                          : talon::floor_div(2 * total + talon::up(N, DOWN), 2 * talon::up(N, DOWN));
            y[q] = talon::sat(v, OUT_BITS);
        }
    }
}
