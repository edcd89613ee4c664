"""An independent integer (numpy int64) implementation of docs/fixed_point.md, driven only by a
HardwareDescriptor: what an FPGA kernel must compute. The tests check that the CPU simulator's fixed
mode agrees with it bit for bit. It covers the node types the tests use: Input, the synaptic layers
Affine/Linear/SpikingAffine/Scale/Conv2d (groups 1), ReLU (plain and leaky), AvgPool2d (no padding),
SumPool2d, MaxPool2d (no padding), Upsample (nearest), Concat, Skip (residual, concatenate), Threshold,
Flatten, Output and the neurons (LIF, IF, LI, Integrator, CubaLIF)."""

from __future__ import annotations

import numpy as np


def sat(x, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(x, lo, hi)


def shift_round_half_up(x, s):
    """floor(x / 2**s + 1/2) for s > 0; exact left shift otherwise."""
    x = np.asarray(x, dtype=np.int64)
    if s > 0:
        return (x + (1 << (s - 1))) >> s
    return x << (-s)


def shift_ceil(x, s):
    x = np.asarray(x, dtype=np.int64)
    if s > 0:
        return -((-x) >> s)
    return x << (-s)


def quantize_input(x, fmt):
    bits, frac = fmt
    return sat(np.floor(np.ldexp(np.asarray(x, np.float64), frac) + 0.5).astype(np.int64), bits)


def _conv2d(x, w, b, stride, padding):
    # x (B, C, H, W) int64, w (O, C, kh, kw)
    B, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((B, O, Ho, Wo), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + stride[0] * Ho : stride[0], j : j + stride[1] * Wo : stride[1]]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def _window_sum(x: np.ndarray, k: list[int], s: list[int], pad: list[int] | tuple[int, int] = (0, 0)) -> np.ndarray:
    """Exact integer sum of every (k[0], k[1]) window at stride s; padding positions contribute 0."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    B, C, H, W = x.shape
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    total = np.zeros((B, C, Ho, Wo), np.int64)
    for i in range(k[0]):
        for j in range(k[1]):
            total += x[:, :, i : i + s[0] * Ho : s[0], j : j + s[1] * Wo : s[1]]
    return total


def nearest_index(n_out: int, n_in: int, scale_factor: float | None) -> np.ndarray:
    """The input index each output index reads (docs/fixed_point.md, grid-preserving nodes): the same size
    reads itself, twice the size reads i >> 1, otherwise min(floor(i * s), n_in - 1) evaluated in float32,
    with s = 1 / scale_factor when the node gives a factor and n_in / n_out when it gives a size (torch's
    rule for float32 tensors, which the runtime applies at every dtype)."""
    i = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return i
    if n_out == 2 * n_in:
        return i >> 1
    s = np.float32(1.0 / scale_factor) if scale_factor is not None else np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(i.astype(np.float32) * s).astype(np.int64), n_in - 1)


def _maxpool(x, k, s):
    B, C, H, W = x.shape
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    out = np.full((B, C, Ho, Wo), np.iinfo(np.int64).min)
    for i in range(k[0]):
        for j in range(k[1]):
            out = np.maximum(out, x[:, :, i : i + s[0] * Ho : s[0], j : j + s[1] * Wo : s[1]])
    return out


def run(desc, inputs: dict[str, np.ndarray], membranes: dict | None = None, currents: dict | None = None) -> dict[str, list[np.ndarray]]:
    """inputs: {input name: (T, B, *S) float array}. Returns {node: [int64 output per step]}; when a
    dict is passed as `membranes` (`currents`), it receives {neuron: [int64 stored membrane (CubaLIF
    current) per step]}. Inputs listed in a node's `delayed_inputs` (recurrent loops) read their source's
    output of the previous step, zeros at the first."""
    nodes = desc.nodes
    cfg = desc.meta["fixed_point"]
    c = cfg["coefficient_frac_bits"]
    first = next(iter(inputs.values()))
    T, batch = first.shape[0], first.shape[1]
    outs: dict[str, list] = {n: [] for n in desc.layer_order}
    state: dict[str, np.ndarray] = {}
    current: dict[str, np.ndarray] = {}
    prev: dict[str, np.ndarray] = {n: np.zeros((batch, *nodes[n]["output_shape"]), np.int64) for n in desc.layer_order}
    arr = lambda n, k: desc.arrays[f"{n}/{k}"].astype(np.int64)  # noqa: E731
    for t in range(T):
        cur: dict[str, np.ndarray] = {}
        for name in desc.layer_order:
            nd = nodes[name]
            typ, kind = nd["type"], nd["kind"]
            late = set(nd["delayed_inputs"])
            ins = [prev[p] if k in late else cur[p] for k, p in enumerate(nd["inputs"])]
            ob, of = nd["out_format"]
            if typ == "Input":
                y = quantize_input(inputs[name][t], nd["out_format"])
            elif kind == "synaptic":
                x = ins[0]
                if typ in ("Affine", "Linear", "SpikingAffine"):
                    acc = x @ arr(name, "weight").T
                    if f"{name}/bias" in desc.arrays:
                        acc = acc + arr(name, "bias")
                elif typ == "Scale":  # elementwise: a fan-in of one
                    acc = x * arr(name, "scale")
                elif typ == "Conv2d":
                    p = nd["params"]
                    assert p["groups"] == 1 and p["dilation"] == [1, 1]
                    acc = _conv2d(x, arr(name, "weight"), arr(name, "bias"), p["stride"], p["padding"])
                else:
                    raise NotImplementedError(typ)
                acc = sat(acc, nd["acc_bits"])
                y = sat(shift_round_half_up(acc, nd["acc_frac"] - of), ob)
            elif typ == "ReLU" and kind == "pass":
                y = np.maximum(ins[0], 0)
            elif typ == "ReLU":  # leaky: X > 0 ? X : S * X, exact in units f_in + c, then rounded
                (_, fi), S = nd["in_formats"][0], arr(name, "negative_slope")[0]
                x = ins[0]
                y = sat(shift_round_half_up(np.where(x > 0, x << c, S * x), fi + c - of), ob)
            elif typ == "AvgPool2d":  # floor(sum * 2^(f - f_in) / N + 1/2), N = kh * kw (no padding)
                p, fi = nd["params"], nd["in_formats"][0][1]
                assert p["padding"] == [0, 0]
                k = p["kernel_size"]
                N = k[0] * k[1]
                total = _window_sum(ins[0], k, p["stride"])
                if of >= fi:
                    y = (2 * (total << (of - fi)) + N) // (2 * N)
                else:
                    D = N << (fi - of)
                    y = (2 * total + D) // (2 * D)
                y = sat(y, ob)
            elif typ == "SumPool2d":  # requantising: the exact window sum (zero padding), rounded half up
                p, fi = nd["params"], nd["in_formats"][0][1]
                total = _window_sum(ins[0], p["kernel_size"], p["stride"], p.get("padding", [0, 0]))
                y = sat(shift_round_half_up(total, fi - of), ob)
            elif typ == "Upsample":  # grid-preserving: each output pixel is a copy of its nearest input pixel
                p = nd["params"]
                assert p.get("mode", "nearest") == "nearest"
                (_, H, W), (_, Ho, Wo) = nd["input_shapes"][0], nd["output_shape"]
                factor = None if p.get("size") is not None else float(p["scale_factor"])  # a size wins, as in torch
                rows, cols = nearest_index(Ho, H, factor), nearest_index(Wo, W, factor)
                y = ins[0][:, :, rows[:, None], cols[None, :]]
            elif typ == "Concat" or (typ == "Skip" and nd["params"]["skip_type"] == "concatenate"):
                # requantising: every input aligned exactly to the finest input fraction F, then rounded half up
                # to the output format, then joined along dim (Skip: the channels, dim 0) in edge order
                rank = len(nd["output_shape"])
                axis = 1 + int(nd["params"]["dim"]) % rank if typ == "Concat" else 1  # axis 0 is the batch
                fr = [f for _, f in nd["in_formats"]]
                F = max(fr)
                y = np.concatenate([sat(shift_round_half_up(x << (F - f), F - of), ob) for x, f in zip(ins, fr)], axis=axis)
            elif typ == "Skip" and kind == "requant":  # residual: aligned exact sum, rounded
                assert nd["params"].get("skip_type", "residual") == "residual"
                fr = [f for _, f in nd["in_formats"]]
                F = max(fr)
                total = sum(x << (F - f) for x, f in zip(ins, fr))
                y = sat(shift_round_half_up(total, F - of), ob)
            elif typ == "Threshold":
                y = (ins[0] > arr(name, "v_threshold")).astype(np.int64)
            elif typ == "MaxPool2d":
                p = nd["params"]
                y = _maxpool(ins[0], p["kernel_size"], p["stride"])
            elif typ == "Flatten":
                y = ins[0].reshape(ins[0].shape[0], -1)
            elif typ == "Output":
                y = ins[0]
            elif kind == "neuron":
                mb, fv = nd["membrane"]
                in_fracs = [f for _, f in nd["in_formats"]]
                if typ == "CubaLIF":  # the current first (round half up), then the membrane reads it
                    ib, fi = nd["current"]
                    Fi = c + max([fi] + in_fracs)
                    I = current.get(name, np.zeros_like(ins[0]))
                    Z = (arr(name, "alpha") * I) << (Fi - fi - c)
                    for x, fk in zip(ins, in_fracs):
                        Z = Z + ((arr(name, "gain_in") * x) << (Fi - fk - c))
                    In = sat(shift_round_half_up(Z, Fi - fi), ib)
                    current[name] = In
                    if currents is not None:
                        currents.setdefault(name, []).append(In)
                    ins, in_fracs = [In], [fi]
                F = c + max([fv] + in_fracs)
                V = state.get(name, np.zeros_like(ins[0]))
                B_ = arr(name, "beta") if f"{name}/beta" in desc.arrays else np.int64(1 << c)
                G = arr(name, "gain")
                L = arr(name, "leak") if f"{name}/leak" in desc.arrays else np.int64(0)
                spiking = typ in ("LIF", "IF", "CubaLIF")
                up = lambda v, f: np.asarray(v, np.int64) << (F - f)  # noqa: E731
                if spiking:
                    thr = arr(name, "v_threshold")
                    vr = arr(name, "v_reset") if f"{name}/v_reset" in desc.arrays else np.int64(0)
                    mode, delay = nd["attrs"]["reset_mode"], nd["attrs"]["reset_delay"]
                    R = (V > thr).astype(np.int64)
                    V0 = np.where(R == 1, vr, V) if mode == "zero" else V
                else:
                    V0 = V
                W = up(B_ * V0, fv + c) + up(L, fv)
                for x, fk in zip(ins, in_fracs):
                    W = W + up(G * x, fk + c)
                if spiking:
                    if mode == "subtract":
                        W = W - R * up(thr, fv)
                    elif mode == "zero_post":
                        W = np.where(R == 1, up(vr, fv), W)
                    S = (W > up(thr, fv)).astype(np.int64)
                    if not delay and mode != "none":
                        D = S - R
                        W = W - D * up(thr, fv) if mode == "subtract" else W - D * W
                Vn = sat(shift_ceil(W, F - fv), mb)
                state[name] = Vn
                if membranes is not None:
                    membranes.setdefault(name, []).append(Vn)
                y = S * arr(name, "graded_spikes_factor")[0] if spiking else Vn
            else:
                raise NotImplementedError(typ)
            cur[name] = y
            outs[name].append(y)
        prev = cur
    return outs
