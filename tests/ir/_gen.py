"""Shared helpers for the talon.ir tests: hand-made valid primitives, hypothesis strategies that derive
field values from each primitive's FieldSpecs, and exact (bitwise) comparison of values and graphs."""

from __future__ import annotations

import math
import struct
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import talon.ir as ir
from talon.ir import Graph, Node
from talon.ir.node import ANY_FLOAT, ARRAY, BOOL, DICT, FLOAT, INT, INTS, NUMBER, STR

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# ----------------------------------------------------------------------------------------------------
# Hand-made valid instances of every built-in primitive
# ----------------------------------------------------------------------------------------------------

_rng = np.random.default_rng(1234)


def f32(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape).astype(np.float32)


def pos(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return (_rng.random(shape) + 0.5).astype(dtype)


def _neuron(n: int = 4) -> dict:
    return dict(tau=pos(n), r=pos(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


#: type name -> zero-argument factory of keyword arguments that construct a valid instance.
VALID: dict[str, Callable[[], dict]] = {
    "Input": lambda: dict(shape=(4,)),
    "Output": lambda: dict(shape=(4,)),
    "Affine": lambda: dict(weight=f32(3, 4), bias=f32(3)),
    "Linear": lambda: dict(weight=f32(3, 4)),
    "SpikingAffine": lambda: dict(weight=f32(3, 4), bias=f32(3), weight_bits=4, accumulator_bits=12, spike_mode="rate"),
    "Scale": lambda: dict(scale=f32(4)),
    "Conv1d": lambda: dict(weight=f32(4, 2, 3), bias=f32(4), stride=2, padding=1, dilation=1, groups=1),
    "Conv2d": lambda: dict(weight=f32(4, 1, 3, 3), bias=f32(4), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
    "SConv": lambda: dict(weight=f32(4, 2, 3, 3), bias=f32(4), padding=(1, 1)),
    "SDConv": lambda: dict(weight=f32(2, 1, 3, 3), bias=f32(2), padding=(1, 1), groups=2),
    "SepConv2d": lambda: dict(depthwise_weight=f32(2, 1, 3, 3), depthwise_bias=f32(2), pointwise_weight=f32(5, 2, 1, 1), pointwise_bias=f32(5)),
    "MaxPool2d": lambda: dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True),
    "AvgPool2d": lambda: dict(kernel_size=(2, 2), stride=(2, 2)),
    "SumPool2d": lambda: dict(kernel_size=(2, 2), stride=(1, 1)),
    "Upsample": lambda: dict(scale_factor=2, mode="nearest"),
    "LIF": lambda: dict(_neuron(), reset_mode="subtract"),
    "IF": lambda: dict(v_threshold=np.ones(4)),
    "CubaLIF": lambda: dict(tau_syn=pos(4), tau_mem=pos(4), r=pos(4), v_leak=np.zeros(4), v_threshold=np.ones(4)),
    "Alpha": lambda: dict(tau_exc=pos(4) + 10.0, tau_inh=pos(4), v_threshold=np.ones(4), tau_alpha=pos(4), reset_mode="subtract"),
    "LI": lambda: dict(tau=pos(4), r=pos(4), v_leak=np.zeros(4)),
    "Integrator": lambda: dict(r=pos(4)),
    "ALIF": lambda: dict(threshold=np.ones(4), threshold_step=pos(4), current_decay=np.full(4, 0.25), voltage_decay=np.linspace(0, 1, 4),
                         threshold_decay=np.full(4, 0.05), refractory_decay=np.full(4, 0.2)),
    "Threshold": lambda: dict(v_threshold=np.ones(4)),
    "Delay": lambda: dict(delay=np.array([0, 1, 2, 3], dtype=np.int64)),
    "ReLU": lambda: dict(negative_slope=0.1),
    "Sigmoid": lambda: dict(features=4),
    "Tanh": lambda: dict(),
    "Softmax": lambda: dict(dim=0),
    "GELU": lambda: dict(approximate=True),
    "ELU": lambda: dict(alpha=0.5),
    "PReLU": lambda: dict(weight=np.array([0.25], dtype=np.float32)),
    "BatchNorm1d": lambda: dict(num_features=3, weight=f32(3), bias=f32(3), running_mean=f32(3), running_var=pos(3, dtype=np.float32)),
    "BatchNorm2d": lambda: dict(num_features=3, weight=f32(3), bias=f32(3), running_mean=f32(3), running_var=pos(3, dtype=np.float32), eps=1e-3),
    "LayerNorm": lambda: dict(normalized_shape=(4,), weight=f32(4), bias=f32(4)),
    "Dropout": lambda: dict(p=0.2),
    "Flatten": lambda: dict(start_dim=0, end_dim=-1),
    "Skip": lambda: dict(skip_type="residual"),
    "Concat": lambda: dict(num_inputs=2, dim=0),
    "ChannelSplit": lambda: dict(split_sections=(1, 3)),
    "HybridRegion": lambda: dict(mode="ann", name="region"),
    "SGhostConv": lambda: dict(primary_weight=f32(2, 2, 3, 3), primary_bias=f32(2), cheap_weight=f32(2, 1, 3, 3), cheap_bias=f32(2)),
    "SGhostEncoderLite": lambda: dict(conv1_weight=f32(4, 3, 3, 3), conv1_bias=f32(4), ghost_primary_weight=f32(2, 4, 3, 3),
                                      ghost_primary_bias=f32(2), ghost_cheap_weight=f32(2, 1, 3, 3), ghost_cheap_bias=f32(2)),
    "GhostBasicBlock1": lambda: {f"{b}_{p}_{k}": (f32(2, 2, 3, 3) if k == "weight" else f32(2))
                                 for b in ("cv0", "cv2", "cvres") for p in ("primary", "cheap") for k in ("weight", "bias")},
    "GhostBasicBlock2": lambda: {f"{b}_{p}_{k}": (f32(2, 2, 3, 3) if k == "weight" else f32(2))
                                 for b in ("cv0", "cv2") for p in ("primary", "cheap") for k in ("weight", "bias")},
    "SDDetect": lambda: dict({f"cv{b}_{k}{i}": (f32(4, 2, 3, 3) if k == "w" else f32(4)) for b in (2, 3) for k in ("w", "b") for i in range(3)},
                             num_classes=2),
    "DFLDecode": lambda: dict(dfl_weights=np.arange(4, dtype=np.float32), reg_max=4),
    "Dist2BBox": lambda: dict(stride=16),
    "NMS": lambda: dict(score_threshold=0.3, iou_threshold=0.5, max_detections=50),
}


def builtin_primitives() -> list[str]:
    """TALON's own registered primitive names (except Graph, which is not built from fields); primitives
    that other test modules register (collected earlier in some orders) are not built-ins."""
    return [n for n in ir.list_primitives() if n != "Graph" and ir.get_node_class(n).__module__.startswith("talon.")]


def make(type_name: str, **changes: Any) -> Node:
    kwargs = VALID[type_name]()
    kwargs.update(changes)
    return ir.get_node_class(type_name)(**kwargs)


# ----------------------------------------------------------------------------------------------------
# Exact comparison
# ----------------------------------------------------------------------------------------------------


def assert_same(a: Any, b: Any, path: str = "value") -> None:
    """Exact equality: arrays by dtype, shape and bytes; floats bit for bit; dict key order; types."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), f"{path}: {type(a).__name__} vs {type(b).__name__}"
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{path}: shape {a.shape} vs {b.shape}"
        assert a.tobytes() == b.tobytes(), f"{path}: array bytes differ"
        return
    assert type(a) is type(b), f"{path}: type {type(a).__name__} vs {type(b).__name__} ({a!r} vs {b!r})"
    if isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} vs {b!r} (bitwise)"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def assert_same_node(a: Node, b: Node, path: str = "node") -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Graph):
        assert_same_graph(a, b, path)
        return
    for name in type(a).field_specs():
        assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    assert a == b, f"{path}: == disagrees with the field-by-field comparison"


def _shape_list(shapes: Any) -> list[tuple] | None:
    return None if shapes is None else [tuple(t) for t in shapes]


def assert_same_graph(a: Graph, b: Graph, path: str = "graph", shapes: bool = True) -> None:
    """Node order, nodes (exactly), edges, dt, metadata, extras and each node's stored shapes."""
    assert list(a.nodes) == list(b.nodes), f"{path}: node order {list(a.nodes)} vs {list(b.nodes)}"
    for name in a.nodes:
        assert_same_node(a.nodes[name], b.nodes[name], f"{path}.nodes[{name!r}]")
        if shapes:
            for attr in ("input_shapes", "output_shapes"):
                x, y = getattr(a.nodes[name], attr), getattr(b.nodes[name], attr)
                assert _shape_list(x) == _shape_list(y), f"{path}.nodes[{name!r}].{attr}: {x} vs {y}"
    assert a.edges == b.edges, f"{path}: edges {a.edges} vs {b.edges}"
    assert_same(a.dt, b.dt, f"{path}.dt")
    assert_same(a.metadata, b.metadata, f"{path}.metadata")
    assert_same(a.extras, b.extras, f"{path}.extras")
    assert a == b, f"{path}: Graph.__eq__ disagrees with the exact comparison"


# ----------------------------------------------------------------------------------------------------
# Hypothesis strategies derived from FieldSpecs
# ----------------------------------------------------------------------------------------------------

# Characters allowed in names and free text. NUL cannot be stored in an HDF5 variable-length string or
# link name, and lone surrogates are not UTF-8: both are tested separately (see test_format).
TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/")
text = st.text(TEXT_CHARS, max_size=12)

node_names = st.one_of(
    st.text(NAME_CHARS, min_size=1, max_size=10).filter(lambda s: s not in (".", "..")),
    st.from_regex(r"\A[a-z_]{1,8}(\.[0-9]{1,2}){1,3}\Z"),  # torch-style module paths: features.0.conv
)
keys = st.text(NAME_CHARS, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))

special_floats = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072014e-308,
                                  1.7976931348623157e308, -1.7976931348623157e308, 1e-300, 0.1, -1.5])
any_float = st.one_of(special_floats, st.floats())
int64 = st.one_of(st.sampled_from([INT64_MIN, INT64_MAX, -1, 0, 1]), st.integers(INT64_MIN, INT64_MAX))


def ints_from(lo: int, hi: int = INT64_MAX) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(sorted({lo, hi})), st.integers(lo, hi))


_META_ARRAY_DTYPES = [np.bool_, np.int8, np.uint16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64]
meta_arrays = st.sampled_from(_META_ARRAY_DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt).newbyteorder("="), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
)
meta_scalars = st.one_of(st.none(), st.booleans(), int64, any_float, text, meta_arrays)
metadata_values = st.recursive(
    meta_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)
metadata_dicts = st.dictionaries(keys, metadata_values, max_size=5)
#: Cheaper metadata for places where it is incidental (per-node metadata, random graphs).
small_metadata = st.one_of(
    st.just({}),
    st.dictionaries(keys, st.recursive(st.one_of(st.none(), st.booleans(), int64, any_float, text),
                                       lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(keys, c, max_size=3)),
                                       max_leaves=4), max_size=3),
)


def _dim(lo: int = 0, hi: int = 4) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def _shape(draw: Any, min_dims: int = 0, max_dims: int = 3, lo: int = 0, hi: int = 4) -> tuple:
    return draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=lo, max_side=hi)) if max_dims else ()


# A recipe draws the parts of a primitive that its check() constrains: {field: value or ("array", shape, elements)}.
Recipe = Callable[[Any], dict]
RECIPES: dict[str, Recipe] = {}


def recipe(*names: str) -> Callable[[Recipe], Recipe]:
    def deco(fn: Recipe) -> Recipe:
        for n in names:
            RECIPES[n] = fn
        return fn

    return deco


def A(shape: tuple, elements: str | None = None) -> tuple:
    return ("array", tuple(shape), elements)


@recipe("Input")
def _input(draw):
    return {"shape": tuple(draw(st.lists(ints_from(1), max_size=4)))}


@recipe("Affine", "SpikingAffine")
def _affine(draw):
    o, i = draw(_dim()), draw(_dim())
    out = {"weight": A((o, i)), "bias": A((o,))}
    wb = draw(st.integers(1, 32))
    out.update(weight_bits=wb, accumulator_bits=draw(st.integers(max(2, wb), 64)))
    return out


@recipe("Linear")
def _linear(draw):
    return {"weight": A((draw(_dim()), draw(_dim())))}


@recipe("Conv1d")
def _conv1d(draw):
    groups = draw(st.integers(1, 3))
    o = groups * draw(_dim(0, 3))
    return {"weight": A((o, draw(_dim()), draw(_dim(1, 3)))), "bias": A((o,)), "groups": groups}


@recipe("Conv2d", "SConv", "SDConv")
def _conv2d(draw):
    groups = draw(st.integers(1, 3))
    o = groups * draw(_dim(0, 3))
    pair = lambda lo: (draw(ints_from(lo)), draw(ints_from(lo)))  # noqa: E731
    return {"weight": A((o, draw(_dim()), draw(_dim(1, 3)), draw(_dim(1, 3)))), "bias": A((o,)), "groups": groups,
            "stride": pair(1), "dilation": pair(1), "padding": pair(0)}


@recipe("SepConv2d")
def _sepconv(draw):
    c, o = draw(_dim()), draw(_dim())
    return {"depthwise_weight": A((c, 1, draw(_dim(1, 3)), draw(_dim(1, 3)))), "depthwise_bias": A((c,)),
            "pointwise_weight": A((o, c, 1, 1)), "pointwise_bias": A((o,))}


@recipe("Upsample")
def _upsample(draw):
    if draw(st.booleans()):
        return {"size": (draw(ints_from(1)), draw(ints_from(1))), "scale_factor": draw(st.one_of(int64, any_float))}
    return {"size": None, "scale_factor": draw(st.one_of(ints_from(1), st.floats(min_value=0.0, exclude_min=True)))}


def _neuron_recipe(positive: tuple[str, ...]) -> Recipe:
    def fn(draw):
        shape = _shape(draw, 1, 3, 1, 4)
        choices = [shape, (), (1,), shape[-1:]]
        return {"__shape_choices__": choices, "__positive__": positive}

    return fn


RECIPES["LIF"] = _neuron_recipe(("tau",))
RECIPES["LI"] = _neuron_recipe(("tau",))
RECIPES["CubaLIF"] = _neuron_recipe(("tau_syn", "tau_mem"))
RECIPES["IF"] = _neuron_recipe(())
RECIPES["Integrator"] = _neuron_recipe(())
RECIPES["Threshold"] = _neuron_recipe(())


@recipe("Alpha")
def _alpha(draw):
    # tau_exc > tau_inh > 0 with tau_inh finite (alpha > beta, beta != 1); any float dtype, any broadcast shape
    shape = _shape(draw, 1, 3, 1, 4)
    s_inh, s_exc = draw(st.sampled_from([shape, (), (1,), shape[-1:]])), draw(st.sampled_from([shape, (), (1,), shape[-1:]]))
    dt_inh, dt_exc = (np.dtype(draw(st.sampled_from(["float32", "float64"]))) for _ in range(2))
    inh = draw(hnp.arrays(dt_inh, s_inh, elements=st.floats(0.125, 1e6, width=dt_inh.itemsize * 8)))
    gap = draw(hnp.arrays(np.float64, s_exc, elements=st.one_of(st.floats(1.0, 1e6), st.just(math.inf))))
    exc = (np.max(inh.astype(np.float64), initial=0.0) + gap).astype(dt_exc)
    # tau_alpha: None (derived) or any finite gain, at any float dtype and broadcast shape
    dt_ta = np.dtype(draw(st.sampled_from(["float32", "float64"])))
    s_ta = draw(st.sampled_from([shape, (), (1,), shape[-1:]]))
    ta = draw(st.one_of(st.none(), hnp.arrays(dt_ta, s_ta, elements=st.floats(-1e6, 1e6, width=dt_ta.itemsize * 8))))
    return {"tau_inh": ("raw", inh), "tau_exc": ("raw", exc), "tau_alpha": ("raw", ta)}


@recipe("ALIF")
def _alif(draw):
    shape = _shape(draw, 1, 3, 1, 4)
    choices = [shape, (), (1,), shape[-1:]]
    decays = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
    return {"__shape_choices__": choices, **{d: A(draw(st.sampled_from(choices)), "fraction") for d in decays}}


@recipe("Delay")
def _delay(draw):
    shape = _shape(draw, 0, 3, 0, 4)
    return {"delay": ("raw", draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1_000_000))))}


@recipe("PReLU")
def _prelu(draw):
    return {"weight": A((draw(_dim(1, 5)),))}


@recipe("BatchNorm1d", "BatchNorm2d")
def _bn(draw):
    n = draw(st.integers(1, 5))
    return {"num_features": n, "weight": A((n,)), "bias": A((n,)), "running_mean": A((n,)), "running_var": A((n,), "nonneg"),
            "eps": draw(st.floats(min_value=0.0))}


@recipe("LayerNorm")
def _ln(draw):
    # (A 0-d normalized_shape would need 0-d weight/bias: see test_primitives::test_zero_dim_arrays_keep_their_shape.)
    shape = tuple(draw(st.lists(_dim(), min_size=1, max_size=3)))
    return {"normalized_shape": shape, "weight": A(shape), "bias": A(shape), "eps": draw(st.floats(min_value=0.0))}


@recipe("Dropout")
def _dropout(draw):
    return {"p": draw(st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0)))}


@recipe("ChannelSplit")
def _split(draw):
    return {"split_sections": tuple(draw(st.lists(ints_from(1), min_size=1, max_size=4)))}


def _elements(kind: str | None, dtype: np.dtype) -> st.SearchStrategy | None:
    if kind is None:
        return None
    width = dtype.itemsize * 8
    # NaN is not in any range: a NaN tau or variance is refused (tests/ir/test_user_forms_s8_nanparams.py)
    if kind == "positive":
        return st.one_of(st.floats(min_value=0.0, exclude_min=True, allow_nan=False, width=width), st.just(math.inf))
    if kind == "nonneg":
        return st.one_of(st.floats(min_value=0.0, allow_nan=False, width=width), st.just(math.inf))
    if kind == "fraction":
        return st.floats(min_value=0.0, max_value=1.0, width=width)
    raise AssertionError(kind)


def spec_value(draw: Any, spec: Any, shape: tuple | None = None, elements: str | None = None) -> Any:
    """A valid value for one FieldSpec (arrays get `shape`, or a random small shape)."""
    kind = spec.kind
    if spec.optional and kind != ARRAY and draw(st.integers(0, 3)) == 0:
        return None
    if kind == ARRAY:
        dtype = spec.dtype
        if dtype == ANY_FLOAT:
            dtype = draw(st.sampled_from(["float32", "float64"]))
        dt = np.dtype(dtype)
        if shape is None:
            shape = _shape(draw)
        return draw(hnp.arrays(dt, shape, elements=_elements(elements, dt)))
    if kind == INT:
        return draw(ints_from(int(spec.minimum)) if spec.minimum is not None else int64)
    if kind == FLOAT:
        if spec.minimum is not None:
            return draw(st.one_of(st.just(float(spec.minimum)), st.floats(min_value=spec.minimum)))
        return draw(any_float)
    if kind == NUMBER:
        return draw(st.one_of(int64, any_float))
    if kind == BOOL:
        return draw(st.booleans())
    if kind == STR:
        return draw(st.sampled_from(spec.choices) if spec.choices else text)
    if kind == INTS:
        n = spec.length if spec.length is not None else draw(st.integers(0, 4))
        return tuple(draw(st.lists(int64, min_size=n, max_size=n)))
    if kind == DICT:
        return None if draw(st.integers(0, 3)) else draw(small_metadata)
    raise AssertionError(f"unknown field kind {kind}")


@st.composite
def node_of(draw: Any, type_name: str) -> Node:
    """A valid node of `type_name`, every field drawn from its FieldSpec (constrained parts by RECIPES)."""
    cls = ir.get_node_class(type_name)
    specs = cls.field_specs()
    # A subclass of a built-in primitive (class MyLIF(CubaLIF)) keeps its base's constraints.
    recipe = next((RECIPES[c.type_name] for c in cls.__mro__ if c.__dict__.get("type_name") in RECIPES), None)
    plan = recipe(draw) if recipe is not None else {}
    choices = plan.pop("__shape_choices__", None)
    positive = plan.pop("__positive__", ())
    kwargs: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in plan:
            value = plan[name]
            if isinstance(value, tuple) and value and value[0] == "array":
                _, shape, elements = value
                kwargs[name] = spec_value(draw, spec, shape, elements)
            elif isinstance(value, tuple) and value and value[0] == "raw":
                kwargs[name] = value[1]
            else:
                kwargs[name] = value
            continue
        if spec.kind == ARRAY:
            if spec.optional and draw(st.booleans()):
                kwargs[name] = None
                continue
            shape = draw(st.sampled_from(choices)) if choices else None
            kwargs[name] = spec_value(draw, spec, shape, "positive" if name in positive else None)
        else:
            kwargs[name] = spec_value(draw, spec)
    return cls(**kwargs)


# ----------------------------------------------------------------------------------------------------
# Random shape-compatible graphs
# ----------------------------------------------------------------------------------------------------


def _small_f32(draw: Any, shape: tuple) -> np.ndarray:
    return draw(hnp.arrays(np.float32, shape, elements=st.floats(-4, 4, width=32)))


@st.composite
def random_graphs(draw: Any, max_ops: int = 8, nested: bool = True) -> Graph:
    """A random valid graph: chains and DAGs of shape-compatible nodes (incl. Skip, Concat, ChannelSplit,
    recurrent loops through a LIF and nested graphs), inserted in a random order, with random names."""
    n_ops = draw(st.integers(1, max_ops))
    used: set[str] = set()
    created: list[tuple[str, Node]] = []
    edges: list[tuple[str, str]] = []
    live: list[tuple[str, tuple]] = []  # (producer, shape) tensors that may be consumed

    def add(node: Node, inputs: list[str], shape: tuple | None) -> str:
        name = draw(node_names.filter(lambda s: s not in used))
        used.add(name)
        created.append((name, node))
        edges.extend((src, name) for src in inputs)
        if shape is not None:
            live.append((name, shape))
        return name

    shape0 = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    add(ir.Input(shape=shape0), [], shape0)
    for _ in range(n_ops):
        src, shape = draw(st.sampled_from(live))
        op = draw(st.sampled_from(["unary", "neuron", "dense", "flatten", "skip", "concat", "split", "conv", "loop", "nested"]))
        if op == "unary":
            kind = draw(st.sampled_from(["ReLU", "Sigmoid", "Tanh", "GELU", "ELU", "Dropout", "HybridRegion", "Softmax", "Scale", "Threshold"]))
            if kind == "Scale":
                node = ir.Scale(scale=_small_f32(draw, shape[-1:]))
            elif kind == "Threshold":
                node = ir.Threshold(v_threshold=np.float32(0.5))
            elif kind == "HybridRegion":
                node = ir.HybridRegion(mode=draw(st.sampled_from(["ann", "snn"])), name=draw(st.one_of(st.none(), text)))
            elif kind == "Softmax":
                node = ir.Softmax(dim=draw(st.integers(-len(shape), len(shape) - 1)))
            else:
                node = ir.get_node_class(kind)()
            add(node, [src], shape)
        elif op == "neuron":
            kind = draw(st.sampled_from(["LIF", "IF", "LI", "Integrator", "CubaLIF", "Delay"]))
            p = np.full(shape, 2.0, dtype=np.float32)
            node = {
                "LIF": lambda: ir.LIF(tau=p, r=p, v_leak=np.zeros(shape), v_threshold=np.float64(1.0),
                                      reset_mode=draw(st.sampled_from(ir.RESET_MODES))),
                "IF": lambda: ir.IF(v_threshold=np.ones(shape[-1:])),
                "LI": lambda: ir.LI(tau=p, r=p, v_leak=np.zeros(1)),
                "Integrator": lambda: ir.Integrator(r=p),
                "CubaLIF": lambda: ir.CubaLIF(tau_syn=p, tau_mem=p, r=p, v_leak=0.0, v_threshold=1.0),
                "Delay": lambda: ir.Delay(delay=np.array(3)),
            }[kind]()
            add(node, [src], shape)
        elif op == "dense":
            o = draw(st.integers(1, 5))
            kind = draw(st.sampled_from(["Affine", "Linear", "SpikingAffine"]))
            w = _small_f32(draw, (o, shape[-1]))
            node = ir.Linear(weight=w) if kind == "Linear" else ir.get_node_class(kind)(weight=w, bias=_small_f32(draw, (o,)))
            add(node, [src], shape[:-1] + (o,))
        elif op == "flatten":
            r = len(shape)
            s = draw(st.integers(0, r - 1))
            e = draw(st.integers(s, r - 1))
            add(ir.Flatten(start_dim=s, end_dim=e - r if draw(st.booleans()) else e), [src], shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])
        elif op in ("skip", "concat"):
            same = [t for t in live if t[1] == shape and t[0] != src]
            other = draw(st.sampled_from(same))[0] if same else src
            if op == "skip":
                add(ir.Skip(skip_type="residual"), [src, other], shape)
            else:
                d = draw(st.integers(0, len(shape) - 1))
                out = list(shape)
                out[d] *= 2
                add(ir.Concat(num_inputs=2, dim=d - len(shape) if draw(st.booleans()) else d), [src, other], tuple(out))
        elif op == "split":
            if shape[0] < 2:
                continue
            k = draw(st.integers(1, shape[0] - 1))
            split = add(ir.ChannelSplit(split_sections=(k, shape[0] - k)), [src], None)
            # A ChannelSplit feeds exactly one edge per chunk, so its consumers are created right away.
            for n in (k, shape[0] - k):
                add(ir.ReLU(), [split], (n,) + shape[1:])
        elif op == "conv":
            if len(shape) != 3:
                continue
            c, h, w = shape
            kind = draw(st.sampled_from(["Conv2d", "MaxPool2d", "AvgPool2d", "Upsample"]))
            if kind == "Conv2d":
                o, k = draw(st.integers(1, 3)), draw(st.integers(1, min(h, w, 3)))
                add(ir.Conv2d(weight=_small_f32(draw, (o, c, k, k)), bias=np.zeros(o, np.float32)), [src], (o, h - k + 1, w - k + 1))
            elif kind == "Upsample":
                add(ir.Upsample(scale_factor=2), [src], (c, 2 * h, 2 * w))
            else:
                if min(h, w) < 2:
                    continue
                cls = ir.get_node_class(kind)
                add(cls(kernel_size=(2, 2), stride=(2, 2)), [src], (c, h // 2, w // 2))
        elif op == "loop":
            n = shape[-1]
            lif = add(ir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), v_leak=np.zeros(n), v_threshold=np.ones(n)), [src], shape)
            rec = add(ir.Affine(weight=_small_f32(draw, (n, n)), bias=np.zeros(n, np.float32)), [lif], None)
            edges.append((rec, lif))  # recurrent edge: the loop is carried by the LIF
        elif op == "nested" and nested:
            inner = Graph({"in": ir.Input(shape=shape), "act": ir.ReLU(), "out": ir.Output()}, [("in", "act"), ("act", "out")],
                          dt=draw(st.sampled_from([1.0, 0.5])), metadata=draw(small_metadata))
            add(inner, [src], shape)
    src, shape = live[-1]
    add(ir.Output(shape=shape if draw(st.booleans()) else None), [src], None)
    # Insertion order is independent of creation order: it must survive the round trip as given.
    order = draw(st.permutations(range(len(created))))
    nodes = {created[i][0]: created[i][1] for i in order}
    for name in draw(st.lists(st.sampled_from(sorted(nodes)), max_size=2, unique=True)):
        if not isinstance(nodes[name], Graph):
            nodes[name] = nodes[name].replace(metadata=draw(small_metadata))
    dt = draw(st.one_of(st.just(1.0), st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)))
    g = Graph(nodes, edges, dt=dt, metadata=draw(small_metadata))
    return g
