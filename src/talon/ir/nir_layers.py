"""NIR conversions of the layer families (io, linear, conv, pooling, structure) and the reasons NIR cannot hold
the others (activations, normalisation, ...), registered through talon.ir.nir_registry exactly as a user's
primitive registers its own. Imports no primitive module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talon.ir.nir_common import NIRConversionError, declared_shape, int_of, ints_of
from talon.ir.nir_registry import NIRExportContext, NIRImportContext, refuse_nir_export, register_nir_export, register_nir_import
from talon.ir.node import Node


def _types(nnode: Any, in_shape: tuple | None, out_shape: tuple | None) -> Any:
    if in_shape is not None:
        nnode.input_type = {"input": np.array(in_shape, dtype=np.int64)}
    if out_shape is not None:
        nnode.output_type = {"output": np.array(out_shape, dtype=np.int64)}
    return nnode


def _grouped(conv: Any, in_shape: tuple) -> Any:
    """nir (<= 1.0.8) types a convolution's input as (weight.shape[1], ...), which is C_in/groups: set the real one."""
    conv.input_type = {"input": np.array(in_shape, dtype=np.int64)}
    return conv


# -- io ------------------------------------------------------------------------------------------------


def _export_output(node: Node, ctx: NIRExportContext) -> Any:
    shape = ctx.out_shape if ctx.out_shape is not None else node.shape
    if shape is None:
        raise ctx.refuse("its shape is unknown")
    return ctx.nir.Output(output_type={"output": np.array(shape, dtype=np.int64)})


def _input_fields(nn: Any, ctx: NIRImportContext) -> dict:
    shape = declared_shape(nn.input_type, f"{ctx.where}.input_type")
    if shape is None:
        raise NIRConversionError(f"{ctx.where}: Input has no shape")
    return {"shape": shape}


def _output_fields(nn: Any, ctx: NIRImportContext) -> dict:
    # Declared NIR output shapes are often stale: from another tool, the shape is set by shape inference later.
    return {"shape": None if ctx.natural else declared_shape(nn.output_type, f"{ctx.where}.output_type")}


register_nir_export("Input", lambda node, ctx: ctx.nir.Input(input_type={"input": np.array(node.shape, dtype=np.int64)}))
register_nir_import("Input", "Input", _input_fields, default=True)
register_nir_export("Output", _export_output)
register_nir_import("Output", "Output", _output_fields, default=True)


# -- linear --------------------------------------------------------------------------------------------


def _weight(nn: Any, ctx: NIRImportContext) -> np.ndarray:
    w = ctx.get(nn, "weight")
    if w.ndim != 2:
        raise NIRConversionError(f"{ctx.where}: {type(nn).__name__} weight must be 2-D (out, in), got shape {w.shape}")
    return w


def _export_affine(node: Node, ctx: NIRExportContext) -> Any:
    ctx.need(1, "Affine/Linear")
    return ctx.nir.Affine(weight=node.weight.copy(), bias=node.bias.copy())


def _export_linear(node: Node, ctx: NIRExportContext) -> Any:
    ctx.need(1, "Affine/Linear")
    return ctx.nir.Linear(weight=node.weight.copy())


def _affine_fields(nn: Any, ctx: NIRImportContext) -> dict:
    w, b = _weight(nn, ctx), ctx.get(nn, "bias")
    if b.size == 1 and b.ndim <= 1:  # one bias for every output: NIR's W·x + b broadcasts it
        b = np.full(w.shape[0], b.reshape(-1)[0], dtype=b.dtype)
    if b.shape == (w.shape[1],) and w.shape[0] != w.shape[1]:
        raise NIRConversionError(f"{ctx.where}: Affine weight {w.shape} with bias {b.shape}: the weight is stored (in, out), as "
                                 "haiku/Spyx keep it, but NIR's Affine weight is (out, in); transpose the weight in the "
                                 "exporter (or the NIR graph) before reading it")
    return {"weight": w, "bias": b}


for _t in ("Affine", "SpikingAffine"):
    register_nir_export(_t, _export_affine)
    register_nir_import("Affine", _t, _affine_fields, default=_t == "Affine")
register_nir_export("Linear", _export_linear)
register_nir_import("Linear", "Linear", lambda nn, ctx: {"weight": _weight(nn, ctx)}, default=True)
register_nir_export("Scale", lambda node, ctx: ctx.nir.Scale(scale=ctx.full(node.scale)))
register_nir_import("Scale", "Scale", lambda nn, ctx: {"scale": ctx.get(nn, "scale")}, default=True)


# -- conv ----------------------------------------------------------------------------------------------


def _export_conv1d(node: Node, ctx: NIRExportContext) -> Any:
    shape = ctx.need(2, "Conv1d")
    return _grouped(ctx.nir.Conv1d(input_shape=int(shape[1]), weight=node.weight.copy(), stride=node.stride, padding=node.padding,
                                   dilation=node.dilation, groups=node.groups, bias=node.bias.copy()), shape)


def _export_conv2d(node: Node, ctx: NIRExportContext) -> Any:
    shape = ctx.need(3, "Conv2d")
    return _grouped(ctx.nir.Conv2d(input_shape=tuple(int(s) for s in shape[1:]), weight=node.weight.copy(), stride=tuple(node.stride),
                                   padding=tuple(node.padding), dilation=tuple(node.dilation), groups=node.groups,
                                   bias=node.bias.copy()), shape)


def _dense_depthwise(w: np.ndarray) -> np.ndarray:
    """The (C, C, kh, kw) groups=1 weight computing the depthwise (C, 1, kh, kw) one: zero off the diagonal."""
    c = w.shape[0]
    out = np.zeros((c, c) + w.shape[2:], dtype=w.dtype)
    out[np.arange(c), np.arange(c)] = w[:, 0]
    return out


def _depthwise_of(fields: dict) -> np.ndarray | None:
    """The (C, 1, kh, kw) depthwise weight a NIR Conv2d computes: its own when groups = C, the diagonal of a
    groups=1 (C, C, kh, kw) weight that is exactly zero elsewhere (how TALON writes it), else None."""
    w, groups = fields["weight"], fields["groups"]
    if w.ndim != 4:
        return None
    if w.shape[1] == 1 and groups == w.shape[0]:
        return w
    if groups != 1 or w.shape[0] != w.shape[1]:
        return None
    c = w.shape[0]
    diag = np.ascontiguousarray(w[np.arange(c), np.arange(c)][:, None])
    return diag if np.array_equal(_dense_depthwise(diag), w) else None


def same_depthwise(a: Any, b: Any) -> bool:
    """Are NIR Conv2d nodes `a` and `b` the same depthwise convolution, one written groups=C (C, 1, kh, kw) and the
    other groups=1 with the block-diagonal (C, C, kh, kw) weight (TALON's form since nir's reader refuses the first
    inside a nested graph)? Bit for bit: weights, bias, stride, padding, dilation, input_shape."""
    if type(a).__name__ != "Conv2d" or type(b).__name__ != "Conv2d":
        return False
    try:
        fa, fb = ({"weight": np.asarray(n.weight), "groups": int(np.asarray(n.groups))} for n in (a, b))
        wa, wb = _depthwise_of(fa), _depthwise_of(fb)
        if wa is None or wb is None or wa.dtype != wb.dtype or wa.shape != wb.shape or wa.tobytes() != wb.tobytes():
            return False
        for key in ("bias", "stride", "padding", "dilation", "input_shape"):
            x, y = getattr(a, key, None), getattr(b, key, None)
            if (x is None) != (y is None):
                return False
            if x is not None:
                xa, ya = np.asarray(x), np.asarray(y)
                if (key == "bias" and xa.dtype != ya.dtype) or xa.shape != ya.shape or not np.array_equal(xa, ya):
                    return False
        return True
    except (TypeError, ValueError):
        return False


def _export_sepconv2d(node: Node, ctx: NIRExportContext) -> Any:
    """A depthwise then a pointwise NIR Conv2d, as a small NIRGraph. The depthwise stage is written as a groups=1
    Conv2d whose (C, C, kh, kw) weight is zero off the diagonal: the same convolution by NIR's equations, and one
    nir's own reader accepts (nir <= 1.0.8 types a grouped Conv2d's input as C/groups and type-checks nested graphs
    whatever type_check says, so it refuses groups=C there). The file is C times larger in that weight."""
    nir, shape = ctx.nir, ctx.need(3, "Conv2d")
    dw = nir.Conv2d(input_shape=tuple(int(s) for s in shape[1:]), weight=_dense_depthwise(node.depthwise_weight), stride=tuple(node.stride),
                    padding=tuple(node.padding), dilation=tuple(node.dilation), groups=1, bias=node.depthwise_bias.copy())
    mid = tuple(int(s) for s in dw.output_type["output"][1:])
    pw = nir.Conv2d(input_shape=mid, weight=node.pointwise_weight.copy(), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    groups=1, bias=node.pointwise_bias.copy())
    nodes = {"input": nir.Input(input_type={"input": np.array(shape, dtype=np.int64)}), "depthwise": dw, "pointwise": pw,
             "output": nir.Output(output_type={"output": np.array(pw.output_type["output"], dtype=np.int64)})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "depthwise"), ("depthwise", "pointwise"), ("pointwise", "output")],
                        metadata={}, type_check=False)


def _conv_padding(value: Any, kernel: tuple, stride: tuple, dilation: tuple, where: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes, np.str_)):
        mode = (value.decode() if isinstance(value, bytes) else str(value)).lower()  # "SAME"/"VALID": TensorFlow/haiku spelling
        if mode == "valid":
            return (0,) * len(kernel)
        if mode == "same":
            out = []
            for k, s, d in zip(kernel, stride, dilation):
                total = d * (k - 1)
                if s != 1 or total % 2:
                    raise NIRConversionError(f"{where}: padding='same' with kernel {k}, stride {s}, dilation {d} needs "
                                             "asymmetric or stride-dependent padding, which TALON's convolution does not have")
                out.append(total // 2)
            return tuple(out)
        raise NIRConversionError(f"{where}: unknown padding {mode!r}")
    return ints_of(value, len(kernel), where)


def _conv_fields(n: int) -> Any:
    def fields(nn: Any, ctx: NIRImportContext) -> dict:
        w = ctx.get(nn, "weight")
        if w.ndim != n + 2:
            raise NIRConversionError(f"{ctx.where}: {type(nn).__name__} weight must be {n + 2}-D, got shape {w.shape}")
        bias = getattr(nn, "bias", None)
        bias = np.zeros(w.shape[0], dtype=w.dtype) if bias is None else ctx.get(nn, "bias")
        stride = ints_of(nn.stride, n, f"{ctx.where}.stride")
        dilation = ints_of(nn.dilation, n, f"{ctx.where}.dilation")
        padding = _conv_padding(nn.padding, tuple(w.shape[2:]), stride, dilation, f"{ctx.where}.padding")
        groups = int_of(nn.groups, f"{ctx.where}.groups")
        if n == 1:
            return {"weight": w, "bias": bias, "stride": stride[0], "padding": padding[0], "dilation": dilation[0], "groups": groups}
        return {"weight": w, "bias": bias, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    return fields


def _sepconv2d_fields(nn: Any, ctx: NIRImportContext) -> dict | None:
    inner = {k: v for k, v in nn.nodes.items() if type(v).__name__ not in ("Input", "Output")}
    if {k: type(v).__name__ for k, v in inner.items()} != {"depthwise": "Conv2d", "pointwise": "Conv2d"}:
        return None
    dw = ctx.fields(inner["depthwise"], "Conv2d", f"{ctx.where}/depthwise")
    pw = ctx.fields(inner["pointwise"], "Conv2d", f"{ctx.where}/pointwise")
    if dw is None or pw is None:
        return None
    depthwise = _depthwise_of(dw)
    if depthwise is None or pw["groups"] != 1:
        return None
    return {"depthwise_weight": depthwise, "depthwise_bias": dw["bias"], "pointwise_weight": pw["weight"],
            "pointwise_bias": pw["bias"], "stride": dw["stride"], "padding": dw["padding"], "dilation": dw["dilation"]}


register_nir_export("Conv1d", _export_conv1d)
register_nir_import("Conv1d", "Conv1d", _conv_fields(1), default=True)
for _t in ("Conv2d", "SConv", "SDConv"):
    register_nir_export(_t, _export_conv2d)
    register_nir_import("Conv2d", _t, _conv_fields(2), default=_t == "Conv2d")
register_nir_export("SepConv2d", _export_sepconv2d)
register_nir_import("NIRGraph", "SepConv2d", _sepconv2d_fields)


# -- pooling -------------------------------------------------------------------------------------------


def _export_sumpool(node: Node, ctx: NIRExportContext) -> Any:
    return _types(ctx.nir.SumPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding)),
                  ctx.in_shape, ctx.out_shape)


def _export_avgpool(node: Node, ctx: NIRExportContext) -> Any:
    if node.ceil_mode:
        raise ctx.refuse("ceil_mode=True: NIR's AvgPool2d rounds its output size down")
    if not node.count_include_pad and any(node.padding):
        raise ctx.refuse("count_include_pad=False with padding: NIR's AvgPool2d is a SumPool2d scaled by "
                         "1/(kernel area), which counts the padding")
    return _types(ctx.nir.AvgPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride), padding=np.array(node.padding)),
                  ctx.in_shape, ctx.out_shape)


def _pool_fields(nn: Any, ctx: NIRImportContext) -> dict:
    w = ctx.where
    return {"kernel_size": ints_of(nn.kernel_size, 2, f"{w}.kernel_size"), "stride": ints_of(nn.stride, 2, f"{w}.stride"),
            "padding": ints_of(nn.padding, 2, f"{w}.padding")}


register_nir_export("SumPool2d", _export_sumpool)
register_nir_import("SumPool2d", "SumPool2d", _pool_fields, default=True)
register_nir_export("AvgPool2d", _export_avgpool)
# NIR's AvgPool2d is SumPool2d then Scale(1/area): no ceil mode, padding counted.
register_nir_import("AvgPool2d", "AvgPool2d", lambda nn, ctx: {**_pool_fields(nn, ctx), "ceil_mode": False, "count_include_pad": True},
                    default=True)
refuse_nir_export("MaxPool2d", "NIR has no max pooling primitive (only SumPool2d and AvgPool2d); replace it by "
                  "AvgPool2d/SumPool2d and retrain, or keep the model in .t1c")
refuse_nir_export("Upsample", "NIR has no upsampling primitive")


# -- structure -----------------------------------------------------------------------------------------

_CONCAT = "NIR has no concatenation (edges into a NIR node are summed)"


def _identity(node: Node, ctx: NIRExportContext) -> Any:
    """The identity in inference, as Scale(1): NIR sums the edges into a node, so it is an exact residual sum too."""
    return ctx.nir.Scale(scale=np.ones(ctx.need(), dtype=np.float32))


def _export_skip(node: Node, ctx: NIRExportContext) -> Any:
    if node.skip_type not in ("residual", "passthrough"):
        raise ctx.refuse(_CONCAT)
    return _identity(node, ctx)


register_nir_export("Flatten", lambda node, ctx: ctx.nir.Flatten(input_type={"input": np.array(ctx.need(), dtype=np.int64)},
                                                                  start_dim=node.start_dim, end_dim=node.end_dim))
register_nir_import("Flatten", "Flatten", lambda nn, ctx: {"start_dim": int_of(nn.start_dim, f"{ctx.where}.start_dim"),
                                                           "end_dim": int_of(nn.end_dim, f"{ctx.where}.end_dim")}, default=True)
register_nir_export("Skip", _export_skip)
for _t in ("Skip", "Dropout", "HybridRegion"):  # identities in inference, tagged so that they come back
    if _t != "Skip":
        register_nir_export(_t, _identity)
    register_nir_import("Scale", _t, lambda nn, ctx: {})
refuse_nir_export("Concat", _CONCAT)
refuse_nir_export("ChannelSplit", "NIR has no split: a NIR node sends its whole output along every edge")


# -- what NIR has no primitive for ---------------------------------------------------------------------

for _t in ("ReLU", "Sigmoid", "Tanh", "GELU", "ELU", "PReLU"):
    refuse_nir_export(_t, "NIR has no activation functions besides Threshold")
refuse_nir_export("Softmax", "NIR has no softmax")
for _t in ("BatchNorm1d", "BatchNorm2d"):
    refuse_nir_export(_t, "NIR has no normalisation; fold the batch norm into the preceding Affine/Conv first")
refuse_nir_export("LayerNorm", "NIR has no normalisation")
for _t in ("DFLDecode", "Dist2BBox", "GhostBasicBlock1", "GhostBasicBlock2", "NMS", "SDDetect", "SGhostConv", "SGhostEncoderLite"):
    refuse_nir_export(_t, "a detection block of the existing SDK, which NIR has no primitive for; keep the model in .t1c")
