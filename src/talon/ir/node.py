"""The Node base class, typed field specifications and the primitive registry of the TALON IR.

A primitive is a dataclass whose fields are declared with the helpers below (`array`, `integer`, ...).
The declaration is the single source of truth for a field's kind, dtype, default and allowed values:
construction validates against it, the .t1c reader and writer are driven by it, and property tests
generate values from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, dataclass_transform

import numpy as np

from talon.errors import PrimitiveError, TalonUsageError

Shape = tuple[int, ...]

# Field kinds.
ARRAY = "array"
INT = "int"
FLOAT = "float"
NUMBER = "number"  # int or float, the Python type preserved
BOOL = "bool"
STR = "str"
INTS = "ints"
DICT = "dict"

# Array dtype meaning "float32 or float64, kept as given (float64 when built from Python numbers)".
ANY_FLOAT = "anyfloat"


@dataclass(frozen=True)
class FieldSpec:
    """What a primitive field may hold."""

    kind: str
    dtype: str | None = None  # arrays only: "float32", "float64", "int64" or ANY_FLOAT
    optional: bool = False  # None allowed (and then left out of files)
    length: int | None = None  # INTS: exact length; a scalar is broadcast to it
    choices: tuple[str, ...] | None = None  # STR: allowed values
    minimum: float | None = None  # INT/FLOAT: inclusive lower bound
    #: A TALON addition the existing SDK's files lack: left out of files when equal to its default,
    #: which keeps small files small and their layout identical to that SDK's.
    extension: bool = False
    doc: str = ""


def _spec_field(spec: FieldSpec, default: Any = MISSING, default_factory: Any = MISSING, **kw: Any) -> Any:
    return field(default=default, default_factory=default_factory, metadata={"talon": spec}, **kw)


def array(dtype: str = "float32", *, optional: bool = False, extension: bool = False, doc: str = "") -> Any:
    """A numpy array field (required unless optional, in which case it defaults to None)."""
    return _spec_field(FieldSpec(ARRAY, dtype=dtype, optional=optional, extension=extension, doc=doc), default=None if optional else MISSING)


def integer(default: Any = MISSING, *, optional: bool = False, minimum: int | None = None, doc: str = "") -> Any:
    if optional and default is MISSING:
        default = None
    return _spec_field(FieldSpec(INT, optional=optional, minimum=minimum, doc=doc), default=default)


def real(default: Any = MISSING, *, optional: bool = False, minimum: float | None = None, extension: bool = False, doc: str = "") -> Any:
    if optional and default is MISSING:
        default = None
    return _spec_field(FieldSpec(FLOAT, optional=optional, minimum=minimum, extension=extension, doc=doc), default=default)


def number(default: Any = MISSING, *, optional: bool = False, doc: str = "") -> Any:
    if optional and default is MISSING:
        default = None
    return _spec_field(FieldSpec(NUMBER, optional=optional, doc=doc), default=default)


def boolean(default: Any = MISSING, *, extension: bool = False, doc: str = "") -> Any:
    return _spec_field(FieldSpec(BOOL, extension=extension, doc=doc), default=default)


def string(default: Any = MISSING, *, choices: tuple[str, ...] | None = None, optional: bool = False, extension: bool = False, doc: str = "") -> Any:
    if optional and default is MISSING:
        default = None
    return _spec_field(FieldSpec(STR, choices=choices, optional=optional, extension=extension, doc=doc), default=default)


def ints(default: Any = MISSING, *, length: int | None = None, optional: bool = False, doc: str = "") -> Any:
    if optional and default is MISSING:
        default = None
    return _spec_field(FieldSpec(INTS, length=length, optional=optional, doc=doc), default=default)


def mapping(*, optional: bool = True, kw_only: bool = False, doc: str = "") -> Any:
    return _spec_field(FieldSpec(DICT, optional=optional, doc=doc), default=None, kw_only=kw_only)


def _coerce(owner: str, name: str, spec: FieldSpec, value: Any) -> Any:
    """Convert `value` to the canonical Python/numpy form for `spec`, or raise PrimitiveError."""
    where = f"{owner}.{name}"
    if value is None:
        if spec.optional:
            return None
        raise PrimitiveError(f"{where} is required but was None")
    kind = spec.kind
    if kind != STR and isinstance(value, (str, bytes)) or (kind == ARRAY and isinstance(value, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in value)):
        raise PrimitiveError(f"{where} must be numeric, got text {value!r}")
    try:
        if kind == ARRAY:
            if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
                raise PrimitiveError(f"{where} must be numeric, got dtype {value.dtype}")
            if spec.dtype == ANY_FLOAT:
                if isinstance(value, np.ndarray) and value.dtype in (np.float32, np.float64):
                    arr = value
                else:
                    arr = np.asarray(value, dtype=np.float64)
            else:
                with np.errstate(over="raise"):  # 1e300 into float32 would silently become inf
                    arr = np.asarray(value, dtype=np.dtype(spec.dtype))
            return np.require(arr, requirements="C")  # keeps 0-d arrays 0-d, unlike ascontiguousarray
        if kind == INT:
            if isinstance(value, (bool, np.bool_)):
                raise PrimitiveError(f"{where} must be an integer, got a bool")
            if isinstance(value, np.ndarray):
                if value.size != 1:
                    raise PrimitiveError(f"{where} must be a single integer, got shape {value.shape}")
                value = value.reshape(()).item()
            if isinstance(value, (float, np.floating)):
                if not float(value).is_integer():
                    raise PrimitiveError(f"{where} must be an integer, got {value!r}")
            out = int(value)
            if spec.minimum is not None and out < spec.minimum:
                raise PrimitiveError(f"{where} must be >= {spec.minimum:g}, got {out}")
            return out
        if kind == FLOAT:
            if isinstance(value, np.ndarray):
                if value.size != 1:
                    raise PrimitiveError(f"{where} must be a single number, got shape {value.shape}")
                value = value.reshape(()).item()
            if isinstance(value, (bool, np.bool_)):
                raise PrimitiveError(f"{where} must be a number, got a bool")
            real = float(value)
            if spec.minimum is not None and not real >= spec.minimum:
                raise PrimitiveError(f"{where} must be >= {spec.minimum:g}, got {real}")
            return real
        if kind == NUMBER:
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(()).item()
            if isinstance(value, (bool, np.bool_)):
                raise PrimitiveError(f"{where} must be a number, got a bool")
            if isinstance(value, (int, np.integer)):
                return int(value)
            return float(value)
        if kind == BOOL:
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(()).item()
            if not isinstance(value, (bool, np.bool_)):
                raise PrimitiveError(f"{where} must be a bool, got {type(value).__name__}")
            return bool(value)
        if kind == STR:
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if not isinstance(value, str):
                raise PrimitiveError(f"{where} must be a string, got {type(value).__name__}")
            if spec.choices is not None and value not in spec.choices:
                raise PrimitiveError(f"{where} must be one of {list(spec.choices)}, got {value!r}")
            return value
        if kind == INTS:
            items: Any = value
            if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
                items = (value,) if spec.length is None else (value,) * spec.length
            seq = np.asarray(items)
            if seq.ndim != 1 or (seq.size and seq.dtype.kind not in "iu"):
                raise PrimitiveError(f"{where} must be a sequence of integers, got {items!r}")
            ints = tuple(int(v) for v in seq)
            if spec.length is not None and len(ints) != spec.length:
                raise PrimitiveError(f"{where} must have {spec.length} entries, got {len(ints)}")
            return ints
        if kind == DICT:
            if not isinstance(value, dict):
                raise PrimitiveError(f"{where} must be a dict, got {type(value).__name__}")
            return value
    except PrimitiveError:
        raise
    except (TypeError, ValueError, OverflowError, FloatingPointError) as exc:
        raise PrimitiveError(f"{where}: cannot convert {type(value).__name__} value: {exc}") from None
    raise AssertionError(f"unknown field kind {kind}")


def values_equal(a: Any, b: Any) -> bool:
    """Exact equality of two field values: arrays must agree in dtype, shape and every bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@dataclass(eq=False, repr=False)
class Node:
    """Base of every IR node. Subclasses are dataclasses registered with `register_node`.

    Class attributes describe the node's role; instance fields are its parameters. Inferred shapes
    (`input_shapes`, `output_shapes`) are set by `Graph.infer_shapes()` and stored in files, but are not
    fields: two nodes with equal fields are equal whatever shapes they were last inferred with.
    """

    type_name: ClassVar[str] = "Node"
    #: Carries state from one timestep to the next (neurons, delays, nested graphs holding such).
    stateful: ClassVar[bool] = False
    #: Emits spikes (0/1, times a graded factor) rather than real values.
    spiking: ClassVar[bool] = False
    #: Neurons per output element: what the cost table counts as `neurons` and mapping places.
    neurons_per_element: ClassVar[int] = 0
    #: A neuron's per-element state variables, in the order its runtime holds them; the last is the
    #: membrane (what a neuron that does not spike outputs). Empty: no neuron state.
    state_fields: ClassVar[tuple[str, ...]] = ()
    #: Integrates its inputs into a synaptic current (state_fields[0]) that the membrane then integrates.
    has_current: ClassVar[bool] = False
    #: A neuron's operations per element and step, inputs summed separately (the cost table's flops).
    ops_per_step: ClassVar[int] = 0
    #: Every output value is a copy of an input value (a view, a selection, a delay): the output lies on
    #: the fixed-point grid of its single input and keeps its format.
    grid_preserving: ClassVar[bool] = False
    #: Adds its inputs elementwise, so that several edges into it need no sum node of their own (NIR
    #: import inserts one before any other node with several inputs). None: follows `max_inputs` (a node
    #: that takes any number of inputs sums them); a class may make it a property of the node's fields.
    sums_inputs: ClassVar[bool | None] = None
    #: Number of inputs accepted (None: any number >= min_inputs).
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    _field_specs_cache: ClassVar[dict[str, FieldSpec]]  # per class, set by field_specs()

    metadata: dict | None = mapping(kw_only=True, doc="free-form per-node metadata")

    if TYPE_CHECKING:
        # Passes reach a node's fields by name once its type_name says which primitive it is: type
        # checkers read any attribute of a plain Node as Any (at run time a missing one still raises).
        def __getattr__(self, name: str) -> Any: ...

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            spec = f.metadata.get("talon")
            if spec is not None:
                object.__setattr__(self, f.name, _coerce(self.type_name, f.name, spec, getattr(self, f.name)))
        self.input_shapes: list[Shape] | None = None
        self.output_shapes: list[Shape] | None = None
        self.check()

    # -- behaviour subclasses provide -------------------------------------------------------------
    def check(self) -> None:
        """Validate field values against each other; raise PrimitiveError naming the field."""

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        """Output shape(s) (batch dimension excluded) for the given input shapes.

        A shape rule reads the node's fields only, and array fields (of more than 16 values) only by
        dtype and shape: Graph caches inferred shapes on exactly that (`Graph.infer_shapes`).
        """
        if len(input_shapes) != 1:
            raise PrimitiveError(f"{self.type_name} takes one input, got {len(input_shapes)}")
        return [self.output_shape_for(input_shapes[0])]

    def output_shape_for(self, shape: Shape) -> Shape:
        """Single-input shape rule; the default passes the shape through unchanged."""
        return tuple(shape)

    @property
    def num_outputs(self) -> int:
        return 1

    # -- generic helpers --------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape | None:
        return self.input_shapes[0] if self.input_shapes else None

    @property
    def output_shape(self) -> Shape | None:
        return self.output_shapes[0] if self.output_shapes else None

    @classmethod
    def field_specs(cls) -> dict[str, FieldSpec]:
        # Cached per class (in the class's own __dict__, so subclasses get their own): readers, the
        # cost table and every pass ask for it per node.
        cached = cls.__dict__.get("_field_specs_cache")
        if cached is None:
            cached = {f.name: f.metadata["talon"] for f in dataclasses.fields(cls) if "talon" in f.metadata}
            cls._field_specs_cache = cached
        return dict(cached)

    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(cls):
            if "talon" not in f.metadata:
                continue
            if f.default is not MISSING:
                out[f.name] = f.default
            elif f.default_factory is not MISSING:
                out[f.name] = f.default_factory()
        return out

    def field_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_specs()}

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """(field name, array) for every array-valued field that is set."""
        for name, spec in self.field_specs().items():
            value = getattr(self, name)
            if spec.kind == ARRAY and value is not None:
                yield name, value

    def replace(self, **changes: Any) -> "Node":
        """A new node of the same type with some fields changed (nodes are never mutated in place)."""
        return dataclasses.replace(self, **changes)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(values_equal(getattr(self, n), getattr(other, n)) for n in self.field_specs())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for name, value in self.field_values().items():
            if name == "metadata":
                continue
            if isinstance(value, np.ndarray):
                parts.append(f"{name}=<{value.dtype}{list(value.shape)}>")
            elif value is not None:
                parts.append(f"{name}={value!r}")
        return f"{self.type_name}({', '.join(parts)})"


_REGISTRY: dict[str, type[Node]] = {}


def register_node(cls: type[Node] | None = None, *, name: str | None = None, replace: bool = False) -> Any:
    """Register a primitive class under its type name (usable as a decorator).

    User-defined primitives register the same way as built-in ones and then read, write and validate
    like them. Registering a second class under an existing name is an error unless `replace=True`.
    """

    def decorate(c: type[Node]) -> type[Node]:
        if not (isinstance(c, type) and issubclass(c, Node)):
            raise TalonUsageError(f"register_node expects a Node subclass, got {c!r}")
        type_name = name or c.__dict__.get("type_name") or c.__name__
        if type_name in _REGISTRY and _REGISTRY[type_name] is not c and not replace:
            raise TalonUsageError(f"a primitive named {type_name!r} is already registered ({_REGISTRY[type_name].__qualname__}); pass replace=True to replace it")
        c.type_name = type_name
        _REGISTRY[type_name] = c
        return c

    return decorate(cls) if cls is not None else decorate


def node_sums_inputs(node: Node) -> bool:
    """Whether `node` adds its inputs elementwise (the `sums_inputs` trait, resolved)."""
    declared = node.sums_inputs
    return node.max_inputs is None if declared is None else bool(declared)


def unregister_node(type_name: str) -> None:
    """Remove the primitive registered as `type_name` (a no-op when there is none), e.g. after a test.
    The other registries keyed by the type name (runtime, cost, ...) have unregister calls of their own."""
    _REGISTRY.pop(type_name, None)


def get_node_class(type_name: str) -> type[Node] | None:
    return _REGISTRY.get(type_name)


def list_primitives() -> list[str]:
    """Names of every registered primitive type, in registration order."""
    return list(_REGISTRY)


@dataclass_transform(eq_default=False)  # type checkers see each primitive's fields as __init__ parameters
def primitive(cls: type | None = None, *, name: str | None = None) -> Callable[[type], type[Node]] | type[Node]:
    """Declare and register a built-in primitive: `@primitive class Affine(Node): ...`."""

    def decorate(c: type) -> type[Node]:
        return register_node(dataclass(eq=False, repr=False)(c), name=name)

    return decorate(cls) if cls is not None else decorate
