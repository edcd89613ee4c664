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

Each supported primitive type is an `Hls4mlLayer` registered with `register_hls4ml_layer`: its node
limits, its layers' precisions, its torch module and its layout note. A type without one is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from talon._registry import put
from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.names import c_identifiers
from talon.errors import BackendError, TalonUsageError
from talon.sdk.fixed_point import exact_sum_bits

#: the name hls4ml's channels-last conversion gives the transpose it inserts before layer `x`
_TRANSPOSE = "transpose_input_for_{}"

#: (layer name, precision, whether the layer takes the reuse factor)
LayerConfig = tuple[str, dict[str, str], bool]


@dataclass(frozen=True)
class Hls4mlLayer:
    """How one primitive type goes through hls4ml. Every callable gets the descriptor and the node's entry
    `nd` (talon.backend.descriptor); `name` is the layer's sanitised identifier ("x" for the Input).

    check(n, nd): raise BackendError for what hls4ml cannot realise. config(desc, nd, name): the
    layers' precisions. module(desc, nd): the torch module of ir_to_torch_ann (None: an identity).
    layout(desc, nd, name): a line for hls4ml_layout, or None."""

    config: Callable[[HardwareDescriptor, dict, str], list[LayerConfig]]
    check: Callable[[str, dict], None] | None = None
    module: Callable[[HardwareDescriptor, dict], Any] | None = None
    layout: Callable[[HardwareDescriptor, dict, str], str | None] | None = None


_LAYERS: dict[str, Hls4mlLayer] = {}


def register_hls4ml_layer(type_name: str, layer: Hls4mlLayer, *, replace: bool = False) -> Hls4mlLayer:
    """Let `type_name` go through the hls4ml path; returns the layer."""
    if not isinstance(layer, Hls4mlLayer):
        raise TalonUsageError(f"register_hls4ml_layer({type_name!r}, ...) needs an Hls4mlLayer, got {type(layer).__name__}")
    return put(_LAYERS, type_name, layer, what="an hls4ml layer", replace=replace)


def hls4ml_layer_types() -> list[str]:
    return list(_LAYERS)


def _fx(bits: int, frac: int, rnd_sat: bool = False) -> str:
    return f"ap_fixed<{bits},{bits - frac},AP_RND,AP_SAT>" if rnd_sat else f"ap_fixed<{bits},{bits - frac}>"


def _check_node(n: str, nd: dict) -> None:
    """The node-level limits of the hls4ml path (what its PyTorch front end and Vivado kernels realise)."""
    layer = _LAYERS.get(nd["type"])
    if layer is None:
        raise BackendError(f"ir_to_hls4ml_config covers ANN-only parts ({', '.join(_LAYERS)}, plain ReLU); node {n!r} is a "
                           f"{nd['type']}: compile spiking graphs with get_backend('fpga').compile")  # fmt: skip
    if layer.check is not None:
        layer.check(n, nd)


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
    if isinstance(graph, HardwareDescriptor) and not any(v is not None for v in kw.values()):
        return graph
    from talon.backend.registry import get_backend  # refuses plan options beside a HardwareDescriptor

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
    for nd in chain:
        name = "x" if nd["type"] == "Input" else ids[nd["name"]]
        for layer_name, precision, reuse in _LAYERS[nd["type"]].config(desc, nd, name):
            layers[layer_name] = {"Trace": False, **({"ReuseFactor": int(reuse_factor)} if reuse else {}), "Precision": precision}
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
        layout = _LAYERS[nd["type"]].layout
        line = layout(desc, nd, ids.get(nd["name"], nd["name"])) if layout is not None else None
        if line is not None:
            out.append(line)
    return out


def ir_to_torch_ann(graph: Any, **descriptor_kw: Any) -> Any:
    """A torch.nn.Module (traceable by torch.fx) computing the ANN chain with the plan's on-grid weights
    (W_int * 2^-f_w, B_int * 2^-acc_frac), its submodules named like ir_to_hls4ml_config's layers."""
    from torch import nn

    desc = _descriptor(graph, **descriptor_kw)
    chain = _chain(desc)
    ids = c_identifiers(desc.layer_order)

    class TalonANN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[str] = []
            for nd in chain:
                build = _LAYERS[nd["type"]].module
                m = build(desc, nd) if build is not None else None  # None: an identity
                if m is not None:
                    setattr(self, ids[nd["name"]], m)
                    self.order.append(ids[nd["name"]])

        def forward(self, x):
            for name in self.order:
                x = getattr(self, name)(x)
            return x

    return TalonANN().eval()


# -- the built-in layers ---------------------------------------------------------------------------------


def _on_grid(desc: HardwareDescriptor, module: Any, nd: dict) -> Any:
    import torch

    W = desc.arrays[f"{nd['name']}/weight"].astype(np.float64)
    b = desc.arrays.get(f"{nd['name']}/bias")
    b = np.zeros(W.shape[0]) if b is None else b.astype(np.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ldexp(W, -int(nd["fracs"]["weight"]))))
        module.bias.copy_(torch.from_numpy(np.ldexp(b, -int(nd["acc_frac"]))))
    return module


def _result(nd: dict, rnd_sat: bool = False) -> dict[str, str]:
    ob, of = nd["out_format"]
    return {"result": _fx(ob, of, rnd_sat)}


def _input_config(desc: HardwareDescriptor, nd: dict, name: str) -> list[LayerConfig]:
    out = [("x", _result(nd, True), False)]
    if len(nd["output_shape"]) > 1:  # hls4ml's (C, H, W) -> (H, W, C) transpose of the input
        out.append((_TRANSPOSE.format("x"), _result(nd), False))
    return out


def _input_layout(desc: HardwareDescriptor, nd: dict, name: str) -> str | None:
    if len(nd["output_shape"]) != 3:
        return None
    C, H, W = nd["output_shape"]
    return f"x: input ({C}, {H}, {W}) transposed to ({H}, {W}, {C}) by {_TRANSPOSE.format('x')}"


def _dense_check(n: str, nd: dict) -> None:
    if len(nd["input_shapes"][0]) != 1:
        raise BackendError(f"ir_to_hls4ml_config: {nd['type']} {n!r} needs a vector input; put a Flatten before it")


def _dense_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    W = desc.arrays[f"{nd['name']}/weight"]
    return _on_grid(desc, nn.Linear(W.shape[1], W.shape[0], bias=True), nd)


def _synaptic_config(desc: HardwareDescriptor, nd: dict, name: str) -> list[LayerConfig]:
    return [(name, _synaptic_precision(desc, nd), True)]


def _conv_check(n: str, nd: dict) -> None:
    p = nd["params"]
    if int(p.get("groups", 1)) != 1 or list(p.get("dilation", [1, 1])) != [1, 1] or isinstance(p.get("padding"), str):
        raise BackendError(f"ir_to_hls4ml_config: Conv2d {n!r} must have groups=1, dilation 1 and numeric padding for hls4ml; "
                           "compile it with get_backend('fpga').compile instead")  # fmt: skip


def _conv_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    p = nd["params"]
    O, Cg, KH, KW = desc.arrays[f"{nd['name']}/weight"].shape
    return _on_grid(desc, nn.Conv2d(Cg, O, (KH, KW), stride=tuple(p["stride"]), padding=tuple(p["padding"]), bias=True), nd)


def _conv_layout(desc: HardwareDescriptor, nd: dict, name: str) -> str:
    O, Cg, KH, KW = desc.arrays[f"{nd['name']}/weight"].shape
    return f"{name}: weight (O, C, kh, kw) = ({O}, {Cg}, {KH}, {KW}) stored as (kh, kw, C, O) = ({KH}, {KW}, {Cg}, {O})"


def _relu_check(n: str, nd: dict) -> None:
    if nd["kind"] != "pass":  # a leaky ReLU (re-rounded) has no plain hls4ml ReLU
        raise BackendError(f"ir_to_hls4ml_config covers ANN-only parts ({', '.join(_LAYERS)}, plain ReLU); node {n!r} is a "
                           "leaky ReLU: compile it with get_backend('fpga').compile")  # fmt: skip


def _relu_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    return nn.ReLU()


def _maxpool_check(n: str, nd: dict) -> None:
    p = nd["params"]
    if list(p.get("dilation", [1, 1])) != [1, 1] or p.get("ceil_mode"):
        raise BackendError(f"ir_to_hls4ml_config: MaxPool2d {n!r} with dilation or ceil_mode has no hls4ml layer")


def _maxpool_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    p = nd["params"]
    return nn.MaxPool2d(tuple(p["kernel_size"]), tuple(p["stride"]), tuple(p.get("padding", [0, 0])))


def _avgpool_check(n: str, nd: dict) -> None:
    p = nd["params"]
    if list(p.get("padding", [0, 0])) != [0, 0] or p.get("ceil_mode") or p.get("divisor_override") not in (None, 0):
        raise BackendError(f"ir_to_hls4ml_config: AvgPool2d {n!r} must have no padding, ceil_mode or divisor_override")


def _avgpool_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    p = nd["params"]
    return nn.AvgPool2d(tuple(p["kernel_size"]), tuple(p["stride"]))


def _flatten_check(n: str, nd: dict) -> None:
    if len(nd["output_shape"]) != 1:
        raise BackendError(f"ir_to_hls4ml_config: Flatten {n!r} must flatten to a vector, got shape {nd['output_shape']}")


def _flatten_config(desc: HardwareDescriptor, nd: dict, name: str) -> list[LayerConfig]:
    if len(nd["input_shapes"][0]) <= 1:
        return []
    # the transpose back to channels-first order (folded into the next Dense when there is one)
    return [(_TRANSPOSE.format(name), _result(nd), False), (name, _result(nd), False)]


def _flatten_module(desc: HardwareDescriptor, nd: dict) -> Any:
    from torch import nn

    return nn.Flatten() if len(nd["input_shapes"][0]) > 1 else None  # flattening a vector is an identity


def _flatten_layout(desc: HardwareDescriptor, nd: dict, name: str) -> str | None:
    if len(nd["input_shapes"][0]) != 3:
        return None
    C, H, W = nd["input_shapes"][0]
    return f"{name}: ({H}, {W}, {C}) transposed back to ({C}, {H}, {W}) before flattening (folded into the next Dense)"


def _no_layers(desc: HardwareDescriptor, nd: dict, name: str) -> list[LayerConfig]:
    return []  # an identity at inference (Output, Dropout)


register_hls4ml_layer("Input", Hls4mlLayer(_input_config, layout=_input_layout))
for _t in ("Affine", "Linear"):
    register_hls4ml_layer(_t, Hls4mlLayer(_synaptic_config, check=_dense_check, module=_dense_module))
register_hls4ml_layer("Conv2d", Hls4mlLayer(_synaptic_config, check=_conv_check, module=_conv_module, layout=_conv_layout))
register_hls4ml_layer("ReLU", Hls4mlLayer(lambda desc, nd, name: [(name, _result(nd), True)], check=_relu_check, module=_relu_module))
register_hls4ml_layer("MaxPool2d", Hls4mlLayer(
    lambda desc, nd, name: [(name, {"accum": _result(nd)["result"], **_result(nd)}, True)], check=_maxpool_check, module=_maxpool_module,
))  # fmt: skip
register_hls4ml_layer("AvgPool2d", Hls4mlLayer(lambda desc, nd, name: [(name, _avgpool_precision(nd), True)], check=_avgpool_check,
                                               module=_avgpool_module))  # fmt: skip
register_hls4ml_layer("Flatten", Hls4mlLayer(_flatten_config, check=_flatten_check, module=_flatten_module, layout=_flatten_layout))
for _t in ("Dropout", "Output"):
    register_hls4ml_layer(_t, Hls4mlLayer(_no_layers))
