// Conv2d (CHW, zero padding, stride, dilation, groups): exact sum, sat_acc, rhu, sat.
// One loop over the O * HO * WO * K multiply-accumulates (K = C/G * KH * KW, the window of one output),
// LANES per cycle; q is the output position, r the position in its window.
template <int C, int H, int W, int O, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, int G,
          int HO, int WO, int ACC_BITS, int SHIFT, int OUT_BITS, int LANES = 1, typename WT, typename BT>
void k_conv2d(const int64_t x[C * H * W], const WT w[O][C / G][KH][KW], const BT b[O], int64_t y[O * HO * WO]) {
    const int K = (C / G) * KH * KW;
    int64_t acc = 0;
CONV_MAC:
    for (int k = 0; k < O * HO * WO * K; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / K, r = k % K;
        const int o = q / (HO * WO), oh = (q / WO) % HO, ow = q % WO;
        const int c = r / (KH * KW), i = (r / KW) % KH, j = r % KW;
        const int ih = oh * SH - PH + i * DH, iw = ow * SW - PW + j * DW;
        const int64_t xv = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(((o / (O / G)) * (C / G) + c) * H + ih) * W + iw] : 0;
        acc = (r == 0 ? (int64_t)b[o] : acc) + (int64_t)w[o][c][i][j] * xv;
        if (r == K - 1) y[q] = talon::sat(talon::rhu(talon::sat(acc, ACC_BITS), SHIFT), OUT_BITS);
    }
}
