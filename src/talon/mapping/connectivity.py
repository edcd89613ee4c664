"""Which input elements each output element of a primitive depends on, as sparse operators.

For a node with output shape S_out and input shape S_in, its dependency pattern is a boolean matrix
M (numel(S_out) x numel(S_in)): M[o, i] = 1 when output element o reads input element i (through a
weight, a window or a copy). Mapping never builds M for dense or convolutional layers (that would be one
entry per synapse); a rule instead applies M^T to a sparse matrix Y (output elements x units) as a
product of small factors (Kronecker products of window matrices, channel-group masks and ones), giving
Y_in = M^T Y: which units each input element reaches. Elements are in C order of the sample shape.

`backward(node, in_shapes, out_shapes, out_index, Y)` returns one matrix per input. Register a rule for a
user primitive with `register_connectivity(type_name, rule)`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.ir import Node

Shape = tuple[int, ...]
Rule = Callable[[Node, list[Shape], list[Shape], int, sp.csr_matrix], list[sp.csr_matrix]]

_RULES: dict[str, Rule] = {}


def register_connectivity(type_name: str, rule: Rule | None = None, *, replace: bool = False):
    """Register `rule(node, in_shapes, out_shapes, out_index, Y) -> [Y_in per input]` for a primitive type."""

    def add(fn: Rule) -> Rule:
        if type_name in _RULES and not replace:
            raise MappingError(f"a connectivity rule for {type_name!r} is already registered (pass replace=True)")
        _RULES[type_name] = fn
        return fn

    return add(rule) if rule is not None else add


def connectivity_rule(type_name: str) -> Rule | None:
    return _RULES.get(type_name)


def numel(shape: Shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _eye(n: int) -> sp.csr_matrix:
    return sp.identity(n, dtype=np.float32, format="csr")


def _ones(rows: int, cols: int) -> sp.csr_matrix:
    return sp.csr_matrix(np.ones((rows, cols), dtype=np.float32))


def binarize(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m


def window_matrix(size_in: int, size_out: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> sp.csr_matrix:
    """(size_out x size_in) pattern of a 1-D sliding window: out o reads in o*stride + t*dilation - padding."""
    o = np.repeat(np.arange(size_out, dtype=np.int64), kernel)
    t = np.tile(np.arange(kernel, dtype=np.int64), size_out)
    i = o * stride + t * dilation - padding
    ok = (i >= 0) & (i < size_in)
    m = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (o[ok], i[ok])), shape=(size_out, size_in))
    return binarize(m)


def _group_mask(channels: int, groups: int) -> sp.csr_matrix:
    """(groups x channels): channel c belongs to group c // (channels / groups)."""
    per = channels // groups
    return sp.csr_matrix((np.ones(channels, np.float32), (np.arange(channels) // per, np.arange(channels))), shape=(groups, channels))


def conv_backward(y: sp.csr_matrix, c_in: int, c_out: int, groups: int, spatial: sp.csr_matrix) -> sp.csr_matrix:
    """Y_in for a grouped convolution: `spatial` is the (out positions x in positions) window pattern."""
    n_out_pos, n_in_pos = spatial.shape
    z = sp.kron(_group_mask(c_out, groups), _eye(n_out_pos), format="csr") @ y  # (G*out_pos, U)
    z = sp.kron(_eye(groups), spatial.T.tocsr(), format="csr") @ z  # (G*in_pos, U)
    return binarize(sp.kron(_group_mask(c_in, groups).T.tocsr(), _eye(n_in_pos), format="csr") @ z)


def _identity(node, ins, outs, k, y):
    return [y for _ in ins]


for _t in (
    "Output", "Flatten", "Dropout", "HybridRegion", "ReLU", "Sigmoid", "Tanh", "GELU", "ELU", "PReLU", "Scale",
    "BatchNorm1d", "BatchNorm2d", "Delay",
):
    register_connectivity(_t, _identity)


@register_connectivity("Skip")
def _skip(node, ins, outs, k, y):
    if node.skip_type == "concatenate":
        return _concat_split(ins, outs[0], 0, y)
    return [y for _ in ins]


def _concat_split(ins: list[Shape], out: Shape, dim: int, y: sp.csr_matrix) -> list[sp.csr_matrix]:
    d = dim + len(out) if dim < 0 else dim
    idx = np.arange(numel(out), dtype=np.int64).reshape(out)
    res, off = [], 0
    for s in ins:
        sl = [slice(None)] * len(out)
        sl[d] = slice(off, off + s[d])
        res.append(y[idx[tuple(sl)].ravel()])
        off += s[d]
    return res


@register_connectivity("Concat")
def _concat(node, ins, outs, k, y):
    return _concat_split(ins, outs[0], node.dim, y)


@register_connectivity("ChannelSplit")
def _channel_split(node, ins, outs, k, y):
    shape = ins[0]
    d = node.dim + len(shape) if node.dim < 0 else node.dim
    idx = np.arange(numel(shape), dtype=np.int64).reshape(shape)
    off = sum(s[d] for s in outs[:k])
    sl = [slice(None)] * len(shape)
    sl[d] = slice(off, off + outs[k][d])
    rows = idx[tuple(sl)].ravel()
    scatter = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.arange(rows.size))), shape=(numel(shape), rows.size))
    return [binarize(scatter @ y)]


def _mix_axes(shape: Shape, reduced: np.ndarray, y: sp.csr_matrix) -> sp.csr_matrix:
    """All-to-all among elements sharing the same `reduced` index (e.g. along a softmax axis)."""
    n = numel(shape)
    agg = sp.csr_matrix((np.ones(n, np.float32), (reduced, np.arange(n))), shape=(int(reduced.max()) + 1 if n else 0, n))
    return binarize(agg.T.tocsr() @ (agg @ y))


@register_connectivity("Softmax")
def _softmax(node, ins, outs, k, y):
    shape = ins[0]
    d = node.dim + len(shape) if node.dim < 0 else node.dim
    stride = numel(shape[d + 1 :])
    idx = np.arange(numel(shape), dtype=np.int64)
    reduced = (idx // (stride * shape[d])) * stride + idx % stride
    return [_mix_axes(shape, reduced, y)]


@register_connectivity("LayerNorm")
def _layernorm(node, ins, outs, k, y):
    shape = ins[0]
    block = numel(tuple(node.normalized_shape))
    return [_mix_axes(shape, np.arange(numel(shape), dtype=np.int64) // block, y)]


def _dense(node, ins, outs, k, y):
    shape = ins[0]
    positions = numel(shape[:-1])
    z = sp.kron(_eye(positions), _ones(1, node.out_features), format="csr") @ y
    return [binarize(sp.kron(_eye(positions), _ones(node.in_features, 1), format="csr") @ z)]


for _t in ("Affine", "Linear", "SpikingAffine"):
    register_connectivity(_t, _dense)


def _conv2d(node, ins, outs, k, y):
    (c_in, hi, wi), (c_out, ho, wo) = ins[0], outs[0]
    kh, kw = node.weight.shape[2:]
    ph = window_matrix(hi, ho, kh, node.stride[0], node.padding[0], node.dilation[0])
    pw = window_matrix(wi, wo, kw, node.stride[1], node.padding[1], node.dilation[1])
    return [conv_backward(y, c_in, c_out, node.groups, sp.kron(ph, pw, format="csr"))]


for _t in ("Conv2d", "SConv", "SDConv"):
    register_connectivity(_t, _conv2d)


@register_connectivity("Conv1d")
def _conv1d(node, ins, outs, k, y):
    (c_in, li), (c_out, lo) = ins[0], outs[0]
    p = window_matrix(li, lo, node.weight.shape[2], node.stride, node.padding, node.dilation)
    return [conv_backward(y, c_in, c_out, node.groups, p)]


@register_connectivity("SepConv2d")
def _sepconv(node, ins, outs, k, y):
    (c, hi, wi), (o, ho, wo) = ins[0], outs[0]
    # pointwise: every output channel reads every depthwise channel at the same position
    z = conv_backward(y, c, o, 1, _eye(ho * wo))
    kh, kw = node.depthwise_weight.shape[2:]
    ph = window_matrix(hi, ho, kh, node.stride[0], node.padding[0], node.dilation[0])
    pw = window_matrix(wi, wo, kw, node.stride[1], node.padding[1], node.dilation[1])
    return [conv_backward(z, c, c, c, sp.kron(ph, pw, format="csr"))]


def _pool(node, ins, outs, k, y):
    (c, hi, wi), (_, ho, wo) = ins[0], outs[0]
    dil = getattr(node, "dilation", (1, 1))
    ph = window_matrix(hi, ho, node.kernel_size[0], node.stride[0], node.padding[0], dil[0])
    pw = window_matrix(wi, wo, node.kernel_size[1], node.stride[1], node.padding[1], dil[1])
    return [conv_backward(y, c, c, c, sp.kron(ph, pw, format="csr"))]


for _t in ("MaxPool2d", "AvgPool2d", "SumPool2d"):
    register_connectivity(_t, _pool)


def _resample(size_in: int, size_out: int, mode: str, align_corners: bool) -> sp.csr_matrix:
    o = np.arange(size_out, dtype=np.float64)
    if mode == "nearest":
        src = np.minimum(np.floor(o * size_in / size_out).astype(np.int64), size_in - 1)
        return binarize(sp.csr_matrix((np.ones(size_out, np.float32), (np.arange(size_out), src)), shape=(size_out, size_in)))
    if align_corners and size_out > 1:
        pos = o * (size_in - 1) / (size_out - 1)
    else:
        pos = np.maximum((o + 0.5) * size_in / size_out - 0.5, 0.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    rows = np.concatenate([np.arange(size_out), np.arange(size_out)])
    return binarize(sp.csr_matrix((np.ones(2 * size_out, np.float32), (rows, np.concatenate([lo, hi]))), shape=(size_out, size_in)))


@register_connectivity("Upsample")
def _upsample(node, ins, outs, k, y):
    (c, hi, wi), (_, ho, wo) = ins[0], outs[0]
    m = sp.kron(_resample(hi, ho, node.mode, node.align_corners), _resample(wi, wo, node.mode, node.align_corners), format="csr")
    return [conv_backward(y, c, c, c, m)]
