"""Primitives: construction and validation from FieldSpecs, output-shape rules, the registry, equality."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import talon.ir as ir
from talon.errors import GraphValidationError, PrimitiveError, TalonError, TalonUsageError
from talon.ir import Node, register_node
from talon.ir.node import ANY_FLOAT, ARRAY, BOOL, FLOAT, INT, INTS, STR, integer, real, array, string

from ._gen import VALID, builtin_primitives, f32, make

BUILTINS = builtin_primitives()


def test_every_registered_primitive_has_a_valid_example():
    # If this fails a primitive was added without an entry in tests/ir/_gen.py:VALID (and the tests below).
    assert sorted(set(BUILTINS) - set(VALID)) == []
    assert "Graph" in ir.list_primitives()


def test_registry_lookups():
    for name in ir.list_primitives():
        cls = ir.get_node_class(name)
        assert cls is not None and issubclass(cls, Node) and cls.type_name == name
    assert ir.get_node_class("NoSuchPrimitive") is None
    assert len(set(ir.list_primitives())) == len(ir.list_primitives())


# ----------------------------------------------------------------------------------------------------
# Construction and validation
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", BUILTINS)
def test_constructs_from_valid_fields(type_name):
    node = make(type_name)
    cls = ir.get_node_class(type_name)
    assert type(node) is cls and node.type_name == type_name
    specs = cls.field_specs()
    assert "metadata" in specs
    for name, spec in specs.items():
        value = getattr(node, name)
        if value is None:
            assert spec.optional, f"{type_name}.{name} is None but not optional"
            continue
        if spec.kind == ARRAY:
            assert isinstance(value, np.ndarray) and value.flags.c_contiguous
            if spec.dtype == ANY_FLOAT:
                assert value.dtype in (np.float32, np.float64)
            else:
                assert value.dtype == np.dtype(spec.dtype)
        elif spec.kind == INT:
            assert type(value) is int
        elif spec.kind == FLOAT:
            assert type(value) is float
        elif spec.kind == BOOL:
            assert type(value) is bool
        elif spec.kind == STR:
            assert type(value) is str and (spec.choices is None or value in spec.choices)
        elif spec.kind == INTS:
            assert type(value) is tuple and all(type(v) is int for v in value)
            assert spec.length is None or len(value) == spec.length
    # Not in equality, not fields: shapes are set by inference only.
    assert node.input_shapes is None and node.output_shapes is None
    assert node == make(type_name, **{n: getattr(node, n) for n in specs})
    repr(node)


def _fields_of(kind):
    return [(t, n, s) for t in BUILTINS for n, s in ir.get_node_class(t).field_specs().items() if s.kind == kind]


@pytest.mark.parametrize("type_name,field,spec", _fields_of(INT), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("bad", [1.5, True, np.array([1, 2]), math.nan, math.inf, [1], object()], ids=repr)
def test_int_fields_reject_non_integers(type_name, field, spec, bad):
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: bad})


@pytest.mark.parametrize("type_name,field,spec", _fields_of(INT), ids=lambda v: v if isinstance(v, str) else "")
def test_int_fields_accept_integral_values(type_name, field, spec):
    value = int(spec.minimum) + 2 if spec.minimum is not None else 3
    if field in ("groups", "num_features", "weight_bits", "accumulator_bits"):
        value = getattr(make(type_name), field)  # constrained by other fields
    for v in (value, np.int64(value), float(value), np.array(value)):
        node = make(type_name, **{field: v})
        assert getattr(node, field) == value and type(getattr(node, field)) is int


@pytest.mark.parametrize("type_name,field,spec", [f for f in _fields_of(INT) + _fields_of(FLOAT) if f[2].minimum is not None],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_numeric_fields_enforce_minimum(type_name, field, spec):
    below = spec.minimum - 1 if spec.kind == INT else spec.minimum - 1e-9
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: below})
    if spec.kind == FLOAT:
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: math.nan})


@pytest.mark.parametrize("type_name,field,spec", _fields_of(FLOAT), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("bad", [True, np.array([1.0, 2.0]), None, object()], ids=repr)
def test_float_fields_reject_non_numbers(type_name, field, spec, bad):
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: bad})


def test_numeric_fields_reject_strings():
    # A string is not a number: `Conv1d(stride="2")` or `ReLU(negative_slope="0.1")` must not be parsed.
    accepted = []
    for type_name, field, spec in _fields_of(INT) + _fields_of(FLOAT):
        value = "3" if spec.kind == INT else "0.5"
        try:
            make(type_name, **{field: value})
        except PrimitiveError:
            continue
        accepted.append(f"{type_name}.{field}={value!r}")
    for bad in (["1.5", "2"], "2.0"):
        try:
            ir.Scale(scale=bad)
        except PrimitiveError:
            continue
        accepted.append(f"Scale.scale={bad!r}")
    assert accepted == [], f"numeric fields silently parse strings: {accepted}"


@pytest.mark.parametrize("type_name,field,spec", _fields_of(BOOL), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("bad", [1, 0, "True", None, np.array([True, False])], ids=repr)
def test_bool_fields_reject_non_bools(type_name, field, spec, bad):
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: bad})


@pytest.mark.parametrize("type_name,field,spec", [f for f in _fields_of(STR) if f[2].choices], ids=lambda v: v if isinstance(v, str) else "")
def test_choice_fields_reject_unknown_strings(type_name, field, spec):
    for bad in ("bogus", spec.choices[0].upper() + "_", "", 3):
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: bad})
    for ok in spec.choices:
        assert getattr(make(type_name, **{field: ok}), field) == ok


@pytest.mark.parametrize("type_name,field,spec", [f for f in _fields_of(STR) if not f[2].choices], ids=lambda v: v if isinstance(v, str) else "")
def test_free_string_fields(type_name, field, spec):
    assert getattr(make(type_name, **{field: "ünïcødé ✓"}), field) == "ünïcødé ✓"
    assert getattr(make(type_name, **{field: b"bytes"}), field) == "bytes"
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: 3})


@pytest.mark.parametrize("type_name,field,spec", _fields_of(INTS), ids=lambda v: v if isinstance(v, str) else "")
def test_int_tuple_fields(type_name, field, spec):
    for bad in ([1.5, 2.0], "ab", [[1, 2], [3, 4]], [True, 1.5]):
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: bad})
    if spec.length is not None:
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: (1,) * (spec.length + 1)})
        # A scalar broadcasts to the declared length (torch's `stride=2`).
        assert getattr(make(type_name, **{field: 1}), field) == (1,) * spec.length


@pytest.mark.parametrize("type_name,field,spec", _fields_of(ARRAY), ids=lambda v: v if isinstance(v, str) else "")
def test_array_fields_reject_non_numeric(type_name, field, spec):
    for bad in (np.array(["a", "b"]), np.array([object(), None], dtype=object), np.array([1 + 2j]), "text"):
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: bad})
    if not spec.optional:
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: None})


@pytest.mark.parametrize("type_name", BUILTINS)
def test_metadata_must_be_a_dict(type_name):
    assert make(type_name, metadata={"a": [1, 2]}).metadata == {"a": [1, 2]}
    with pytest.raises(PrimitiveError, match="metadata"):
        make(type_name, metadata=[("a", 1)])


def test_zero_dim_arrays_keep_their_shape():
    # A scalar parameter (0-d array) is a valid per-neuron value that broadcasts to any neuron shape,
    # including a rank-0 sample; it must not silently become shape (1,).
    assert ir.LIF(**dict(VALID["LIF"](), tau=np.float64(2.0))).tau.shape == ()
    assert ir.Threshold(v_threshold=np.array(0.5, dtype=np.float32)).v_threshold.shape == ()
    assert ir.Scale(scale=np.array(2.0, dtype=np.float32)).scale.shape == ()
    assert ir.Delay(delay=np.array(3)).delay.shape == ()
    assert shape_of(ir.Threshold(v_threshold=0.5), ()) == ()


def test_array_dtype_coercion():
    a = ir.Affine(weight=np.ones((2, 3), dtype=np.float64), bias=[1, 2])
    assert a.weight.dtype == np.float32 and a.bias.dtype == np.float32 and a.bias.tolist() == [1.0, 2.0]
    # ANY_FLOAT keeps float32/float64 as given and builds float64 from Python numbers.
    assert ir.LIF(**dict(VALID["LIF"](), tau=np.full(4, 2.0, np.float32))).tau.dtype == np.float32
    assert ir.LIF(**dict(VALID["LIF"](), tau=np.full(4, 2.0))).tau.dtype == np.float64
    assert ir.LIF(**dict(VALID["LIF"](), tau=2.0)).tau.dtype == np.float64
    assert ir.LIF(**dict(VALID["LIF"](), tau=[2, 3, 4, 5])).tau.dtype == np.float64
    assert ir.Delay(delay=[1, 2]).delay.dtype == np.int64
    # Non-contiguous input becomes contiguous.
    w = np.ones((4, 6), np.float32)[:, ::2]
    assert ir.Linear(weight=w).weight.flags.c_contiguous


# -- specific value rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name,field,bad_shape", [
    ("Affine", "weight", (12,)), ("Affine", "weight", (3, 4, 1)), ("Linear", "weight", (3,)), ("Linear", "weight", ()),
    ("SpikingAffine", "weight", (2, 3, 4)), ("Conv1d", "weight", (4, 2)), ("Conv1d", "weight", (4, 2, 3, 1)),
    ("Conv2d", "weight", (4, 1, 3)), ("Conv2d", "weight", (4, 1, 3, 3, 1)), ("SConv", "weight", (4, 2, 9)),
    ("SDConv", "weight", (2, 9)), ("SepConv2d", "depthwise_weight", (2, 3, 3)), ("SepConv2d", "depthwise_weight", (2, 2, 3, 3)),
    ("SepConv2d", "pointwise_weight", (5, 2)), ("SepConv2d", "pointwise_weight", (5, 2, 3, 3)), ("PReLU", "weight", (1, 1)),
    ("PReLU", "weight", (0,)), ("PReLU", "weight", (1, 3)),
])
def test_wrong_weight_rank(type_name, field, bad_shape):
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: np.zeros(bad_shape, np.float32)})


@pytest.mark.parametrize("type_name,field", [
    ("Affine", "bias"), ("SpikingAffine", "bias"), ("Conv1d", "bias"), ("Conv2d", "bias"), ("SConv", "bias"), ("SDConv", "bias"),
    ("SepConv2d", "depthwise_bias"), ("SepConv2d", "pointwise_bias"), ("BatchNorm1d", "weight"), ("BatchNorm1d", "bias"),
    ("BatchNorm1d", "running_mean"), ("BatchNorm2d", "running_var"), ("LayerNorm", "weight"), ("LayerNorm", "bias"),
])
def test_bias_shape_mismatch(type_name, field):
    good = VALID[type_name]()[field]
    for bad_shape in ((good.shape[0] + 1,) if good.ndim else (2,), (1,) + good.shape, ()):
        with pytest.raises(PrimitiveError, match=field):
            make(type_name, **{field: np.ones(bad_shape, np.float32)})


@pytest.mark.parametrize("type_name,field", [("LIF", "tau"), ("LI", "tau"), ("CubaLIF", "tau_syn"), ("CubaLIF", "tau_mem")])
@pytest.mark.parametrize("bad", [-1.0, 0.0, [2.0, 2.0, -0.5, 2.0], -math.inf])
def test_time_constants_must_be_positive(type_name, field, bad):
    with pytest.raises(PrimitiveError, match=field):
        make(type_name, **{field: bad})


def test_other_value_ranges():
    with pytest.raises(PrimitiveError, match="running_var"):
        make("BatchNorm2d", running_var=np.array([1, -1, 1], np.float32))
    for p in (-0.1, 1.5):
        with pytest.raises(PrimitiveError, match="p"):
            make("Dropout", p=p)
    for d in ([-1], [1_000_001]):
        with pytest.raises(PrimitiveError, match="delay"):
            make("Delay", delay=np.array(d))
    with pytest.raises(PrimitiveError, match="shape"):
        make("Input", shape=(3, 0))
    with pytest.raises(PrimitiveError, match="groups"):
        make("Conv2d", weight=f32(3, 1, 3, 3), bias=f32(3), groups=2)  # 3 output channels, 2 groups
    with pytest.raises(PrimitiveError, match="groups"):
        make("Conv1d", weight=f32(3, 1, 3), bias=f32(3), groups=2)
    with pytest.raises(PrimitiveError, match="stride|dilation|padding"):
        make("Conv2d", stride=(0, 1))
    with pytest.raises(PrimitiveError, match="stride|dilation|padding"):
        make("SConv", padding=(-1, 0))
    with pytest.raises(PrimitiveError, match="split_sections"):
        make("ChannelSplit", split_sections=(2, 0))
    with pytest.raises(PrimitiveError, match="split_sections"):
        make("ChannelSplit", split_sections=())
    with pytest.raises(PrimitiveError, match="scale_factor"):
        make("Upsample", scale_factor=0)
    assert make("Upsample", size=(3, 4)).size == (3, 4)
    with pytest.raises(PrimitiveError, match="size"):
        make("Upsample", size=(0, 4))
    with pytest.raises(PrimitiveError, match="bits"):
        make("SpikingAffine", weight_bits=16, accumulator_bits=8)
    with pytest.raises(PrimitiveError, match="bits"):
        make("SpikingAffine", weight_bits=33, accumulator_bits=40)
    with pytest.raises(PrimitiveError, match="bits"):
        make("SpikingAffine", weight_bits=8, accumulator_bits=65)


def test_primitive_error_hierarchy():
    assert issubclass(PrimitiveError, GraphValidationError) and issubclass(PrimitiveError, TalonError)


def test_nodes_are_not_mutated_by_replace():
    a = make("Affine")
    b = a.replace(bias=np.zeros(3, np.float32))
    assert a.bias.any() and not b.bias.any() and a.weight is b.weight
    with pytest.raises(PrimitiveError, match="bias"):
        a.replace(bias=np.zeros(4))


# ----------------------------------------------------------------------------------------------------
# Output-shape rules, checked against torch's documented formulas computed by hand
# ----------------------------------------------------------------------------------------------------


def torch_conv_len(n, k, s, p, d=1):
    """torch.nn.ConvNd / MaxPoolNd(ceil_mode=False): floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def torch_pool_len_ceil(n, k, s, p, d=1):
    """torch pooling with ceil_mode=True: ceil(...) + 1, minus one if the last window starts in the right padding."""
    out = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def shape_of(node, *shapes):
    out = node.infer_output_shapes([tuple(s) for s in shapes])
    return out[0] if len(out) == 1 else out


def test_conv2d_shape_hand_computed():
    # torch: Conv2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), dilation=(2, 1), groups=2) on (4, 10, 11)
    #   H = floor((10 + 2 - 2*2 - 1)/2) + 1 = 4;  W = floor((11 + 0 - 1*1 - 1)/3) + 1 = 4  ->  (6, 4, 4)
    conv = ir.Conv2d(weight=f32(6, 2, 3, 2), bias=f32(6), stride=(2, 3), padding=(1, 0), dilation=(2, 1), groups=2)
    assert shape_of(conv, (4, 10, 11)) == (6, 4, 4)
    # Same shape rule for the existing SDK's SConv/SDConv.
    for cls in (ir.SConv, ir.SDConv):
        assert shape_of(cls(weight=f32(6, 2, 3, 2), bias=f32(6), stride=(2, 3), padding=(1, 0), dilation=(2, 1), groups=2), (4, 10, 11)) == (6, 4, 4)
    # Input channels must equal in/groups * groups; rank must be 3 (batch excluded).
    for bad in ((2, 10, 11), (8, 10, 11), (4, 10), (1, 4, 10, 11)):
        with pytest.raises(PrimitiveError):
            shape_of(conv, bad)
    # A kernel that does not fit.
    with pytest.raises(PrimitiveError):
        shape_of(ir.Conv2d(weight=f32(1, 1, 5, 5), bias=f32(1)), (1, 3, 3))


def test_conv1d_shape_hand_computed():
    # torch: Conv1d(6, 4, 5, stride=3, padding=2, dilation=2, groups=2) on (6, 17): floor((17+4-8-1)/3)+1 = 5
    conv = ir.Conv1d(weight=f32(4, 3, 5), bias=f32(4), stride=3, padding=2, dilation=2, groups=2)
    assert shape_of(conv, (6, 17)) == (4, 5)
    # The compat sample conv1d: Conv1d(2, 3, 3, stride=2, padding=1) on (2, 10) -> (3, 5).
    assert shape_of(ir.Conv1d(weight=f32(3, 2, 3), bias=f32(3), stride=2, padding=1), (2, 10)) == (3, 5)
    with pytest.raises(PrimitiveError):
        shape_of(conv, (3, 17))
    with pytest.raises(PrimitiveError):
        shape_of(conv, (6, 17, 1))


@pytest.mark.parametrize("n", [1, 2, 5, 7, 16, 33])
@pytest.mark.parametrize("k,s,p,d", [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1), (2, 2, 0, 1), (3, 3, 1, 2), (5, 2, 2, 1), (4, 3, 2, 3)])
def test_conv_and_pool_formula_grid(n, k, s, p, d):
    fits = n + 2 * p - d * (k - 1) - 1 >= 0
    conv = ir.Conv2d(weight=f32(2, 3, k, k), bias=f32(2), stride=(s, s), padding=(p, p), dilation=(d, d))
    pool = ir.MaxPool2d(kernel_size=(k, k), stride=(s, s), padding=(p, p), dilation=(d, d))
    pool_ceil = ir.MaxPool2d(kernel_size=(k, k), stride=(s, s), padding=(p, p), dilation=(d, d), ceil_mode=True)
    if not fits:
        for node in (conv, pool, pool_ceil):
            with pytest.raises(PrimitiveError):
                shape_of(node, (3, n, n))
        return
    assert shape_of(conv, (3, n, n)) == (2, torch_conv_len(n, k, s, p, d),) * 1 + (torch_conv_len(n, k, s, p, d),)
    if 2 * p <= k:  # torch requires pad <= kernel/2 for pooling
        assert shape_of(pool, (3, n, n)) == (3, torch_conv_len(n, k, s, p, d), torch_conv_len(n, k, s, p, d))
        assert shape_of(pool_ceil, (3, n, n)) == (3, torch_pool_len_ceil(n, k, s, p, d), torch_pool_len_ceil(n, k, s, p, d))
    else:
        with pytest.raises(PrimitiveError, match="padding"):
            shape_of(pool, (3, n, n))


def test_pool_shapes_hand_computed():
    # Values checked against torch.nn.MaxPool2d / AvgPool2d.
    cases = [  # (n, k, s, p, floor, ceil)
        (5, 2, 2, 0, 2, 3),
        (5, 3, 3, 1, 2, 2),  # ceil: ceil(4/3)+1 = 3, but window 3 would start at 6 >= 5+1 (in the padding) -> 2
        (6, 3, 3, 1, 2, 3),
        (7, 3, 2, 1, 4, 4),
        (8, 2, 2, 1, 5, 5),
        (10, 4, 3, 2, 4, 4),
    ]
    for n, k, s, p, floor_len, ceil_len in cases:
        for cls in (ir.MaxPool2d, ir.AvgPool2d):
            assert shape_of(cls(kernel_size=(k, k), stride=(s, s), padding=(p, p)), (2, n, n + 1))[1] == floor_len
            assert shape_of(cls(kernel_size=(k, k), stride=(s, s), padding=(p, p), ceil_mode=True), (2, n, n))[1:] == (ceil_len, ceil_len)
    # Dilated max pool: MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True) on 9x12 -> 4x6.
    assert shape_of(ir.MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), ceil_mode=True), (1, 9, 12)) == (1, 4, 6)
    # SumPool2d: floor rule, rectangular.
    assert shape_of(ir.SumPool2d(kernel_size=(2, 3), stride=(2, 1)), (4, 7, 7)) == (4, 3, 5)
    with pytest.raises(PrimitiveError):
        shape_of(ir.AvgPool2d(kernel_size=(2, 2), stride=(2, 2)), (4, 8))
    with pytest.raises(PrimitiveError):
        shape_of(ir.MaxPool2d(kernel_size=(0, 2), stride=(2, 2)), (4, 8, 8))
    with pytest.raises(PrimitiveError):
        shape_of(ir.MaxPool2d(kernel_size=(2, 2), stride=(0, 2)), (4, 8, 8))


def test_sepconv_shape():
    sep = make("SepConv2d", stride=(2, 2), padding=(1, 1))
    # depthwise 3x3 stride 2 pad 1 on 6x6: floor((6+2-2-1)/2)+1 = 3; pointwise to 5 channels
    assert shape_of(sep, (2, 6, 6)) == (5, 3, 3)
    with pytest.raises(PrimitiveError):
        shape_of(sep, (3, 6, 6))


def test_upsample_shapes():
    # torch.nn.Upsample: out = floor(n * scale) for a scale factor; `size` wins when given.
    assert shape_of(ir.Upsample(scale_factor=2), (3, 4, 5)) == (3, 8, 10)
    assert shape_of(ir.Upsample(scale_factor=1.5), (2, 5, 7)) == (2, 7, 10)
    assert shape_of(ir.Upsample(scale_factor=2.7), (2, 5, 7)) == (2, 13, 18)
    assert shape_of(ir.Upsample(size=(3, 9), mode="bilinear", align_corners=True), (2, 5, 7)) == (2, 3, 9)
    assert shape_of(ir.Upsample(size=(1, 1)), (2, 5, 7)) == (2, 1, 1)
    assert type(ir.Upsample(scale_factor=3).scale_factor) is int and type(ir.Upsample(scale_factor=3.0).scale_factor) is float
    with pytest.raises(PrimitiveError):
        shape_of(ir.Upsample(scale_factor=2), (4, 4))


def test_flatten_dims_exclude_batch():
    assert shape_of(ir.Flatten(), (2, 3, 4)) == (24,)
    assert shape_of(ir.Flatten(start_dim=1), (2, 3, 4)) == (2, 12)
    assert shape_of(ir.Flatten(start_dim=0, end_dim=1), (2, 3, 4)) == (6, 4)
    assert shape_of(ir.Flatten(start_dim=-2, end_dim=-1), (2, 3, 4, 5)) == (2, 3, 20)
    assert shape_of(ir.Flatten(start_dim=1, end_dim=1), (2, 3)) == (2, 3)
    assert shape_of(ir.Flatten(), (7,)) == (7,)
    for bad in (dict(start_dim=3), dict(end_dim=-4), dict(start_dim=2, end_dim=1)):
        with pytest.raises(PrimitiveError):
            shape_of(ir.Flatten(**bad), (2, 3, 4))


def test_concat_shapes():
    assert shape_of(ir.Concat(num_inputs=2, dim=0), (2, 3), (4, 3)) == (6, 3)
    assert shape_of(ir.Concat(num_inputs=3, dim=-1), (2, 3), (2, 5), (2, 1)) == (2, 9)
    with pytest.raises(PrimitiveError):
        shape_of(ir.Concat(num_inputs=2, dim=0), (2, 3), (4, 4))  # other dims disagree
    with pytest.raises(PrimitiveError):
        shape_of(ir.Concat(num_inputs=3, dim=0), (2, 3), (4, 3))  # wrong arity
    with pytest.raises(PrimitiveError):
        shape_of(ir.Concat(num_inputs=2, dim=2), (2, 3), (2, 3))  # dim out of range
    with pytest.raises(PrimitiveError):
        shape_of(ir.Concat(num_inputs=2, dim=0), (2, 3), (2, 3, 1))  # ranks differ


def test_channel_split_shapes():
    assert shape_of(ir.ChannelSplit(split_sections=(3, 5)), (8, 4)) == [(3, 4), (5, 4)]
    assert shape_of(ir.ChannelSplit(split_sections=(1, 1, 2), dim=-1), (8, 4)) == [(8, 1), (8, 1), (8, 2)]
    assert ir.ChannelSplit(split_sections=(1, 1, 2)).num_outputs == 3
    with pytest.raises(PrimitiveError):
        shape_of(ir.ChannelSplit(split_sections=(3, 4)), (8, 4))
    with pytest.raises(PrimitiveError):
        ir.ChannelSplit(split_sections=(3, 5)).infer_output_shapes([(8,), (8,)])


def test_skip_shapes():
    assert shape_of(ir.Skip(skip_type="residual"), (4,), (4,), (4,)) == (4,)
    with pytest.raises(PrimitiveError):
        shape_of(ir.Skip(skip_type="residual"), (4,), (5,))
    assert shape_of(ir.Skip(skip_type="passthrough"), (2, 3)) == (2, 3)
    with pytest.raises(PrimitiveError):
        shape_of(ir.Skip(skip_type="passthrough"), (2, 3), (2, 3))
    assert shape_of(ir.Skip(skip_type="concatenate"), (2, 3), (5, 3)) == (7, 3)


def test_dense_norm_and_neuron_shapes():
    a = make("Affine")  # 3x4
    assert shape_of(a, (4,)) == (3,) and shape_of(a, (7, 4)) == (7, 3)
    with pytest.raises(PrimitiveError):
        shape_of(a, (3,))
    with pytest.raises(PrimitiveError):
        shape_of(a, ())
    assert shape_of(make("Linear"), (2, 4)) == (2, 3)
    assert shape_of(make("PReLU"), (5, 2)) == (5, 2)
    assert shape_of(ir.PReLU(weight=np.ones(3, np.float32)), (3, 8)) == (3, 8)
    with pytest.raises(PrimitiveError):
        shape_of(ir.PReLU(weight=np.ones(3, np.float32)), (4, 8))
    assert shape_of(make("BatchNorm1d"), (3,)) == (3,) and shape_of(make("BatchNorm1d"), (3, 7)) == (3, 7)
    with pytest.raises(PrimitiveError):
        shape_of(make("BatchNorm1d"), (3, 7, 7))
    assert shape_of(make("BatchNorm2d"), (3, 5, 5)) == (3, 5, 5)
    with pytest.raises(PrimitiveError):
        shape_of(make("BatchNorm2d"), (4, 5, 5))
    assert shape_of(make("LayerNorm"), (9, 4)) == (9, 4)
    with pytest.raises(PrimitiveError):
        shape_of(make("LayerNorm"), (4, 9))
    with pytest.raises(PrimitiveError):
        shape_of(ir.Softmax(dim=1), (4,))
    assert shape_of(ir.Softmax(dim=-2), (4, 2)) == (4, 2)
    # Per-neuron parameters broadcast to the neuron shape without growing it; several inputs are summed.
    lif = make("LIF")  # (4,) parameters
    assert shape_of(lif, (4,)) == (4,) and shape_of(lif, (3, 4)) == (3, 4) and shape_of(lif, (4,), (4,)) == (4,)
    for bad in [((5,),), ((4, 1),), ((4,), (3,))]:
        with pytest.raises(PrimitiveError):
            shape_of(lif, *bad)
    assert shape_of(ir.Scale(scale=np.ones((3, 1), np.float32)), (3, 5)) == (3, 5)
    with pytest.raises(PrimitiveError):
        shape_of(ir.Scale(scale=np.ones((3, 5), np.float32)), (5,))
    assert shape_of(ir.Threshold(v_threshold=0.5), (2, 2)) == (2, 2)
    assert shape_of(ir.Delay(delay=np.array([1, 2])), (3, 2)) == (3, 2)
    assert shape_of(ir.Input(shape=(2, 3))) == (2, 3)
    with pytest.raises(PrimitiveError):
        ir.Input(shape=(2,)).infer_output_shapes([(2,)])
    assert shape_of(ir.Output(shape=(2,)), (2,)) == (2,)
    with pytest.raises(PrimitiveError):
        shape_of(ir.Output(shape=(2,)), (3,))
    for name in ("ReLU", "Sigmoid", "Tanh", "GELU", "ELU", "Dropout", "HybridRegion"):
        assert shape_of(make(name), (2, 3, 4)) == (2, 3, 4)
        with pytest.raises(PrimitiveError):
            make(name).infer_output_shapes([(2,), (2,)])


@pytest.mark.parametrize("type_name", ["SGhostConv", "SGhostEncoderLite", "GhostBasicBlock1", "GhostBasicBlock2", "SDDetect", "DFLDecode", "Dist2BBox", "NMS"])
def test_storage_only_primitives_say_so(type_name):
    with pytest.raises(PrimitiveError, match=type_name):
        make(type_name).infer_output_shapes([(4, 8, 8)])


# ----------------------------------------------------------------------------------------------------
# User-defined primitives
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test are undone afterwards."""
    from talon.ir import node as node_module

    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))
    return node_module._REGISTRY


def _define_gain():
    @register_node
    @dataclasses.dataclass(eq=False, repr=False)
    class TestGain(Node):
        """y = gain * x + offset (a user primitive)."""

        gain: np.ndarray = array()
        offset: float = real(0.0)
        mode: str = string("a", choices=("a", "b"))
        taps: int = integer(1, minimum=1)

        def check(self):
            if self.gain.ndim != 1:
                raise PrimitiveError(f"TestGain.gain must be 1-D, got {self.gain.shape}")

        def output_shape_for(self, shape):
            if shape[-1] != self.gain.size:
                raise PrimitiveError("TestGain: size mismatch")
            return tuple(shape)

    return TestGain


def test_register_user_primitive(clean_registry, tmp_path):
    TestGain = _define_gain()
    assert TestGain.type_name == "TestGain" and "TestGain" in ir.list_primitives()
    assert ir.get_node_class("TestGain") is TestGain
    assert set(TestGain.field_specs()) == {"metadata", "gain", "offset", "mode", "taps"}
    node = TestGain(gain=[1, 2, 3], offset=1)
    assert node.gain.dtype == np.float32 and node.offset == 1.0 and type(node.offset) is float
    for bad in (dict(gain=[[1.0]]), dict(gain=[1.0], mode="c"), dict(gain=[1.0], taps=0), dict(gain=[1.0], taps=1.5)):
        with pytest.raises(PrimitiveError):
            TestGain(**bad)
    g = ir.Graph({"in": ir.Input(shape=(3,)), "gain": node, "out": ir.Output()}, [("in", "gain"), ("gain", "out")]).validate()
    assert g.nodes["out"].output_shape == (3,)
    ir.write(tmp_path / "user.t1c", g)
    back = ir.read(tmp_path / "user.t1c")
    assert back == g and type(back.nodes["gain"]) is TestGain


def test_register_under_explicit_name_and_duplicates(clean_registry):
    TestGain = _define_gain()
    # Registering the same class again is harmless.
    assert register_node(TestGain) is TestGain
    # A different class under a taken name is an error, and the first registration stays.
    with pytest.raises(ValueError, match="TestGain"):
        register_node(type("TestGain", (Node,), {}))
    assert ir.get_node_class("TestGain") is TestGain
    with pytest.raises(ValueError, match="Affine"):
        register_node(dataclasses.dataclass(eq=False)(type("Affine", (Node,), {})))
    assert ir.get_node_class("Affine") is ir.Affine
    # replace=True swaps it deliberately.
    Other = dataclasses.dataclass(eq=False)(type("Other", (Node,), {}))
    register_node(Other, name="TestGain", replace=True)
    assert ir.get_node_class("TestGain") is Other and Other.type_name == "TestGain"
    # Usable as a decorator with a name.
    @register_node(name="Renamed")
    @dataclasses.dataclass(eq=False)
    class Whatever(Node):
        pass

    assert ir.get_node_class("Renamed") is Whatever and Whatever().type_name == "Renamed"
    with pytest.raises(TalonUsageError, match="Node subclass"):
        register_node(int)


def test_registration_is_undone_between_tests():
    assert "TestGain" not in ir.list_primitives() and "Renamed" not in ir.list_primitives()


# ----------------------------------------------------------------------------------------------------
# Equality
# ----------------------------------------------------------------------------------------------------


def test_equality_is_bitwise_including_dtype():
    a = make("LIF")
    assert a == a.replace() and not (a != a.replace())
    # Same values, different dtype: not equal.
    assert a != a.replace(tau=a.tau.astype(np.float32))
    # Same values, different shape: not equal.
    assert a != a.replace(v_leak=a.v_leak.reshape(1, 4))
    # -0.0 and 0.0 compare equal as numbers but differ bitwise.
    assert a != a.replace(v_leak=-a.v_leak)
    assert np.array_equal(a.v_leak, -a.v_leak)
    # NaN equals itself bitwise (same payload).
    n1 = ir.Threshold(v_threshold=np.array([np.nan, 1.0]))
    assert n1 == ir.Threshold(v_threshold=np.array([np.nan, 1.0]))
    # ...but not a NaN with a different payload.
    other_nan = np.array([0x7FF8000000000001, 0x3FF0000000000000], dtype=np.uint64).view(np.float64)
    assert n1 != ir.Threshold(v_threshold=other_nan)
    # One ulp apart.
    assert a != a.replace(tau=np.nextafter(a.tau, np.inf))
    # Scalars: int vs float fields keep their Python type; NaN floats compare equal.
    assert ir.ReLU(negative_slope=math.nan) == ir.ReLU(negative_slope=math.nan)
    assert ir.Upsample(scale_factor=2) != ir.Upsample(scale_factor=2.0)
    # Optional None vs value.
    assert make("LIF") != make("LIF", v_reset=np.zeros(4))


def test_equality_covers_every_field_and_metadata_not_shapes():
    a = make("Conv2d")
    b = a.replace()
    assert a == b
    for field, value in [("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1)), ("groups", 1), ("metadata", {"x": 1})]:
        assert a != a.replace(**{field: value}), field
    assert make("HybridRegion", metadata={"a": 1}) != make("HybridRegion", metadata={"a": 1.0})
    b.input_shapes, b.output_shapes = [(1, 2, 3)], [(4, 5, 6)]
    assert a == b


def test_equality_across_types_and_hashing():
    assert make("Affine", weight=np.ones((3, 4), np.float32)) != make("SpikingAffine", weight=np.ones((3, 4), np.float32))
    assert ir.SConv(**VALID["SConv"]()) != ir.Conv2d(**VALID["SConv"]())
    assert make("ReLU") != "ReLU" and make("ReLU") != None  # noqa: E711
    with pytest.raises(TypeError):
        hash(make("ReLU"))


def test_values_that_overflow_the_field_dtype_are_refused():
    """1e300 in a float32 weight would silently become inf; an explicit inf stays what it is."""
    with pytest.raises(PrimitiveError, match="Affine.weight.*overflow"):
        ir.Affine(weight=np.full((2, 2), 1e300), bias=np.zeros(2, np.float32))
    assert np.isinf(ir.Affine(weight=np.full((2, 2), np.inf), bias=np.zeros(2, np.float32)).weight).all()
