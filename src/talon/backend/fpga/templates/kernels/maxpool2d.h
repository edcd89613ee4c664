// MaxPool2d: max of the integers in each window (grid-preserving); padded positions are skipped.
// One loop over the C * HO * WO * KH * KW window positions, LANES per cycle.
template <int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, int HO, int WO, int LANES = 1>
void k_maxpool2d(const int64_t x[C * H * W], int64_t y[C * HO * WO]) {
    int64_t m = INT64_MIN;
MAXPOOL:
    for (int k = 0; k < C * HO * WO * KH * KW; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / (KH * KW), r = k % (KH * KW);
        const int c = q / (HO * WO), oh = (q / WO) % HO, ow = q % WO;
        const int ih = oh * SH - PH + (r / KW) * DH, iw = ow * SW - PW + (r % KW) * DW;
        const int64_t v = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(c * H + ih) * W + iw] : INT64_MIN;
        m = (r == 0 || v > m) ? v : m;
        if (r == KH * KW - 1) y[q] = m;
    }
}
