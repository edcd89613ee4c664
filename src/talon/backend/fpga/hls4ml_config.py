"""The ANN-only path through hls4ml: an hls4ml HLS configuration (and the matching torch module) from
the quantised IR, with every precision taken from the fixed-point plan (docs/fpga.md, "hls4ml").

Supported: feed-forward chains of Input, Conv2d (zero padding, stride; groups and dilation 1),
ReLU (negative_slope 0), MaxPool2d (no dilation or ceil_mode), AvgPool2d (no padding, ceil_mode or
divisor_override), Flatten (to a vector), Affine/Linear, Dropout and Output. Spiking or stateful nodes
raise BackendError (use `get_backend("fpga").compile`).

Precisions (Qb.f of docs/fixed_point.md becomes `ap_fixed<b, b - f>`):

- input layer result: `ap_fixed<b, b-f, AP_RND, AP_SAT>`, i.e. sat(floor(x * 2^f + 1/2)), the Input rule;
- Dense/Conv2D weight `ap_fixed<w, w - f_w>` (the integers are exact on it), bias `ap_fixed<acc_bits, acc_bits - acc_frac>`;
- Dense/Conv2D accum: wide enough never to wrap (`b_in + w + ceil(log2(fan_in + 1)) + 2` bits, frac acc_frac), so the
  sum is exact like the contract's; result `ap_fixed<b, b-f, AP_RND, AP_SAT>`: round-half-up and saturate.
  The contract also saturates the exact sum to `acc_bits` first; the two agree whenever that saturation does
  not bind, or binds beyond the output range (the usual case) - "within the precision chosen";
- ReLU, MaxPool2d, Flatten (and the transposes hls4ml inserts): their input's format (grid-preserving);
- AveragePooling2D: hls4ml sums the window in `accum`, divides by N (quotient truncated to `accum`'s
  fraction) and casts to the result with AP_RND/AP_SAT. With `accum` fraction `max(f_in, f) + ceil(log2 N) + 2`
  the truncation never crosses a rounding boundary of the result (the exact mean sits at a multiple of
  2^-(max(f_in, f) + 1) / N from each), so the result is the contract's floor(mean * 2^f + 1/2) exactly.

Layout. hls4ml's Vivado io_parallel kernels are channels-last ((H, W, C) tensors, Conv2D weights
(kh, kw, cin, cout)); TALON, like torch, is channels-first. The config asks hls4ml's PyTorch front end for
`ChannelsLastConversion: "full"`: it transposes every Conv2D weight to (kh, kw, cin, cout), adds one
transpose of the (C, H, W) input (wiring only in io_parallel) and, before a Flatten, a transpose back to
(C, H, W) order that it folds into the next Dense's weights (RemoveTransposeBeforeFlatten), so the Dense
weights keep TALON's channels-first Flatten order. The model therefore takes TALON's (C, H, W) inputs and
returns TALON's output order; `hls4ml_layout` lists what the conversion does for a given graph.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.names import c_identifiers
from talon.errors import BackendError
from talon.sdk.fixed_point import exact_sum_bits

_ANN = ("Input", "Affine", "Linear", "Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout", "Output")
#: the name hls4ml's channels-last conversion gives the transpose it inserts before layer `x`
_TRANSPOSE = "transpose_input_for_{}"


def _fx(bits: int, frac: int, rnd_sat: bool = False) -> str:
    return f"ap_fixed<{bits},{bits - frac},AP_RND,AP_SAT>" if rnd_sat else f"ap_fixed<{bits},{bits - frac}>"


def _check_node(n: str, nd: dict) -> None:
    """The node-level limits of the hls4ml path (what its PyTorch front end and Vivado kernels realise)."""
    t, p = nd["type"], nd["params"]
    if t not in _ANN or (t == "ReLU" and nd["kind"] != "pass"):
        raise BackendError(f"ir_to_hls4ml_config covers ANN-only parts ({', '.join(_ANN)}, plain ReLU); node {n!r} is a "
                           f"{t}: compile spiking graphs with get_backend('fpga').compile")  # fmt: skip
    if t == "Conv2d" and (int(p.get("groups", 1)) != 1 or list(p.get("dilation", [1, 1])) != [1, 1] or isinstance(p.get("padding"), str)):
        raise BackendError(f"ir_to_hls4ml_config: Conv2d {n!r} must have groups=1, dilation 1 and numeric padding for hls4ml; "
                           "compile it with get_backend('fpga').compile instead")  # fmt: skip
    if t == "MaxPool2d" and (list(p.get("dilation", [1, 1])) != [1, 1] or p.get("ceil_mode")):
        raise BackendError(f"ir_to_hls4ml_config: MaxPool2d {n!r} with dilation or ceil_mode has no hls4ml layer")
    if t == "AvgPool2d" and (list(p.get("padding", [0, 0])) != [0, 0] or p.get("ceil_mode") or p.get("divisor_override") not in (None, 0)):
        raise BackendError(f"ir_to_hls4ml_config: AvgPool2d {n!r} must have no padding, ceil_mode or divisor_override")
    if t == "Flatten" and len(nd["output_shape"]) != 1:
        raise BackendError(f"ir_to_hls4ml_config: Flatten {n!r} must flatten to a vector, got shape {nd['output_shape']}")
    if t in ("Affine", "Linear") and len(nd["input_shapes"][0]) != 1:
        raise BackendError(f"ir_to_hls4ml_config: {t} {n!r} needs a vector input; put a Flatten before it")


def _chain(desc: HardwareDescriptor) -> list[dict]:
    nodes = desc.nodes
    order = desc.layer_order
    if len(desc.meta["inputs"]) != 1 or len(desc.meta["outputs"]) != 1:
        raise BackendError("ir_to_hls4ml_config supports graphs with one Input and one Output")
    for i, n in enumerate(order):
        _check_node(n, nodes[n])
        if i and nodes[n]["inputs"] != [order[i - 1]]:
            raise BackendError(f"ir_to_hls4ml_config supports chains only; node {n!r} has inputs {nodes[n]['inputs']}")
    return [nodes[n] for n in order]


def _descriptor(graph: Any, **kw: Any) -> HardwareDescriptor:
    if isinstance(graph, HardwareDescriptor):
        return graph
    from talon.backend.registry import get_backend

    return get_backend("fpga").descriptor(graph, **kw)


def _synaptic_precision(desc: HardwareDescriptor, nd: dict) -> dict[str, str]:
    """weight/bias/accum/result of a Dense or Conv2D layer (module docstring)."""
    W = desc.arrays[f"{nd['name']}/weight"]
    wb, fw = int(nd["attrs"].get("weight_bits", 8)), int(nd["fracs"]["weight"])
    ib = int(nd["in_formats"][0][0])
    ab, af = int(nd["acc_bits"]), int(nd["acc_frac"])
    fan_in = int(W.size // W.shape[0])
    wide = max(ab, exact_sum_bits(ib, wb, fan_in))
    ob, of = nd["out_format"]
    return {"weight": _fx(wb, fw), "bias": _fx(ab, af), "accum": _fx(wide, af), "result": _fx(ob, of, True)}


def _avgpool_precision(nd: dict) -> dict[str, str]:
    (ib, fi), (ob, of) = nd["in_formats"][0], nd["out_format"]
    k = nd["params"]["kernel_size"]
    grow = math.ceil(math.log2(int(k[0]) * int(k[1])))
    frac = max(fi, of) + grow + 2
    return {"accum": _fx((ib - fi) + grow + 1 + frac, frac), "result": _fx(ob, of, True)}


def ir_to_hls4ml_config(graph: Any, *, reuse_factor: int = 1, strategy: str = "Latency", **descriptor_kw: Any) -> dict:
    """The `hls_config` for `hls4ml.converters.convert_from_pytorch_model(ir_to_torch_ann(graph), hls_config=...)`.

    graph: Graph, .t1c path or HardwareDescriptor (descriptor_kw: fixed_config, calibration_inputs, n_steps).
    Layer names are the sanitised identifiers of talon.backend.fpga.names; the input layer is "x"; the
    transposes hls4ml inserts for channels-last ("transpose_input_for_<layer>") get their input's format."""
    if isinstance(reuse_factor, bool) or not isinstance(reuse_factor, int) or reuse_factor < 1:
        raise BackendError(f"ir_to_hls4ml_config: reuse_factor must be a positive integer, got {reuse_factor!r}")
    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)
    layers: dict[str, Any] = {}

    def add(name: str, precision: dict[str, str], reuse: bool = True) -> None:
        layers[name] = {"Trace": False, **({"ReuseFactor": int(reuse_factor)} if reuse else {}), "Precision": precision}

    for nd in chain:
        t, (ob, of) = nd["type"], nd["out_format"]
        name = "x" if t == "Input" else ids[nd["name"]]
        if t == "Input":
            add("x", {"result": _fx(ob, of, True)}, reuse=False)
            if len(nd["output_shape"]) > 1:  # hls4ml's (C, H, W) -> (H, W, C) transpose of the input
                add(_TRANSPOSE.format("x"), {"result": _fx(ob, of)}, reuse=False)
        elif t in ("Affine", "Linear", "Conv2d"):
            add(name, _synaptic_precision(desc, nd))
        elif t == "AvgPool2d":
            add(name, _avgpool_precision(nd))
        elif t in ("ReLU", "MaxPool2d"):
            add(name, {"result": _fx(ob, of)} if t == "ReLU" else {"accum": _fx(ob, of), "result": _fx(ob, of)})
        elif t == "Flatten" and len(nd["input_shapes"][0]) > 1:
            # the transpose back to channels-first order (folded into the next Dense when there is one)
            add(_TRANSPOSE.format(name), {"result": _fx(ob, of)}, reuse=False)
            add(name, {"result": _fx(ob, of)}, reuse=False)
    in_shape = list(chain[0]["output_shape"])
    return {
        # "full": hls4ml transposes Conv2D weights to channels-last, the input on the way in, and restores the
        # channels-first Flatten order (module docstring); "off" would also skip its Dense weight transpose.
        "Model": {"Precision": {"default": "ap_fixed<16,6>"}, "ReuseFactor": int(reuse_factor), "Strategy": strategy,
                  "ChannelsLastConversion": "full", "TransposeOutputs": False, "BramFactor": 1000000000, "TraceOutput": False},  # fmt: skip
        "InputShape": tuple(in_shape),
        "LayerName": layers,
    }


def hls4ml_layout(graph: Any, **descriptor_kw: Any) -> list[str]:
    """What hls4ml's channels-last conversion does to the chain of `graph`, one line per affected layer
    (the layout contract of the module docstring, for README/log output)."""
    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)
    out = []
    for nd in chain:
        t, name = nd["type"], ids.get(nd["name"], nd["name"])
        if t == "Input" and len(nd["output_shape"]) == 3:
            C, H, W = nd["output_shape"]
            out.append(f"x: input ({C}, {H}, {W}) transposed to ({H}, {W}, {C}) by {_TRANSPOSE.format('x')}")
        elif t == "Conv2d":
            O, Cg, KH, KW = desc.arrays[f"{nd['name']}/weight"].shape
            out.append(f"{name}: weight (O, C, kh, kw) = ({O}, {Cg}, {KH}, {KW}) stored as (kh, kw, C, O) = ({KH}, {KW}, {Cg}, {O})")
        elif t == "Flatten" and len(nd["input_shapes"][0]) == 3:
            C, H, W = nd["input_shapes"][0]
            out.append(f"{name}: ({H}, {W}, {C}) transposed back to ({C}, {H}, {W}) before flattening (folded into the next Dense)")
    return out


def ir_to_torch_ann(graph: Any, **descriptor_kw: Any) -> Any:
    """A torch.nn.Module (traceable by torch.fx) computing the ANN chain with the plan's on-grid weights
    (W_int * 2^-f_w, B_int * 2^-acc_frac), its submodules named like ir_to_hls4ml_config's layers."""
    import torch
    from torch import nn

    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)

    def on_grid(module: nn.Module, nd: dict) -> nn.Module:
        W = desc.arrays[f"{nd['name']}/weight"].astype(np.float64)
        b = desc.arrays.get(f"{nd['name']}/bias")
        b = np.zeros(W.shape[0]) if b is None else b.astype(np.float64)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.ldexp(W, -int(nd["fracs"]["weight"]))))
            module.bias.copy_(torch.from_numpy(np.ldexp(b, -int(nd["acc_frac"]))))
        return module

    def build(nd: dict) -> nn.Module | None:
        t, p = nd["type"], nd["params"]
        if t in ("Affine", "Linear"):
            W = desc.arrays[f"{nd['name']}/weight"]
            return on_grid(nn.Linear(W.shape[1], W.shape[0], bias=True), nd)
        if t == "Conv2d":
            O, Cg, KH, KW = desc.arrays[f"{nd['name']}/weight"].shape
            return on_grid(nn.Conv2d(Cg, O, (KH, KW), stride=tuple(p["stride"]), padding=tuple(p["padding"]), bias=True), nd)
        if t == "ReLU":
            return nn.ReLU()
        if t == "MaxPool2d":
            return nn.MaxPool2d(tuple(p["kernel_size"]), tuple(p["stride"]), tuple(p.get("padding", [0, 0])))
        if t == "AvgPool2d":
            return nn.AvgPool2d(tuple(p["kernel_size"]), tuple(p["stride"]))
        if t == "Flatten" and len(nd["input_shapes"][0]) > 1:
            return nn.Flatten()
        return None  # Input, Output, Dropout (inference) and Flatten of a vector are identities

    class TalonANN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[str] = []
            for nd in chain:
                m = build(nd)
                if m is not None:
                    setattr(self, ids[nd["name"]], m)
                    self.order.append(ids[nd["name"]])

        def forward(self, x):
            for name in self.order:
                x = getattr(self, name)(x)
            return x

    return TalonANN().eval()
