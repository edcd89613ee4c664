"""Export PyTorch and snnTorch models to a `talon.ir.Graph`: `to_ir`, and `export_to_ir` (snnTorch's name: the
same export, with error messages that show `export_to_ir(...)` calls).

Owns the torch.fx tracing, the converters for functional ops (flatten, view/reshape, relu, residual `+`,
cat, pooling, ...), graph assembly, the checks on neuron state arguments and the `custom_map` extension
point. The torch.nn module converters and the converter contract (`ExportContext`) live in
`talon.bridge.converters`; time loops inside forward are reduced to one step by `talon.bridge._loops`.
snnTorch neurons are converted in `talon.bridge.snntorch`, imported lazily so that plain PyTorch
models export without snnTorch installed. docs/bridge.md has the mapping table and the equations.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import math
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from talon.bridge._inplace import check_inplace
from talon.bridge import _attr_state, _direct_forward, _hooks, _sample_views, _state_args, _state_writes, _wrappers
from talon.bridge._loops import STEP_FORMS, TimeLoop, find_time_loop
from talon.bridge._results import is_namedtuple_of_result, namedtuple_items
from talon.bridge._source import META_KEY as SOURCE_KEY
from talon.bridge._source import at, exception_line, index_expr, source_line, user_frame
from talon.bridge.converters import (
    Converter, ConverterResult, ExportContext, Shape, _adaptive_avg_kernel, _flatten_dims, _pair, _softmax_dim, check_produced, converter_for,
    unsupported,
)
from talon.errors import GraphValidationError, TalonError, TalonUsageError, UnsupportedModuleError
from talon.ir import (
    ELU, GELU, AvgPool2d, Concat, Dropout, Flatten, Graph, Input, MaxPool2d, Node, Output, ReLU, Scale, Sigmoid, Skip,
    Softmax, Tanh,
)
from talon.ir.spike_inputs import with_spike_inputs

__all__ = ["to_ir", "export_to_ir", "ExportContext", "Converter", "ConverterResult", "convert_module", "ExportWarning"]


class ExportWarning(UserWarning):
    """The export is exact for the model as it will run, but differs from how it is set up now (a layer in
    training mode), or the model computes something other than it seems to (a neuron reset on every call)."""

#: Layers with no IR equivalent at all. They are always leaves of the trace (a subclass too), so the export
#: stops with "no converter" for them rather than tracing into their internals (whose data-dependent
#: control flow torch.fx cannot follow).
NO_IR_EQUIVALENT: tuple[type, ...] = (
    nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoder,
    nn.TransformerDecoder, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
)


#: Neuron libraries whose modules torch.fx cannot trace and TALON does not convert: they have their own NIR export.
FOREIGN_SNN = {"norse": ("Norse", "norse.torch.to_nir(model, sample)"),
               "spikingjelly": ("SpikingJelly", "SpikingJelly's NIR exporter (the libraries and their exporters are listed at "
                                "neuroir.org)")}


def _foreign_snn(module: nn.Module) -> tuple[str, str] | None:
    root = type(module).__module__.split(".")[0]
    return FOREIGN_SNN.get(root)


def _no_converter_reason(module: nn.Module) -> str:
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        return ("it is a lazy module whose parameters are not initialised yet; run the model once on a sample "
                f"(model(sample)), which makes it an ordinary layer ({type(module).__name__} becomes "
                f"nn.{type(module).cls_to_become.__name__}), then export")
    foreign = _foreign_snn(module)
    if foreign is not None:
        library, exporter = foreign
        return (f"no converter for this module type: {library} neurons are not converted by to_ir; export the model "
                f"to NIR with {exporter}, then import that with talon.ir.from_nir(nir_graph) or "
                "talon.ir.nir.read_nir('model.nir') (see docs/nir.md)")
    bridge = _snn_bridge() if type(module).__module__.startswith("snntorch") else None
    hint = bridge.no_converter_hint(module) if bridge is not None else None
    if hint is not None:
        return f"no converter for this module type: {hint}"
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return ("no converter for this module type: recurrent layers (RNN, LSTM, GRU and their cells) have no IR "
                "equivalent; for spiking recurrence use snnTorch's RLeaky or RSynaptic")
    if isinstance(module, NO_IR_EQUIVALENT):
        return "no converter for this module type: attention and Transformer layers have no IR equivalent"
    return "no converter for this module type"


def _snn_bridge() -> Any:
    """talon.bridge.snntorch, or None when snnTorch is not installed."""
    try:
        from talon.bridge import snntorch as snn_bridge
    except ImportError:
        return None
    return snn_bridge


def convert_module(module: nn.Module, ctx: ExportContext) -> ConverterResult:
    """Convert one module with the converter registered for its type (for custom converters that wrap one)."""
    _snn_bridge()  # the snnTorch neurons register their converters when their module is imported
    conv = converter_for(module)
    if conv is None:
        raise ctx.unsupported(module, "no registered converter for this module type")
    return conv(module, ctx)


# --------------------------------------------------------------------------------------------------
# custom_map, tracing and recording
# --------------------------------------------------------------------------------------------------

class _Converters:
    """The one lookup of a module's converter: the call's custom_map first (keys: a module path (str) or a
    module type, matched exactly first, then by isinstance), then the registry (register_converter, exact type)."""

    def __init__(self, custom_map: Mapping[Any, Converter] | None) -> None:
        self.paths: dict[str, Converter] = {}
        self.types: dict[type, Converter] = {}
        for key, fn in (custom_map or {}).items():
            if not callable(fn):
                raise TalonError(f"custom_map[{key!r}] must be callable(module, ctx), got {type(fn).__name__}")
            if isinstance(key, str):
                self.paths[key] = fn
            elif isinstance(key, type) and issubclass(key, nn.Module):
                self.types[key] = fn
            else:
                raise TalonError(f"custom_map keys must be module paths (str) or nn.Module subclasses, got {key!r}")

    def find(self, path: str, module: nn.Module) -> Converter | None:
        return self.custom(path, module) or converter_for(module)

    def custom(self, path: str, module: nn.Module) -> Converter | None:
        """The custom_map entry for this module, if any."""
        if path in self.paths:
            return self.paths[path]
        if type(module) in self.types:
            return self.types[type(module)]
        for cls in type(module).__mro__:
            if cls in self.types:
                return self.types[cls]
        return None


class _Proxy(fx.Proxy):
    """fx's proxy, but `a += b`, `a *= b` and `a /= b` are traced as operator.iadd / imul / itruediv (fx records
    them as `a + b`), so that the export can check that the overwritten tensor is read nowhere else
    (talon.bridge._inplace)."""

    def __iadd__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.iadd, (self, other), {})

    def __imul__(self, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", operator.imul, (self, other), {})

    def __itruediv__(self, other: Any) -> fx.Proxy:
        # `kept = a; a /= 2`: recorded as `a / 2` before session 8, so `kept` kept the undivided value
        return self.tracer.create_proxy("call_function", operator.itruediv, (self, other), {})


class _SampleProxy(_Proxy):
    """The model's input during tracing: its sizes are the sample's, so `for step in range(x.size(0))`,
    `range(len(x))`, `x.shape[0]` and `for x_t in x` unroll a time loop as `range(num_steps)` does (fx's
    own proxies would make them symbolic, and `range` of a symbol cannot be traced)."""

    def __init__(self, node: fx.Node, tracer: fx.Tracer, shape: torch.Size, device: Any = None, dtype: Any = None) -> None:
        super().__init__(node, tracer)
        self._sample_shape = shape
        self._sample_device, self._sample_dtype = device, dtype  # None where a view made them unknown

    @property
    def device(self) -> Any:
        # torch.zeros(B, n, device=x.device) before the loop: a constant zero state, as with the sample's sizes
        return self._sample_device if self._sample_device is not None else fx.Proxy.__getattr__(self, "device")

    @property
    def dtype(self) -> Any:
        return self._sample_dtype if self._sample_dtype is not None else fx.Proxy.__getattr__(self, "dtype")

    def size(self, dim: int | None = None) -> Any:
        return self._sample_shape if dim is None else self._sample_shape[dim]

    @property
    def shape(self) -> torch.Size:
        return self._sample_shape

    def dim(self) -> int:
        return len(self._sample_shape)

    def __len__(self) -> int:
        return self._sample_shape[0]

    def __iter__(self) -> Iterator[fx.Proxy]:
        # `for x_t in x:` over a time-major input: the steps x[0], x[1], ... (fx cannot iterate a proxy)
        return (self[i] for i in range(self._sample_shape[0]))

    def __getattr__(self, name: str) -> Any:
        if name in _sample_views.VIEWS:  # x.transpose(0, 1), x.float(), x.unbind(1): still sized like the sample
            return lambda *args, **kwargs: _sample_views.call(self, name, args, kwargs)
        return super().__getattr__(name)

    @classmethod
    def __torch_function__(cls, orig_method: Any, types: Any, args: Any = None, kwargs: Any = None) -> Any:
        name = _sample_views.torch_view(orig_method, args)
        if name is not None:  # torch.unbind(x, dim=1), torch.transpose(x, 0, 1) as their method forms
            return _sample_views.call(args[0], name, tuple(args[1:]), kwargs or {})
        return super().__torch_function__(orig_method, types, args, kwargs)


class _Tracer(fx.Tracer):
    def __init__(self, converters: _Converters, snn_bridge: Any, sample: torch.Tensor | None = None) -> None:
        super().__init__()
        self.converters = converters
        self.snn_bridge = snn_bridge
        self.sample = sample  # the first input's proxy is sized like it (_SampleProxy)
        self._first_placeholder = True
        #: The path of the innermost module whose forward was being traced when tracing failed.
        self.failed_path: str | None = None

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        if not isinstance(root, nn.Module):
            return super().trace(root, concrete_args)
        with _direct_forward.traced_as_calls(root, self.is_leaf_module):  # self.fc.forward(x) as self.fc(x)
            return super().trace(root, concrete_args)

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta[SOURCE_KEY] = user_frame()  # error messages quote the user's line, not fx's node names
        return node

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except BaseException:
            if self.failed_path is None:
                try:
                    self.failed_path = self.path_of_module(m)
                except Exception:  # noqa: BLE001 - a module outside the root: name none
                    self.failed_path = None
            raise

    def proxy(self, node: fx.Node) -> fx.Proxy:
        if node.op == "placeholder" and self._first_placeholder and self.sample is not None:
            self._first_placeholder = False
            return _SampleProxy(node, self, self.sample.shape, self.sample.device, self.sample.dtype)
        return _Proxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if (self.converters.find(qualname, m) is not None or isinstance(m, NO_IR_EQUIVALENT)
                or _foreign_snn(m) is not None):
            return True
        if self.snn_bridge is not None and self.snn_bridge.is_snntorch_layer(m):
            return True
        return super().is_leaf_module(m, qualname)


def _concrete_args(module: nn.Module, api: str = "to_ir") -> dict[str, Any]:
    """Every forward parameter after the first is fixed to its default (None for neuron states)."""
    params = list(inspect.signature(module.forward).parameters.values())
    concrete = {}
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            raise UnsupportedModuleError(
                f"cannot export {type(module).__name__}: forward parameter {p.name!r} has no default; {api} feeds one "
                "sample tensor and fixes every other forward argument to its default (e.g. mem=None)"
            )
        concrete[p.name] = p.default
    return concrete


@contextlib.contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Run the model in eval mode and put back its train flags, buffers and neuron state afterwards.

    Tracing calls `init_leaky()` eagerly and the shape pass steps every neuron once: neither may leave a
    trace in the user's model (a later snnTorch run must start from the state it had).
    """
    saved = []
    scripted = []  # TorchScript modules (converted through custom_map): only their train flag is ours to restore
    for m in model.modules():
        if isinstance(m, torch.jit.ScriptModule):
            scripted.append((m, m.training))
            continue
        buffers = {k: (v, v.detach().clone()) for k, v in m._buffers.items() if v is not None}
        tensors = {k: v for k, v in vars(m).items() if isinstance(v, torch.Tensor) and not k.startswith("_")}
        saved.append((m, m.training, dict(m._buffers), buffers, tensors, _attr_state.snapshot(m)))
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        with torch.no_grad():
            for m, training, buffer_refs, buffers, tensors, attrs in saved:
                _attr_state.restore(m, attrs)  # `self.mem1 = mem1` in forward leaves fx proxies behind
                m.training = training
                m._buffers.clear()
                m._buffers.update(buffer_refs)
                for ref, value in buffers.values():
                    if ref.shape == value.shape:
                        # A buffer created under torch.inference_mode can only be written inside it;
                        # inference_mode(False) turns grad mode back on, so no_grad again (a neuron constant
                        # passed as nn.Parameter without learn_* is a buffer that requires grad).
                        with torch.inference_mode(ref.is_inference()), torch.no_grad():
                            ref.copy_(value)
                for k in [k for k, v in vars(m).items() if isinstance(v, torch.Tensor) and not k.startswith("_")]:
                    if k not in tensors:
                        delattr(m, k)
                for k, v in tensors.items():
                    setattr(m, k, v)
            for m, training in scripted:
                m.train(training)


class _Recorder(fx.Interpreter):
    """Runs the traced graph on the sample, keeping every value; `failed` is the node that raised, if any."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # no "While executing ... Use tlparse" appended to the user's error
        self.values: dict[fx.Node, Any] = {}
        self.failed: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        try:
            value = super().run_node(n)
        except Exception:
            self.failed = n
            raise
        self.values[n] = value
        return value


class _Root(nn.Module):
    """Wraps a model that is itself a single layer (nn.Linear, snn.Leaky, nn.GRU, ...) so that the trace sees
    it as one module call named `name` (torch.fx traces a root's own forward, never its leaf call)."""

    def __init__(self, name: str, module: nn.Module) -> None:
        super().__init__()
        self.add_module(name, module)
        self._name = name

    def forward(self, x: torch.Tensor) -> Any:
        return getattr(self, self._name)(x)


_CHANNEL_RANKS: dict[type, tuple[int, ...]] = {nn.Conv1d: (3,), nn.Conv2d: (4,), nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,)}
_RANK_FORMS = {2: "(B, C)", 3: "(B, C, L)", 4: "(B, C, H, W)"}


def _expected_input(m: nn.Module, got: Shape) -> tuple[Shape | None, str] | None:
    """(the input shape module `m` needs, as close to `got` as can be known, and why) for layers that fix
    their input size; the shape is None when only its form is known (a wrong rank). None when `m` does not
    fix its input size or `got` already fits."""
    want = list(got)
    if type(m) is nn.Linear:
        why = f"last dimension = in_features {m.in_features}"
        want = want[:-1] + [m.in_features] if len(want) > 1 else [1, m.in_features]
    elif type(m) in _CHANNEL_RANKS:
        ranks = _CHANNEL_RANKS[type(m)]
        is_conv = isinstance(m, (nn.Conv1d, nn.Conv2d))
        channels = m.in_channels if is_conv else m.num_features
        why = f"{' or '.join(_RANK_FORMS[r] for r in ranks)} with C = {'in_channels' if is_conv else 'num_features'} {channels}"
        if len(want) not in ranks:
            return None, why
        want[1] = channels
    elif type(m) is nn.LayerNorm:
        tail = [int(d) for d in m.normalized_shape]
        why = f"trailing dimensions = normalized_shape {tuple(tail)}"
        want = want[: max(len(want) - len(tail), 1)] + tail
    else:
        return None
    return (tuple(want), why) if tuple(want) != tuple(got) else None


def _sample_error(model: nn.Module, sample: torch.Tensor, gm: fx.GraphModule, rec: _Recorder, exc: Exception, api: str) -> str:
    """Why the sample could not run through the model, in TALON's terms: which module, which shape it
    needs against the one it got (when the module fixes its input size), and the original error's first line."""
    head = f"{api}: running the sample {tuple(sample.shape)} through {type(model).__name__} failed"
    detail = str(exc).split("\n\nWhile executing")[0].strip().splitlines()
    cause = f"{type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")
    n = rec.failed
    if n is None:
        return f"{head}: {cause}"
    if n.op != "call_module":
        label = getattr(n.target, "__name__", str(n.target)) if n.op == "call_function" else f"Tensor.{n.target}"
        return f"{head} at {label}{at(n) or f' (traced as {n.name!r})'}: {cause}{_fixed_batch(n, sample)}"
    path, m = str(n.target), gm.get_submodule(str(n.target))
    where = f"{head} at module {path!r} ({type(m).__name__})"
    arg = n.args[0] if n.args else None
    value = rec.values.get(arg) if isinstance(arg, fx.Node) else None
    if not isinstance(value, torch.Tensor):
        return f"{where}: {cause}"
    got = tuple(value.shape)
    expected = _expected_input(m, got)
    if expected is None:
        return f"{where}: {cause}"
    want, why = expected
    need = f"it expects an input of shape {want} ({why})" if want is not None else f"it expects an input shaped {why}"
    if arg.op == "placeholder":
        fix = f"pass a batch-first sample of shape {want}" if want is not None else f"pass a batch-first sample shaped {why}"
        return f"{where}: {need} but the sample has shape {got}; {fix}"
    return (f"{where}: {need} but got {got}, computed from the sample {tuple(sample.shape)}; check the sample's shape "
            f"against the input the model was built for")


# --------------------------------------------------------------------------------------------------
# graph assembly
# --------------------------------------------------------------------------------------------------

def _fixed_batch(n: fx.Node, sample: torch.Tensor) -> str:
    """A hint for `x.view(batch_size, -1)` with a batch size other than the sample's."""
    if n.op != "call_method" or n.target not in ("view", "reshape") or len(n.args) < 2:
        return ""
    first = n.args[1][0] if isinstance(n.args[1], (tuple, list)) and n.args[1] else n.args[1]
    if type(first) is not int or first in (-1, sample.shape[0]):
        return ""
    return (f"; forward fixes the batch size to {first} here, the sample has batch {sample.shape[0]}: pass a sample "
            f"with batch {first}, or write .{n.target}(x.size(0), -1) so that any batch works")


class _Meta:
    """A traced value that is not data: a shape, a constant, a concrete argument."""


META = _Meta()


@dataclass(frozen=True)
class _State:
    """A neuron's state output (membrane, synaptic current): internal to the IR neuron."""

    neuron: str
    index: int


@dataclass(frozen=True)
class _NeuronTuple:
    """The whole (spike, state...) tuple a neuron returns; item 0 is the spike."""

    neuron: str


_ALIAS_METHODS = {"contiguous", "clone", "detach", "detach_", "requires_grad_"}
#: dtype and device conversions: the identity when they change nothing, refused otherwise.
_CONVERSIONS = {"cpu", "to", "float", "type", "type_as", "double", "half", "bfloat16", "bool", "int", "long", "cuda"}
#: Methods that read a tensor's values into Python.
_TO_PYTHON = {"item", "tolist", "numpy"}
# Results that depend on a tensor's shape only (typically an initial neuron state such as
# zeros_like(cur)); they are constants to the IR and an error if used as data.
_SHAPE_ONLY = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.zeros, torch.ones,
               torch.empty, torch.full, "new_zeros", "new_ones", "new_empty", "new_full"}

_FUNCTION_OPS: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
    operator.truediv: "div", operator.itruediv: "div", torch.div: "div", torch.true_divide: "div",
    torch.flatten: "flatten", torch.reshape: "reshape", torch.squeeze: "reshape", torch.unsqueeze: "reshape",
    torch.relu: "relu", F.relu: "relu", F.leaky_relu: "leaky_relu",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
    torch.softmax: "softmax", F.softmax: "softmax", F.gelu: "gelu", F.elu: "elu", F.dropout: "dropout",
    torch.cat: "cat", torch.concat: "cat", torch.concatenate: "cat",
    F.max_pool2d: "max_pool2d", torch.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d",
    F.adaptive_avg_pool2d: "adaptive_avg_pool2d", torch.clone: "alias", torch.detach: "alias",
    operator.getitem: "getitem", builtins.getattr: "getattr",
}
_METHOD_OPS = {
    "add": "add", "add_": "add", "mul": "mul", "mul_": "mul", "div": "div", "true_divide": "div",
    "flatten": "flatten", "view": "reshape",
    "reshape": "reshape", "squeeze": "reshape", "unsqueeze": "reshape", "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
}
#: Op -> the IR types its node may be (a reshape that changes nothing, and an alias, emit none). `talon
#: primitives` lists the functional ops producing each type from this table, and _call_op stops with a
#: TalonError when an op's node is of a type not declared here, so the table cannot drift from the code.
OP_PRODUCES: dict[str, tuple[str, ...]] = {
    "add": ("Skip",), "mul": ("Scale",), "div": ("Scale",), "cat": ("Concat",), "flatten": ("Flatten",), "reshape": ("Flatten",),
    "relu": ("ReLU",), "leaky_relu": ("ReLU",), "sigmoid": ("Sigmoid",), "tanh": ("Tanh",), "softmax": ("Softmax",),
    "gelu": ("GELU",), "elu": ("ELU",), "dropout": ("Dropout",), "max_pool2d": ("MaxPool2d",),
    "avg_pool2d": ("AvgPool2d",), "adaptive_avg_pool2d": ("AvgPool2d",), "alias": (),
}


def _op_label(target: Any) -> str:
    """How a user writes a traced callable: F.relu, torch.flatten, operator.add (`+`)."""
    name = getattr(target, "__name__", str(target))
    for label, namespace in (("F", F), ("torch", torch), ("operator", operator)):
        if getattr(namespace, name, None) is target:
            return f"{label}.{name}"
    return f"{getattr(target, '__module__', '?')}.{name}"


def functional_ops() -> dict[str, list[str]]:
    """{IR type: the functional ops and Tensor methods the exporter traces into it}, from the exporter's own
    tables (_FUNCTION_OPS, _METHOD_OPS, OP_PRODUCES); "" for those it exports as the identity (no node)."""
    out: dict[str, list[str]] = {}
    ops = [(_op_label(f), op) for f, op in _FUNCTION_OPS.items()] + [(f"Tensor.{m}", op) for m, op in _METHOD_OPS.items()]
    ops += [(f"Tensor.{m}", "alias") for m in sorted(_ALIAS_METHODS)]
    for label, op in ops:
        if op not in OP_PRODUCES:  # getitem, getattr: they select or steer, they compute nothing
            continue
        for type_name in OP_PRODUCES[op] or ("",):
            out.setdefault(type_name, []).append(label)
    out.setdefault("", []).extend(f"Tensor.{m} (when it changes neither dtype nor device)" for m in sorted(_CONVERSIONS))
    return out


def _arg(n: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(n.args) > index:
        return n.args[index]
    return n.kwargs.get(name, default)


def _operands(n: fx.Node) -> list[Any]:
    """The two operands of a binary op however they were passed: `a + b`, `torch.add(a, b)`, `torch.add(input=a,
    other=b)`, `a.add(other=b)` (a method's self is its first argument)."""
    return [_arg(n, 0, "input" if n.op == "call_function" else "self"), _arg(n, 1, "other")]


def _exact_reciprocal(n: fx.Node, divisor: Any, where: str) -> np.ndarray:
    """1/c for `x / c`, where that multiplication gives the same bits as the division: c = ±2^k, whose float32
    reciprocal is exact (both are then the one correctly rounded value of x/c). Any other divisor is refused."""
    if n.kwargs.get("rounding_mode") is not None:
        raise UnsupportedModuleError(f"{where} with rounding_mode={n.kwargs['rounding_mode']!r} has no IR equivalent")
    if isinstance(divisor, (fx.Node, bool)) or not isinstance(divisor, (int, float)):
        raise UnsupportedModuleError(f"{where}: only a computed tensor divided by a Python number maps to the IR (Scale)")
    mantissa, exponent = math.frexp(float(divisor))
    if abs(mantissa) != 0.5 or not -125 <= exponent - 1 <= 126:
        raise UnsupportedModuleError(
            f"{where} divides by {divisor!r}; the IR scales by a multiplication, and x * (1/{divisor!r}) rounds "
            f"differently from x / {divisor!r} unless the divisor is a power of two; write the multiplication "
            f"(x * {1 / float(divisor)!r}) if that is what the model should compute")
    return np.asarray(1.0 / float(divisor), dtype=np.float32)


def _reads_of(n: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((n.args, n.kwargs), found.append)
    return found


def _shape_of(value: Any) -> Shape:
    return tuple(int(d) for d in value.shape[1:])


@dataclass
class _Builder:
    gm: fx.GraphModule
    values: dict[fx.Node, Any]
    converters: _Converters
    snn_bridge: Any
    dt: float = 1.0
    api: str = "to_ir"
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    expected: dict[str, tuple[Shape, str]] = field(default_factory=dict)  # name -> (traced shape, module path)
    refs: dict[fx.Node, Any] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)
    #: The time loop inside forward, reduced to one step (None: forward is one step).
    loop: TimeLoop | None = None
    #: forward takes optional arguments (`mem=None`): a state it initialises can come from the caller.
    takes_state: bool = False
    neurons: dict[str, tuple[nn.Module, ExportContext]] = field(default_factory=dict)
    neuron_calls: dict[str, int] = field(default_factory=dict)
    memoryless: set[str] = field(default_factory=set)

    # -- naming and emission ----------------------------------------------------------------------
    def _unique(self, hint: str, own_reserved: bool) -> str:
        """A fresh name; module paths were reserved up front so functional ops never take them."""
        name, k = hint, 0
        while name in self.nodes or (not own_reserved and name in self.reserved):
            k += 1
            name = f"{hint}_{k}"
        return name

    def _emit(self, hint: str, node: Node, inputs: list[str], shape: Shape, path: str, *, module_name: bool = False) -> str:
        name = self._unique(hint, module_name)
        self.nodes[name] = node
        self.edges.extend((src, name) for src in inputs)
        self.expected[name] = (shape, path)
        return name

    # -- inputs of a traced call ------------------------------------------------------------------
    def _data_inputs(self, n: fx.Node, args: Any, where: str) -> list[str]:
        found: list[fx.Node] = []
        fx.node.map_arg(args, found.append)
        names = []
        for a in found:
            ref = self.refs.get(a, META)
            if isinstance(ref, str):
                names.append(ref)
            elif isinstance(ref, _State):
                raise UnsupportedModuleError(
                    f"{where} uses state output {ref.index} (membrane/current) of neuron {ref.neuron!r} as a value; IR "
                    "neurons emit spikes only, their state stays inside the neuron"
                )
            elif isinstance(ref, _NeuronTuple):
                raise UnsupportedModuleError(f"{where} takes the whole output tuple of neuron {ref.neuron!r}; index it ([0] is the spike)")
            elif isinstance(self.values.get(a), torch.Tensor):
                made = source_line(a)
                raise UnsupportedModuleError(
                    f"{where} computes with a tensor that does not come from the input ({f'made at {made}' if made else repr(a.name)}): "
                    "the IR has no constant tensors. Make it a parameter of a module of your own and pass a converter, "
                    f"{self.api}(model, sample, custom_map={{YourModule: fn}}), or leave it out of forward")
        return names

    # -- the passes -------------------------------------------------------------------------------
    def build(self, sample: torch.Tensor, model: nn.Module) -> Graph:
        loop = self.loop
        graph_nodes = loop.nodes if loop is not None else list(self.gm.graph.nodes)
        self.reserved = {"input", "output"} | {str(n.target) for n in graph_nodes if n.op == "call_module"}
        first_input = True
        # A (T, B, ...) input read as x[step]: the IR input is one step of it.
        step_shape = tuple(sample.shape[2:]) if loop is not None and loop.step_inputs else None
        for n in graph_nodes:
            if loop is not None and loop.last_alias:
                # ops after the loop on the last step (return self.fc_out(spk)) read the step graph's nodes
                for last, first in loop.last_alias.items():
                    if last not in self.refs and first in self.refs:
                        self.refs[last] = self.refs[first]
            if n.op == "placeholder":
                if first_input and step_shape is None:
                    self._input(n, tuple(sample.shape[1:]))
                else:
                    self.refs[n] = META
                first_input = False
            elif loop is not None and n in loop.step_inputs:
                self._input(n, step_shape)
            elif loop is not None and n in loop.input_views:
                self.refs[n] = META  # x.transpose(0, 1) read one step at a time: the IR input is the step
            elif n.op == "get_attr":
                self.refs[n] = META
            elif n.op == "call_module":
                self._call_module(n)
            elif n.op in ("call_function", "call_method"):
                self._call_op(n)
            elif n.op == "output":
                self._output(_first_result(n), model)
        if loop is not None:
            self._output(loop.output, model)
        return self._finish()

    def _input(self, n: fx.Node, shape: Shape) -> None:
        if "input" in self.nodes:  # x[step] read twice in one step: the same input
            self.refs[n] = "input"
            return
        self.nodes["input"] = Input(shape=shape)
        self.expected["input"] = (shape, "input")
        self.refs[n] = "input"

    def _call_module(self, n: fx.Node) -> None:
        path = str(n.target)
        module = self.gm.get_submodule(path)
        value = self.values[n]
        is_neuron = self.snn_bridge is not None and self.snn_bridge.is_neuron(module)
        if is_neuron:
            data = [_arg(n, 0, "input_")]
        else:
            data = [n.args, n.kwargs]
        inputs = self._data_inputs(n, data, f"module {path!r}")
        first = value[0] if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor) else value
        if not isinstance(first, torch.Tensor):
            raise unsupported(path, module, f"it returned {type(value).__name__}, not a tensor", self.api)
        shape = _shape_of(first)
        in_shapes = []
        found: list[fx.Node] = []
        fx.node.map_arg(data, found.append)
        for a in found:
            v = self.values.get(a)
            if isinstance(self.refs.get(a), str) and isinstance(v, torch.Tensor):
                in_shapes.append(_shape_of(v))
                self._check_rank(path, module, a, v)
        ctx = ExportContext(path=path, input_shapes=tuple(in_shapes), output_shape=shape, dt=self.dt, api=self.api)
        conv = self.converters.find(path, module)
        if conv is None:
            raise unsupported(path, module, _no_converter_reason(module), self.api)
        if is_neuron:
            self.neurons[path] = (module, ctx)
            if self._restarted(n, path, module) and self.converters.custom(path, module) is None:
                conv = self._memoryless(path)
        result = conv(module, ctx)
        if conv is converter_for(module):
            check_produced(module, path, result)
        name = self._insert(path, result, inputs, shape, module, conv)
        if isinstance(value, (tuple, list)):
            self.refs[n] = _NeuronTuple(name)
        else:
            self.refs[n] = name

    # -- neuron states ------------------------------------------------------------------------------
    def _restarted(self, n: fx.Node, path: str, module: nn.Module) -> bool:
        """Check the state arguments of a neuron call; True when forward restarts the neuron from a zero
        state of its own making on every call (so each call is memoryless).

        The IR neuron starts from zero and then continues from its own state: a state argument that is
        anything else (non-zero, computed from the input, another neuron's state) would be ignored.
        """
        count = self.neuron_calls[path] = self.neuron_calls.get(path, 0) + 1
        per = "per time step of the loop in forward" if self.loop is not None else "in one forward"
        if count > 1:
            raise unsupported(path, module, f"it is called {count} times {per}: in snnTorch every call continues from "
                              "the state the previous call left (one shared membrane), which one IR neuron cannot express; "
                              "give each call its own neuron module", self.api, converter_hint=False)
        try:
            params = list(inspect.signature(module.forward).parameters)
        except (TypeError, ValueError):
            params = []
        bound = {params[i] if i < len(params) else f"argument {i}": v for i, v in enumerate(n.args)}
        bound.update(n.kwargs)
        initialised = False
        for key, v in bound.items():
            if (params and key == params[0]) or v is None:
                continue
            ref = self.refs.get(v, META) if isinstance(v, fx.Node) else META
            why = None
            if isinstance(ref, _State):
                why = f"it starts from the state (output {ref.index}) of neuron {ref.neuron!r}"
            elif isinstance(ref, _NeuronTuple):
                why = f"its state argument {key!r} is the whole output tuple of neuron {ref.neuron!r}"
            elif isinstance(ref, str):
                why = f"its state argument {key!r} is computed from the input ({v.name!r})"
            else:
                value = self.values.get(v) if isinstance(v, fx.Node) else v
                if isinstance(value, torch.Tensor) and value.numel() and bool(torch.any(value != 0)):
                    why = f"it starts from a non-zero initial {key} built in forward"
                initialised = True
            if why is not None:
                raise unsupported(path, module, f"{why}, but an IR neuron starts from zero and continues from its own state. "
                                  "Start it from zero (init_leaky()), or keep the state out of forward and give it to the "
                                  f"executor: ir_to_torch(graph, return_state=True)(x, {{{path!r}: (mem,)}})", self.api,
                                  converter_hint=False)
        return initialised and self.loop is None and not self.takes_state

    def _memoryless(self, path: str) -> Converter:
        def convert(module: nn.Module, ctx: ExportContext) -> ConverterResult:
            node = self.snn_bridge.memoryless(module, ctx)
            self.memoryless.add(path)
            warnings.warn(
                f"{self.api}: forward sets the state of neuron {path!r} on every call (e.g. mem = init_leaky()) and takes "
                "no state argument, so in snnTorch each call starts from zero and the neuron keeps nothing from one call "
                f"to the next: it is exported as what it computes, a Threshold. To keep the membrane across time steps, "
                "loop over time inside forward, take the state as an argument (forward(self, x, mem=None)), or use "
                "init_hidden=True", ExportWarning, stacklevel=6)
            return node
        return convert

    def _check_rank(self, path: str, module: nn.Module, arg: fx.Node, value: torch.Tensor) -> None:
        """A convolution or batch norm that torch ran on an unbatched input (a sample without its batch
        dimension): the IR layer, batch-first, cannot match it."""
        expected = _expected_input(module, tuple(value.shape)) if type(module) in _CHANNEL_RANKS else None
        if expected is None or expected[0] is not None:
            return
        head = f"{self.api}: module {path!r} ({type(module).__name__}) got an input of shape {tuple(value.shape)}, but it expects {expected[1]}"
        if arg.op == "placeholder":
            raise TalonUsageError(f"{head}; the sample must be batch-first: add the batch dimension, e.g. sample.unsqueeze(0) of shape {(1, *value.shape)}")
        raise TalonUsageError(f"{head}, batch first; check the sample's shape against the input the model was built for")

    def _insert(self, path: str, result: Any, inputs: list[str], shape: Shape, module: nn.Module, conv: Any) -> str:
        if isinstance(result, Node):  # Graph is a Node: a nested composite block
            return self._emit(path, result, inputs, shape, path, module_name=True)
        if isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, Node) for r in result):
            neuron, rec = result
            if not neuron.stateful:
                raise TalonError(f"converter {conv!r} for {path!r} returned a recurrent pair whose first node {neuron.type_name} is not stateful")
            name = self._emit(path, neuron, inputs, shape, path, module_name=True)
            rec_name = self._emit(f"{name}.recurrent", rec, [name], shape, path, module_name=True)
            # Edge order makes the neuron's inputs [feed-forward, recurrent]: snnTorch adds them in that order.
            self.edges.append((rec_name, name))
            return name
        raise TalonError(
            f"converter {conv!r} for {path!r} returned {type(result).__name__}; expected a talon.ir Node, a Graph "
            "or a (neuron Node, recurrent Node) tuple"
        )

    def _call_op(self, n: fx.Node) -> None:
        value = self.values.get(n)
        if is_namedtuple_of_result(n):
            self.refs[n] = META  # the returned namedtuple: its first item is the output (_first_result)
            return
        if n.op == "call_function":
            op = _FUNCTION_OPS.get(n.target)
            label = getattr(n.target, "__name__", str(n.target))
        else:
            op = "alias" if n.target in _ALIAS_METHODS else _METHOD_OPS.get(n.target)
            label = f"Tensor.{n.target}"
        where = f"functional op {label}{at(n) or f' (traced as {n.name!r})'}"
        if op == "getitem":
            return self._getitem(n)
        if n.op == "call_method" and n.target in _CONVERSIONS:
            return self._conversion(n, value, label)
        if n.op == "call_method" and n.target in _TO_PYTHON and self._touches_data(n):
            raise UnsupportedModuleError(
                f"{label}(){at(n)} reads a tensor's values into Python, which the IR graph cannot do (it computes on "
                "tensors, one step at a time); do it on the executor's outputs, outside the model")
        if (op is None and isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)
                and self._touches_data(n)):
            # chunk/split/max(dim): refused here, by name, not later as a "constant" at the op reading the pieces.
            raise UnsupportedModuleError(
                f"{where} has no IR equivalent (the functional ops TALON exports are listed in docs/bridge.md); do it "
                "outside the model, on the executor's outputs, or wrap it in an nn.Module of your own and pass a converter: "
                f"{self.api}(model, sample, custom_map={{YourModule: fn}})")
        if not isinstance(value, torch.Tensor) or n.target in _SHAPE_ONLY:
            # Sizes, shapes, concrete-argument checks, zeros_like: they steer the trace but carry no data.
            self.refs[n] = META
            return
        if op is None or op == "getattr":
            if not self._touches_data(n):
                self.refs[n] = META  # a constant, computed from constants
                return
            raise UnsupportedModuleError(
                f"{where} has no IR equivalent (the functional ops TALON exports are listed in docs/bridge.md); do it "
                "outside the model, on the executor's outputs, or wrap it in an nn.Module of your own and pass a converter: "
                f"{self.api}(model, sample, custom_map={{YourModule: fn}})")
        changed = self._dtype_change(n, value)
        if changed is not None:
            raise UnsupportedModuleError(
                f"{where} turns {changed} into {value.dtype} (e.g. its dtype= argument); the IR computes every op in the "
                "dtype of its input, float32, so the graph would compute something else: drop the dtype argument, or "
                "convert outside the model")
        shape = _shape_of(value)
        args = list(n.args)
        if op == "alias":
            self.refs[n] = self._single(n, where)
            return
        if op == "cat":
            tensors = _arg(n, 0, "tensors")
            dim = _arg(n, 1, "dim", n.kwargs.get("axis", 0))  # torch.cat(xs, axis=1) is numpy's spelling of dim
            inputs = self._data_inputs(n, tensors, where)
            if len(inputs) != len(tensors):
                raise UnsupportedModuleError(f"{where} concatenates a tensor that is not computed from the input")
            full = value.dim()
            d = dim + full if dim < 0 else dim
            if d < 1:
                raise UnsupportedModuleError(f"{where} concatenates along the batch dimension")
            self.refs[n] = self._emit_op("cat", Concat(num_inputs=len(inputs), dim=dim if dim < 0 else dim - 1), inputs, shape, n.name)
            return
        if op in ("add", "mul", "div"):
            args = _operands(n)  # torch.add(input=a, other=b) and a.add(other=b) as well as a + b
        if op == "add":
            if n.kwargs.get("alpha", 1) != 1:
                raise UnsupportedModuleError(f"{where} with alpha != 1 has no IR equivalent")
            inputs = self._data_inputs(n, args[:2], where)
            if len(inputs) != 2 or not all(isinstance(self.values.get(a), torch.Tensor) and _shape_of(self.values[a]) == shape for a in args[:2]):
                raise UnsupportedModuleError(f"{where} must add two computed tensors of the same shape (a residual connection); got shapes {[tuple(self.values[a].shape) if isinstance(a, fx.Node) else a for a in args[:2]]}")
            self.refs[n] = self._emit_op("add", Skip(skip_type="residual"), inputs, shape, n.name)
            return
        if op == "mul":
            inputs = self._data_inputs(n, args[:2], where)
            scalars = [a for a in args[:2] if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if len(inputs) != 1 or len(scalars) != 1:
                raise UnsupportedModuleError(f"{where}: only a tensor times a Python number maps to the IR (Scale)")
            self.refs[n] = self._emit_op("mul", Scale(scale=np.asarray(scalars[0], dtype=np.float32)), inputs, shape, n.name)
            return
        if op == "div":
            inputs = self._data_inputs(n, args[:1], where)
            if len(inputs) != 1:
                raise UnsupportedModuleError(f"{where}: only a computed tensor divided by a Python number maps to the IR (Scale)")
            self.refs[n] = self._emit_op("div", Scale(scale=_exact_reciprocal(n, args[1], where)), inputs, shape, n.name)
            return
        src = self._single(n, where)
        in_value = self.values[args[0]] if args and isinstance(args[0], fx.Node) else None
        full = in_value.dim() if isinstance(in_value, torch.Tensor) else len(shape) + 1
        features = int(math.prod(shape))
        if op == "flatten":
            start = _arg(n, 1, "start_dim", 0)
            end = _arg(n, 2, "end_dim", -1)
            dims = _flatten_dims(start, end, full)
            if dims is None:
                raise UnsupportedModuleError(f"{where}(start_dim={start}, end_dim={end}) merges the batch dimension")
            node: Node = Flatten(start_dim=dims[0], end_dim=dims[1])
        elif op == "reshape":
            in_shape = _shape_of(in_value)
            if value.dim() == 0 or in_value.shape[0] != value.shape[0]:
                hint = ("; squeeze() without a dim also drops a batch of 1: name the dim, x.squeeze(1)"
                        if n.target in ("squeeze", torch.squeeze) and len(n.args) < 2 and "dim" not in n.kwargs else "")
                raise UnsupportedModuleError(f"{where} reshapes {tuple(in_value.shape)} to {tuple(value.shape)}, changing the "
                                             f"batch dimension{hint}")
            if in_shape == shape:
                self.refs[n] = src
                return
            dims = _reshape_as_flatten(in_shape, shape)
            if dims is None:
                raise UnsupportedModuleError(f"{where} reshapes {in_shape} to {shape} (batch excluded); only reshapes that flatten a run of dimensions map to the IR (Flatten)")
            node = Flatten(start_dim=dims[0], end_dim=dims[1])
            op = "flatten"
        elif op == "relu":
            node = ReLU(features=features)
        elif op == "leaky_relu":
            node = ReLU(negative_slope=float(_arg(n, 1, "negative_slope", 0.01)), features=features)
        elif op == "sigmoid":
            node = Sigmoid(features=features)
        elif op == "tanh":
            node = Tanh(features=features)
        elif op == "softmax":
            d = _softmax_dim(_arg(n, 1, "dim", None), full)
            if d is None:
                raise UnsupportedModuleError(f"{where} normalizes across the batch")
            node = Softmax(dim=d, features=features)
        elif op == "gelu":
            node = GELU(approximate=_arg(n, 1, "approximate", "none") == "tanh", features=features)
        elif op == "elu":
            node = ELU(alpha=float(_arg(n, 1, "alpha", 1.0)), features=features)
        elif op == "dropout":
            p = float(_arg(n, 1, "p", 0.5))
            if p > 0 and _arg(n, 2, "training", True) is not False:
                raise UnsupportedModuleError(
                    f"{where}: F.dropout with training=True (its default) zeroes activations at random even in eval "
                    "mode; the IR Dropout is the identity. Write F.dropout(x, p, training=self.training) or use nn.Dropout")
            node = Dropout(p=p, features=features)
        elif op in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"):
            node = _functional_pool(op, n, _shape_of(in_value), where)
        else:  # pragma: no cover - every op above is handled
            raise AssertionError(op)
        self.refs[n] = self._emit_op(op, node, [src], shape, n.name)

    def _dtype_change(self, n: fx.Node, value: torch.Tensor) -> torch.dtype | None:
        """The floating dtype of a data input that op `n` returns in another dtype (`F.softmax(x, 1,
        dtype=torch.float64)`), else None."""
        if not value.is_floating_point():
            return None
        for a in _reads_of(n):
            v = self.values.get(a)
            data = not isinstance(self.refs.get(a, META), _Meta)
            if data and isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != value.dtype:
                return v.dtype
        return None

    def _emit_op(self, op: str, node: Node, inputs: list[str], shape: Shape, path: str) -> str:
        if node.type_name not in OP_PRODUCES[op]:
            raise TalonError(f"the exporter's functional op {op!r} made a {node.type_name} node but OP_PRODUCES declares "
                             f"{list(OP_PRODUCES[op])}: declare it there (talon primitives lists it)")
        return self._emit(op, node, inputs, shape, path)

    def _conversion(self, n: fx.Node, value: Any, label: str) -> None:
        """`.cpu()`, `.to(...)`, `.float()`, ...: the identity when they change neither dtype nor device (the
        usual case at inference), else refused: the IR computes in float32 on one device."""
        src = n.args[0] if n.args else None
        before = self.values.get(src) if isinstance(src, fx.Node) else None
        if not isinstance(value, torch.Tensor) or not isinstance(before, torch.Tensor) or not self._touches_data(n):
            self.refs[n] = META
            return
        if value.dtype == before.dtype and value.device == before.device:
            self.refs[n] = self._single(n, f"{label}{at(n)}")
            return
        if isinstance(src, fx.Node) and src.op == "placeholder" and value.dtype == torch.float32:
            # uint8 event frames, bool spikes: keeping the line is right; only the sample's dtype is in the way.
            raise UnsupportedModuleError(
                f"{label}(){at(n)} converts the input, a {before.dtype} sample, to float32; the IR's input is float32, "
                f"so export with a float32 sample, on which this line changes nothing: {self.api}(model, "
                "sample.float()), and feed the executor float32 inputs (x.float())")
        raise UnsupportedModuleError(
            f"{label}(){at(n)} converts a {before.dtype} tensor on {before.device} to {value.dtype} on {value.device}; the "
            "IR computes in float32 throughout, so the conversion has no IR equivalent. Remove it from forward (a "
            "conversion that changes nothing, e.g. .float() of a float32 tensor, is exported as the identity)")

    def _readout(self, ref: _State, model: nn.Module) -> str:
        """forward returns a neuron's state first: exact only as a readout neuron (a reset-free Leaky's
        membrane is an LI) whose spikes feed nothing."""
        name = ref.neuron
        module, ctx = self.neurons[name]
        users = [d for s, d in self.edges if s == name]
        if name in self.memoryless:
            raise unsupported(name, module, "forward returns its state, and restarts it on every call (no state argument in "
                              "forward's signature), so that state is just this call's input; return the spikes, or take "
                              "the state as an argument (forward(self, x, mem=None))", self.api, converter_hint=False)
        if users:
            raise unsupported(name, module, f"forward returns its state (output {ref.index}) first while its spikes also "
                              f"feed {users[0]!r}; an IR neuron outputs either spikes or (as a readout) its membrane", self.api,
                              converter_hint=False)
        node = self.snn_bridge.membrane_readout(module, ctx, ref.index)
        self.nodes[name] = node
        return name

    def _touches_data(self, n: fx.Node) -> bool:
        found: list[fx.Node] = []
        fx.node.map_arg([n.args, n.kwargs], found.append)
        return any(not isinstance(self.refs.get(a, META), _Meta) for a in found)

    def _single(self, n: fx.Node, where: str) -> str:
        inputs = self._data_inputs(n, n.args[:1], where)
        if len(inputs) != 1:
            raise UnsupportedModuleError(f"{where} is not applied to a tensor computed from the input")
        return inputs[0]

    def _getitem(self, n: fx.Node) -> None:
        src, index = n.args[0], n.args[1]
        ref = self.refs.get(src, META) if isinstance(src, fx.Node) else META
        if isinstance(ref, _NeuronTuple):
            self.refs[n] = ref.neuron if index == 0 else _State(ref.neuron, index)
        elif isinstance(ref, _Meta) and not (isinstance(self.values.get(n), torch.Tensor) and self._touches_data(n)):
            self.refs[n] = META
        else:
            forms = "the spike and states of a neuron's output tuple (`spk, mem = self.lif(cur, mem)`, `out[0]`)"
            if self.loop is None:
                forms += f", and one time step of the input inside a loop over time in forward: {STEP_FORMS}"
            else:
                forms += f", and one time step of the input per step of the loop: {STEP_FORMS}"
            raise UnsupportedModuleError(
                f"indexing `{index_expr(n)}`{at(n)} selects part of a tensor, which the IR cannot express (it has no "
                f"slice or select node). Supported indexing: {forms}. Do other slicing outside the model, or in a "
                f"module of its own converted through custom_map: {self.api}(model, sample, custom_map={{ModuleType: fn}})")

    def _output(self, result: Any, model: nn.Module) -> None:
        if result is _EMPTY:
            raise UnsupportedModuleError(f"{type(model).__name__}.forward returns an empty tuple")
        ref = self.refs.get(result, META) if isinstance(result, fx.Node) else META
        if isinstance(ref, _NeuronTuple):
            ref = ref.neuron
        if isinstance(ref, _State):
            ref = self._readout(ref, model)
        if not isinstance(ref, str):
            raise UnsupportedModuleError(f"the first value {type(model).__name__}.forward returns is not computed from its input")
        shape, _ = self.expected[ref]
        self.nodes["output"] = Output(shape=shape)
        self.edges.append((ref, "output"))
        self.expected["output"] = (shape, "output")

    def _finish(self) -> Graph:
        # Keep what the output depends on: state outputs and unused branches leave no nodes behind.
        preds: dict[str, list[str]] = {}
        for s, d in self.edges:
            preds.setdefault(d, []).append(s)
        keep, stack = {"input"}, ["output"]
        while stack:
            name = stack.pop()
            if name in keep and name != "input":
                continue
            keep.add(name)
            stack.extend(preds.get(name, ()))
        # A recurrent connection reaches the output only through its neuron, which the walk above covers.
        nodes = {k: v for k, v in self.nodes.items() if k in keep}
        edges = [(s, d) for s, d in self.edges if s in keep and d in keep]
        graph = Graph(nodes, edges, dt=self.dt, metadata={"exporter": "talon.bridge.to_ir"})
        graph.validate()
        for name, node in graph.nodes.items():
            want, path = self.expected[name]
            got = node.output_shapes[0] if node.output_shapes else None
            if got != want:
                raise GraphValidationError(
                    f"node {name!r} ({node.type_name}, from {path!r}) has IR output shape {got} but PyTorch produced {want}: "
                    "its converter does not reproduce the module"
                )
        return graph


_EMPTY = object()


def _functional_pool(op: str, n: fx.Node, in_shape: Shape, where: str) -> Node:
    """F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d: the IR node their nn module would give."""
    if op == "adaptive_avg_pool2d":
        kernel = _adaptive_avg_kernel(_arg(n, 1, "output_size"), in_shape)
        if isinstance(kernel, str):
            raise UnsupportedModuleError(f"{where}: {kernel}")
        return AvgPool2d(kernel_size=kernel, stride=kernel)
    if len(in_shape) != 3:
        raise UnsupportedModuleError(f"{where} expects a batched input (B, C, H, W), got a sample shape {in_shape}")
    kernel = _pair(_arg(n, 1, "kernel_size"))
    stride = _arg(n, 2, "stride", None)
    stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and not stride) else _pair(stride)
    padding = _pair(_arg(n, 3, "padding", 0))
    if op == "max_pool2d":
        if _arg(n, 6, "return_indices", False):
            raise UnsupportedModuleError(f"{where} with return_indices=True has no IR equivalent")
        return MaxPool2d(kernel_size=kernel, stride=stride, padding=padding, dilation=_pair(_arg(n, 4, "dilation", 1)),
                         ceil_mode=bool(_arg(n, 5, "ceil_mode", False)))
    if _arg(n, 6, "divisor_override", None) is not None:
        raise UnsupportedModuleError(f"{where} with divisor_override has no IR equivalent")
    return AvgPool2d(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(_arg(n, 4, "ceil_mode", False)),
                     count_include_pad=bool(_arg(n, 5, "count_include_pad", True)))


def _first_result(n: fx.Node) -> Any:
    """The first value an fx output node returns (tuples and namedtuples unpacked); _EMPTY for an empty tuple."""
    result = n.args[0]
    while isinstance(result, (tuple, list)) or is_namedtuple_of_result(result):
        if isinstance(result, fx.Node):
            result = namedtuple_items(result)
        if not result:
            return _EMPTY
        result = result[0]
    if isinstance(result, dict):
        raise UnsupportedModuleError("forward returns a dict; the graph's output is the first value forward returns, so "
                                     "return the output tensor itself or as the first item of a tuple")
    return result


def _reshape_as_flatten(src: Shape, dst: Shape) -> tuple[int, int] | None:
    """IR Flatten dims that turn sample shape `src` into `dst`, if the reshape is a flatten."""
    k = len(src) - len(dst)  # dimensions merged away
    if k < 1:
        return None
    for s in range(len(dst)):
        e = s + k
        if src[:s] == dst[:s] and src[e + 1:] == dst[s + 1:] and math.prod(src[s:e + 1]) == dst[s]:
            return s, (-1 if e == len(src) - 1 else e)
    return None


def to_ir(module: nn.Module, sample: torch.Tensor, custom_map: Mapping[Any, Converter] | None = None, *, spiking_input: bool = False) -> Graph:
    """Trace `module` with torch.fx on `sample` (batch first) and return the equivalent talon.ir.Graph.

    Node names are module paths (`fc1`, `features.0`), `input` and `output`, and op names for functional
    calls (`flatten`, `add`, `cat`, ...; made unique with `_1`, `_2`). The graph's output is the first value
    `forward` returns; neuron state outputs stay inside the IR neurons. Every forward argument after the
    first is fixed to its default, so `forward(x, mem=None)` runs `init_leaky()` eagerly. The model is left
    exactly as it was (train flags, buffers, neuron state).

    A time loop inside forward (`for step in range(num_steps)`, over a static input or `x[step]` of a
    (T, B, ...) sample, returning `torch.stack(rec, dim=0)` or the last step) is exported as one step, its
    length in `graph.metadata["num_steps"]`; stepping the executor that many times reproduces forward's
    record. Neuron state arguments the IR cannot carry are refused, never dropped (docs/bridge.md).

    `custom_map` maps a module path or module type to `fn(module, ctx: ExportContext)` returning a Node, a
    nested Graph, or a (neuron, recurrent connection) pair; it takes precedence over built-in converters.
    Raises UnsupportedModuleError naming the module path and type for anything the IR cannot express exactly
    (recurrent and attention layers included), and TalonUsageError for a sample that does not fit the model
    (naming the module and, where the layer fixes it, the expected against the given shape). A model that is
    itself one layer exports as one node named after its type in lower case (`linear`, `leaky`).

    `spiking_input=True` declares that the model is fed spikes (0/1 values, e.g. rate-coded pixels): the
    Input node gets `spikes=True`, and the layers it feeds are priced as event-driven (docs/cost_model.md).
    """
    graph = _export(module, sample, custom_map, "to_ir")
    return with_spike_inputs(graph) if spiking_input else graph


def export_to_ir(module: nn.Module, sample: torch.Tensor, custom_map: Mapping[Any, Converter] | None = None, *, spiking_input: bool = False) -> Graph:
    """snnTorch's name for `to_ir` (`from snntorch.export_talonir import export_to_ir`): the same export,
    `spiking_input` included; its error messages show calls to `export_to_ir`."""
    graph = _export(module, sample, custom_map, "export_to_ir")
    return with_spike_inputs(graph) if spiking_input else graph


def _export(module: nn.Module, sample: torch.Tensor, custom_map: Mapping[Any, Converter] | None, api: str) -> Graph:
    if not isinstance(module, nn.Module):
        raise TalonUsageError(f"{api} expects a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(sample, torch.Tensor) or sample.dim() < 1:
        raise TalonUsageError(f"{api} needs a sample tensor whose first dimension is the batch, e.g. torch.randn(1, 784)")
    if sample.dim() == 1:
        # (N,) would be N samples of nothing: almost always one sample missing its batch dimension
        raise TalonUsageError(f"{api}: the sample has shape {tuple(sample.shape)}, with no dimension after the batch; the sample "
                              f"must be batch-first: add the batch dimension, e.g. sample.unsqueeze(0) of shape {(1, *sample.shape)}")
    converters = _Converters(custom_map)
    _wrappers.check_wrapped(module, api, lambda path, m: converters.custom(path, m) is not None)
    snn_bridge = _snn_bridge()
    training = _training_layers(module)
    with _preserved(module):
        tracer = _Tracer(converters, snn_bridge, sample)
        # A model that is itself one layer is traced as a call of that layer (named after its type).
        root = _Root(type(module).__name__.lower(), module) if tracer.is_leaf_module(module, "") else module
        is_neuron = snn_bridge.is_neuron if snn_bridge is not None else (lambda m: False)
        before = _attr_state.attributes(root)
        try:
            with _state_writes.recording(root, tracer, is_neuron) as state_writes:
                fx_graph = tracer.trace(root, concrete_args=_concrete_args(root, api))
        except TalonError:
            raise
        except Exception as exc:  # fx raises TraceError, TypeError, NotImplementedError, ...
            raise UnsupportedModuleError(_trace_error(module, root, tracer, exc, api)) from exc
        _attr_state.check(root, before, is_neuron, api)
        if snn_bridge is not None:
            _state_args.check(root, _Tracer(converters, snn_bridge, sample), _concrete_args(root, api), is_neuron,
                              snn_bridge.state_index, api)
        gm = fx.GraphModule(tracer.root, fx_graph)
        for n in fx_graph.nodes:  # a layer nothing converts: say so before running anything
            if n.op == "call_module":
                sub = gm.get_submodule(str(n.target))
                if converters.find(str(n.target), sub) is None:
                    raise unsupported(str(n.target), sub, _no_converter_reason(sub), api)
        check_inplace(gm, is_neuron, api)
        recorder = _Recorder(gm)
        leaves = {}  # every module the traced graph calls, and what it calls inside (RLeaky's recurrent layer)
        for n in fx_graph.nodes:
            if n.op == "call_module":
                for sub_path, sub in gm.get_submodule(str(n.target)).named_modules(prefix=str(n.target)):
                    leaves.setdefault(sub_path, sub)
        try:
            with _hooks.watched(leaves) as hooks:
                output = recorder.run(sample)
        except Exception as exc:  # the user's sample does not fit the model: say so in TALON's terms
            if _runs_eagerly(module, sample):
                raise UnsupportedModuleError(_replay_error(module, sample, gm, recorder, exc, api)) from exc
            raise TalonUsageError(_sample_error(module, sample, gm, recorder, exc, api)) from exc
        if root is module:  # a single-layer model is a leaf: its hooks ran with the sample
            _hooks.call_model_hooks(hooks, module, sample, output)
        hooks.refuse(api)
        loop = _time_loop(gm, recorder.values, snn_bridge, api, converters)
        _state_writes.check(state_writes, gm, loop is not None, api)
        builder = _Builder(gm, recorder.values, converters, snn_bridge, api=api, loop=loop, takes_state=_takes_state(root))
        graph = builder.build(sample, module)
        _warn_training(training, graph, api)
        _warn_float64(module, sample, api)
        if loop is not None:
            graph.metadata["num_steps"] = loop.num_steps
            graph.metadata["time_loop"] = {"input": "indexed" if loop.step_inputs else "static",
                                           "output": "last" if loop.last_only else "stacked"}
            if loop.step_inputs:
                graph.metadata["time_loop"]["time_dim"] = loop.time_dim
            if loop.stack_dim:
                graph.metadata["time_loop"]["stack_dim"] = loop.stack_dim
        return graph


def _trace_error(model: nn.Module, root: nn.Module, tracer: _Tracer, exc: Exception, api: str) -> str:
    """What torch.fx could not trace: the module whose forward it was in, the user's line, fx's reason, and what to do."""
    path = tracer.failed_path
    if path:
        sub = root.get_submodule(path)
        where = f"the forward of module {path!r} ({type(sub).__name__})"
        leaf = f"{api}(model, sample, custom_map={{{type(sub).__name__}: fn}}) or custom_map={{{path!r}: fn}}"
    else:
        where = f"{type(model).__name__}.forward"
        leaf = f"{api}(model, sample, custom_map={{ModuleType: fn}})"
    line = exception_line(exc.__traceback__)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"torch.fx cannot trace {where}{f' at {line}' if line else ''}: {type(exc).__name__}: {reason}. The export "
            "traces forward with symbolic tensors, so Python code that needs a tensor's value (if/while on a tensor, "
            "int()/float()/.item()/.tolist(), iterating over a computed tensor, range() of a computed size) cannot run. "
            "Way forward: compute that outside the model (the sample's own sizes, x.shape / x.size(0) / len(x), are "
            f"concrete and fine), or put the code in a module of its own and give that module a converter, {leaf}, "
            "which makes it a leaf of the trace (docs/bridge.md, custom_map)")


def _runs_eagerly(model: nn.Module, sample: torch.Tensor) -> bool:
    """The model itself runs on the sample (state restored afterwards): a failure of the traced graph is the trace's."""
    try:
        with _preserved(model):
            model(sample)
    except Exception:  # noqa: BLE001 - any failure: the sample is at fault, reported as such
        return False
    return True


def _replay_error(model: nn.Module, sample: torch.Tensor, gm: fx.GraphModule, rec: _Recorder, exc: Exception, api: str) -> str:
    """The model runs on the sample, but the graph torch.fx recorded from it does not: a trace problem, not the sample's."""
    n = rec.failed
    if n is not None and n.op == "call_module":
        what = f"module {str(n.target)!r} ({type(gm.get_submodule(str(n.target))).__name__})"
    elif n is not None:
        what = f"{getattr(n.target, '__name__', str(n.target))}"
    else:
        what = "the traced graph"
    detail = str(exc).split("\n\nWhile executing")[0].strip().splitlines()
    cause = f"{type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")
    return (f"{api}: {type(model).__name__} runs on the sample {tuple(sample.shape)}, but the graph torch.fx traced from "
            f"its forward fails at {what}{at(n)}: {cause}. The trace froze a Python value that the real run computes "
            "(a tensor built from constants, a size read from something other than the input, a branch taken on a "
            "traced value); compute it from the input inside forward (torch.zeros_like(cur), x.size(0)), or put that "
            f"code in a module of its own converted through custom_map: {api}(model, sample, custom_map={{ModuleType: fn}})")


def _time_loop(gm: fx.GraphModule, values: dict[fx.Node, Any], snn_bridge: Any, api: str, converters: _Converters) -> TimeLoop | None:
    if snn_bridge is None:
        is_neuron, state_index = (lambda m: False), (lambda m, p: None)
    else:
        is_neuron, state_index = snn_bridge.is_neuron, snn_bridge.state_index

    def refuse(path: str, m: nn.Module, reason: str) -> UnsupportedModuleError:
        # A neuron its converter refuses anyway (snn.Alpha, inhibition=True): that is the reason to give.
        return _converter_refusal(gm, values, converters, path, m, api) or unsupported(path, m, reason, api, converter_hint=False)

    return find_time_loop(gm, values, is_neuron=is_neuron, state_index=state_index, unsupported=refuse)


def _converter_refusal(gm: fx.GraphModule, values: dict[fx.Node, Any], converters: _Converters, path: str, m: nn.Module,
                       api: str) -> UnsupportedModuleError | None:
    """The error the module's converter raises for it on its first call's shapes, if it refuses the module."""
    if converters.custom(path, m) is not None:
        return None  # the user's converter decides; it is not called twice
    conv = converter_for(m)
    call = next((n for n in gm.graph.nodes if n.op == "call_module" and str(n.target) == path), None)
    if conv is None or call is None:
        return None
    value = values.get(call)
    first = value[0] if isinstance(value, (tuple, list)) and value else value
    arg = values.get(call.args[0]) if call.args and isinstance(call.args[0], fx.Node) else None
    if not isinstance(first, torch.Tensor) or not isinstance(arg, torch.Tensor):
        return None
    ctx = ExportContext(path=path, input_shapes=(_shape_of(arg),), output_shape=_shape_of(first), dt=1.0, api=api)
    try:
        conv(m, ctx)
    except UnsupportedModuleError as exc:
        return exc
    except Exception:  # noqa: BLE001 - a converter that fails here fails again, with its own error, in the build
        return None
    return None


def _takes_state(root: nn.Module) -> bool:
    """forward has optional arguments after the input (`mem=None`): the caller can hand a state in."""
    params = list(inspect.signature(root.forward).parameters.values())[1:]
    return any(p.default is None for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


#: Layers whose training mode computes something other than the IR node (the inference form).
_TRAINING_FORMS: tuple[tuple[type, str], ...] = (
    (nn.modules.dropout._DropoutNd, "dropout zeroes activations at random; the IR Dropout is the identity"),
    (nn.modules.batchnorm._BatchNorm, "batch norm normalizes with the batch's own statistics; the IR BatchNorm uses the "
                                      "running statistics"),
)


def _training_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(path, what differs) of the layers left in training mode, read before the export puts the model in eval mode."""
    found = []
    for path, m in model.named_modules():
        if not m.training or (isinstance(m, nn.modules.dropout._DropoutNd) and m.p == 0):
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None:
            continue  # refused by its converter anyway
        for cls, why in _TRAINING_FORMS:
            if isinstance(m, cls):
                found.append((path or type(m).__name__.lower(), why))
    return found


def _warn_float64(model: nn.Module, sample: torch.Tensor, api: str) -> None:
    """The IR stores and computes float32: a float64 model or sample is rounded, which may move spikes."""
    wide = [name for name, t in list(model.named_parameters()) + list(model.named_buffers()) if t.dtype == torch.float64]
    if not wide and sample.dtype != torch.float64:
        return
    what = f"parameters such as {wide[0]!r}" if wide else "the sample"
    warnings.warn(
        f"{api}: the model computes in float64 ({what}), the IR in float32: weights and constants are rounded to "
        "float32, so spikes may differ from the float64 model where a membrane lands near the threshold. Export the "
        "float32 model (model.float(), sample.float()) to compare spike for spike", ExportWarning, stacklevel=4)


def _warn_training(layers: list[tuple[str, str]], graph: Graph, api: str) -> None:
    """One warning for the exported layers that compute differently in training mode than in the graph."""
    exported = [(p, why) for p, why in layers if p in graph.nodes]
    if exported:
        what = "; ".join(f"{p!r}: {why}" for p, why in exported)
        warnings.warn(
            f"{api}: layers left in training mode compute differently from the graph ({what}). The graph matches the "
            "model in eval mode: call model.eval() before comparing", ExportWarning, stacklevel=4)
