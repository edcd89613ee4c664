"""The ANN-only path through hls4ml: an hls4ml HLS configuration (and the matching torch module) from
the quantised IR, with every precision taken from the fixed-point plan (docs/fpga.md, "hls4ml").

Supported: feed-forward chains of Input, Affine/Linear, ReLU (negative_slope 0), Flatten of a vector,
Dropout and Output. Spiking or stateful nodes raise BackendError (use `get_backend("fpga").compile`).

Precisions (Qb.f of docs/fixed_point.md becomes `ap_fixed<b, b - f>`):

- input layer result: `ap_fixed<b, b-f, AP_RND, AP_SAT>`, i.e. sat(floor(x * 2^f + 1/2)), the Input rule;
- Dense weight `ap_fixed<w, w - f_w>` (the integers are exact on it), bias `ap_fixed<acc_bits, acc_bits - acc_frac>`;
- Dense accum: wide enough never to wrap (`b_in + w + ceil(log2(fan_in + 1)) + 2` bits, frac acc_frac), so the
  sum is exact like the contract's; result `ap_fixed<b, b-f, AP_RND, AP_SAT>`: round-half-up and saturate.
  The contract also saturates the exact sum to `acc_bits` first; the two agree whenever that saturation does
  not bind, or binds beyond the output range (the usual case) - "within the precision chosen";
- ReLU result: its input's format (ReLU is grid-preserving).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.names import c_identifiers
from talon.errors import BackendError

_ANN = ("Input", "Affine", "Linear", "ReLU", "Flatten", "Dropout", "Output")


def _fx(bits: int, frac: int, rnd_sat: bool = False) -> str:
    return f"ap_fixed<{bits},{bits - frac},AP_RND,AP_SAT>" if rnd_sat else f"ap_fixed<{bits},{bits - frac}>"


def _chain(desc: HardwareDescriptor) -> list[dict]:
    nodes = desc.nodes
    order = desc.layer_order
    if len(desc.meta["inputs"]) != 1 or len(desc.meta["outputs"]) != 1:
        raise BackendError("ir_to_hls4ml_config supports graphs with one Input and one Output")
    for i, n in enumerate(order):
        nd = nodes[n]
        if nd["type"] not in _ANN or (nd["type"] == "ReLU" and nd["kind"] != "pass"):
            raise BackendError(f"ir_to_hls4ml_config covers ANN-only parts ({', '.join(_ANN)}, plain ReLU); node {n!r} is a "
                               f"{nd['type']}: compile spiking graphs with get_backend('fpga').compile")  # fmt: skip
        if i and nd["inputs"] != [order[i - 1]]:
            raise BackendError(f"ir_to_hls4ml_config supports chains only; node {n!r} has inputs {nd['inputs']}")
        if nd["type"] == "Flatten" and len(nd["input_shapes"][0]) != 1:
            raise BackendError(f"ir_to_hls4ml_config: Flatten {n!r} of a multi-dimensional tensor is not supported")
    return [nodes[n] for n in order]


def _descriptor(graph: Any, **kw: Any) -> HardwareDescriptor:
    if isinstance(graph, HardwareDescriptor):
        return graph
    from talon.backend.registry import get_backend

    return get_backend("fpga").descriptor(graph, **kw)


def ir_to_hls4ml_config(graph: Any, *, reuse_factor: int = 1, strategy: str = "Latency", **descriptor_kw: Any) -> dict:
    """The `hls_config` for `hls4ml.converters.convert_from_pytorch_model(ir_to_torch_ann(graph), hls_config=...)`.

    graph: Graph, .t1c path or HardwareDescriptor (descriptor_kw: fixed_config, calibration_inputs, n_steps).
    Layer names are the sanitised identifiers of talon.backend.fpga.names; the input layer is "x"."""
    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)
    layers: dict[str, Any] = {}
    for nd in chain:
        t, (ob, of) = nd["type"], nd["out_format"]
        if t == "Input":
            layers["x"] = {"Trace": False, "Precision": {"result": _fx(ob, of, True)}}
        elif t in ("Affine", "Linear"):
            W = desc.arrays[f"{nd['name']}/weight"]
            wb, fw = int(nd["attrs"].get("weight_bits", 8)), int(nd["fracs"]["weight"])
            ib = int(nd["in_formats"][0][0])
            ab, af = int(nd["acc_bits"]), int(nd["acc_frac"])
            wide = max(ab, ib + wb + math.ceil(math.log2(W.shape[1] + 1)) + 2)
            layers[ids[nd["name"]]] = {
                "Trace": False,
                "ReuseFactor": int(reuse_factor),
                "Precision": {"weight": _fx(wb, fw), "bias": _fx(ab, af), "accum": _fx(wide, af), "result": _fx(ob, of, True)},
            }
        elif t == "ReLU":
            layers[ids[nd["name"]]] = {"Trace": False, "ReuseFactor": int(reuse_factor), "Precision": {"result": _fx(ob, of, True)}}
    in_shape = list(chain[0]["output_shape"])
    return {
        # ChannelsLastConversion must stay "full" (hls4ml's default): "off" also skips its Dense weight transpose
        "Model": {"Precision": {"default": "ap_fixed<16,6>"}, "ReuseFactor": int(reuse_factor), "Strategy": strategy,
                  "ChannelsLastConversion": "full", "TransposeOutputs": False, "BramFactor": 1000000000, "TraceOutput": False},  # fmt: skip
        "InputShape": tuple(in_shape),
        "LayerName": layers,
    }


def ir_to_torch_ann(graph: Any, **descriptor_kw: Any) -> Any:
    """A torch.nn.Module (traceable by torch.fx) computing the ANN chain with the plan's on-grid weights
    (W_int * 2^-f_w, B_int * 2^-acc_frac), its submodules named like ir_to_hls4ml_config's layers."""
    import torch
    from torch import nn

    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)

    class TalonANN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[str] = []
            for nd in chain:
                t = nd["type"]
                if t in ("Affine", "Linear"):
                    W = desc.arrays[f"{nd['name']}/weight"].astype(np.float64)
                    lin = nn.Linear(W.shape[1], W.shape[0], bias=True)
                    b = desc.arrays.get(f"{nd['name']}/bias")
                    b = np.zeros(W.shape[0]) if b is None else b.astype(np.float64)
                    with torch.no_grad():
                        lin.weight.copy_(torch.from_numpy(np.ldexp(W, -int(nd["fracs"]["weight"]))))
                        lin.bias.copy_(torch.from_numpy(np.ldexp(b, -int(nd["acc_frac"]))))
                    setattr(self, ids[nd["name"]], lin)
                    self.order.append(ids[nd["name"]])
                elif t == "ReLU":
                    setattr(self, ids[nd["name"]], nn.ReLU())
                    self.order.append(ids[nd["name"]])

        def forward(self, x):
            for name in self.order:
                x = getattr(self, name)(x)
            return x

    return TalonANN().eval()
