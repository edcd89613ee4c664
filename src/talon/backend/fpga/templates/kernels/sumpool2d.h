// SumPool2d (zero padding): Y = sat(rhu(sum of the window, SHIFT)), SHIFT = f_in - f (requantising).
// One loop over the C * HO * WO * KH * KW window positions, LANES per cycle.
template <int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int HO, int WO, int SHIFT, int OUT_BITS, int LANES = 1>
void k_sumpool2d(const int64_t x[C * H * W], int64_t y[C * HO * WO]) {
    int64_t total = 0;
SUMPOOL:
    for (int k = 0; k < C * HO * WO * KH * KW; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / (KH * KW), r = k % (KH * KW);
        const int c = q / (HO * WO), oh = (q / WO) % HO, ow = q % WO;
        const int ih = oh * SH - PH + r / KW, iw = ow * SW - PW + r % KW;
        total = (r == 0 ? 0 : total) + ((ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(c * H + ih) * W + iw] : 0);
        if (r == KH * KW - 1) y[q] = talon::sat(talon::rhu(total, SHIFT), OUT_BITS);
    }
}
