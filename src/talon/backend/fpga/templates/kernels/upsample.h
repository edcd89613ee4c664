// Upsample (nearest): a grid-preserving copy; output pixel p of every channel reads input pixel src[p]
// (the index map of the runtime's own interpolation, computed when the project is generated).
template <int C, int HW_IN, int HW_OUT, int LANES = 1, typename ST>
void k_upsample(const int64_t x[C * HW_IN], const ST src[HW_OUT], int64_t y[C * HW_OUT]) {
UPSAMPLE:
    for (int k = 0; k < C * HW_OUT; ++k) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor=LANES
        y[k] = x[(k / HW_OUT) * HW_IN + (int)src[k % HW_OUT]];
    }
}
