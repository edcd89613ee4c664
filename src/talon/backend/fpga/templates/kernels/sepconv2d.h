// SepConv2d: depthwise Conv2d (groups = C; stride, zero padding, dilation) then pointwise 1x1, with ONE
// saturation and rounding at the end (docs/fixed_point.md, Synaptic layers): the depthwise sums plus the
// depthwise bias, Z (units f_in + f_dw), stay exact in z[] (int64, never rounded), then
// ACC = PB[o] + sum_c PW[o][c] * Z[c] (units acc_frac), sat_acc, rhu to the output format, sat.
// Two loops of LANES multiply-accumulates per cycle: C * HO * WO * KH * KW depthwise, then O * HO * WO * C
// pointwise (the estimate counts both).
template <int C, int H, int W, int O, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, int HO, int WO,
          int ACC_BITS, int SHIFT, int OUT_BITS, int LANES = 1, typename DWT, typename DBT, typename PWT, typename PBT>
void k_sepconv2d(const int64_t x[C * H * W], const DWT dw[C][1][KH][KW], const DBT db[C], const PWT pw[O][C][1][1],
                 const PBT pb[O], int64_t z[C * HO * WO], int64_t y[O * HO * WO]) {
    const int K = KH * KW;
    int64_t acc = 0;
SEPCONV_DW:
    for (int k = 0; k < C * HO * WO * K; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / K, r = k % K;
        const int c = q / (HO * WO), oh = (q / WO) % HO, ow = q % WO;
        const int ih = oh * SH - PH + (r / KW) * DH, iw = ow * SW - PW + (r % KW) * DW;
        const int64_t xv = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(c * H + ih) * W + iw] : 0;
        acc = (r == 0 ? (int64_t)db[c] : acc) + (int64_t)dw[c][0][r / KW][r % KW] * xv;
        if (r == K - 1) z[q] = acc;
    }
SEPCONV_PW:
    for (int k = 0; k < O * HO * WO * C; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        const int q = k / C, c = k % C;
        const int o = q / (HO * WO), p = q % (HO * WO);
        acc = (c == 0 ? (int64_t)pb[o] : acc) + (int64_t)pw[o][c][0][0] * z[c * HO * WO + p];
        if (c == C - 1) y[q] = talon::sat(talon::rhu(talon::sat(acc, ACC_BITS), SHIFT), OUT_BITS);
    }
}
