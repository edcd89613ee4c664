"""The converter contract, the converter registry, and the torch.nn module converters of the export.

Owns `ExportContext` (what a converter is told), `unsupported` (the error every refusal raises), the
`Converter`/`ConverterResult` types and the registry of converters by module type:
`register_converter(module_type, fn)`, through which the torch.nn layers below and the snnTorch neurons
(`talon.bridge.snntorch`) register exactly as a user's module type does (docs/bridge.md, "Registering a
converter"). `talon.bridge.export` (tracing, graph assembly) and `talon.bridge.snntorch` both build on
this module, which imports neither of them.
"""

from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from talon.errors import TalonError, TalonUsageError, UnsupportedModuleError
from talon.ir import (
    ELU, GELU, Affine, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, Flatten, Graph, LayerNorm, Linear,
    MaxPool2d, Node, PReLU, ReLU, Sigmoid, Skip, Softmax, Tanh, Upsample,
)

__all__ = ["ExportContext", "Converter", "ConverterResult", "unsupported", "register_converter", "unregister_converter",
           "converter_for", "declared_products", "producers_of", "undeclared_converters", "check_produced", "output_names", "MODULE_CONVERTERS"]

Shape = tuple[int, ...]
#: What a converter returns: one node; a nested Graph (a composite block); or (neuron, recurrent connection).
ConverterResult = Union[Node, Graph, tuple[Node, Node]]


@dataclass(frozen=True)
class ExportContext:
    """What a converter knows about the module it converts. Shapes exclude the batch dimension.

    `path` is the module's path in the model (also the IR node's name); `input_shapes` are the traced
    shapes of its data inputs, in order; `output_shape` is the traced shape of its (first) output: for a
    neuron, the neuron shape that per-neuron parameters are broadcast to.
    """

    path: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    dt: float = 1.0
    #: The export function the user called ("to_ir" or "export_to_ir"): error messages show that call.
    api: str = "to_ir"

    @property
    def input_shape(self) -> Shape | None:
        return self.input_shapes[0] if self.input_shapes else None

    def unsupported(self, module: Any, reason: str, *, converter_hint: bool = True) -> UnsupportedModuleError:
        """The error a converter raises for a module (or a setting of it) the IR cannot express exactly;
        `converter_hint=False` leaves out the custom_map advice where a converter would not help."""
        return unsupported(self.path, module, reason, self.api, converter_hint=converter_hint)


Converter = Callable[[nn.Module, ExportContext], ConverterResult]


def unsupported(path: str, module: Any, reason: str, api: str = "to_ir", *, converter_hint: bool = True) -> UnsupportedModuleError:
    """The error for module `path` that cannot be exported; `api` is the function the user called.
    `converter_hint=False` for how a module is used (called twice, its state), which no converter changes."""
    t = type(module)
    if not converter_hint:
        return UnsupportedModuleError(f"cannot export module {path!r} ({t.__module__}.{t.__qualname__}): {reason}")
    return UnsupportedModuleError(
        f"cannot export module {path!r} ({t.__module__}.{t.__qualname__}): {reason}. "
        f"To export it anyway, pass a converter: {api}(model, sample, custom_map={{{t.__name__}: fn}}) "
        f"or custom_map={{{path!r}: fn}}, where fn(module, ctx) returns a talon.ir Node; or, for every export, "
        f"talon.bridge.converters.register_converter({t.__name__}, fn) (see docs/bridge.md)"
    )


# --------------------------------------------------------------------------------------------------
# The registry: one converter per module type, matched exactly (a subclass may change forward, so it
# needs its own registration or a custom_map entry)
# --------------------------------------------------------------------------------------------------

#: Module type -> its converter. Read it through converter_for and change it through register_converter.
MODULE_CONVERTERS: dict[type, Converter] = {}
#: Module type -> the IR type names its registered converter may return (declared with `produces=`).
_PRODUCES: dict[type, tuple[str, ...]] = {}
#: Module type -> the names of what its forward returns (declared with `outputs=`).
_OUTPUT_NAMES: dict[type, tuple[str, ...]] = {}
#: Dotted class name -> (converter, produces, outputs, replace), until that class's library is imported.
_PENDING: dict[str, tuple[Converter, tuple[str, ...] | None, tuple[str, ...] | None, bool]] = {}


def register_converter(module_type: type | str, converter: Converter | None = None, *, replace: bool = False,
                       produces: Iterable[str] | None = None, outputs: Iterable[str] | None = None) -> Any:
    """Make `converter(module, ctx) -> Node | Graph | (neuron, recurrent)` how `to_ir` exports modules of
    exactly `module_type` (subclasses are not matched: they may change forward). Usable as a decorator
    (`@register_converter(MyModule)`). A per-call `custom_map` entry still takes precedence. Returns `converter`.

    `module_type` may be a dotted name instead of the class ("snntorch.Alpha": its public alias, or its
    defining `__module__.__qualname__`), so that a module can register a converter without importing the
    library: the name is resolved with importlib, to exactly one class, once that library's top-level package
    is in sys.modules (at once when it already is); a name that then resolves to no nn.Module subclass raises.

    `produces` names the IR types the converter may return (a recurrent pair's two nodes included): `talon
    primitives` lists the module types that produce each primitive from these declarations, and an export
    whose converter returns an undeclared type stops with a TalonError naming it, so a declaration cannot
    drift from its converter. A converter registered without one is listed as undeclared. `outputs` names
    what a stateful module's forward returns, in order (e.g. ("spk", "mem")): the export carries a state
    argument over when its forward takes back the output of that name."""
    declared = None if produces is None else tuple(produces)
    what = module_type if isinstance(module_type, str) else getattr(module_type, "__qualname__", module_type)
    if declared is not None and (isinstance(produces, str) or not all(isinstance(t, str) and t for t in declared)):
        raise TalonUsageError(f"register_converter({what}, produces=...) needs IR type names, got {produces!r}")
    names = None if outputs is None else tuple(outputs)
    if names is not None and (isinstance(outputs, str) or not all(isinstance(t, str) and t for t in names)):
        raise TalonUsageError(f"register_converter({what}, outputs=...) needs output names, got {outputs!r}")
    if isinstance(module_type, str):
        parts = module_type.split(".")
        if len(parts) < 2 or not all(p.isidentifier() for p in parts):
            raise TalonUsageError(f"register_converter({module_type!r}, ...) needs a dotted class name such as 'snntorch.Alpha'")
    elif not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TalonUsageError(f"register_converter needs an nn.Module subclass or its dotted name, got {module_type!r}")

    def add(fn: Converter) -> Converter:
        if not callable(fn):
            raise TalonUsageError(f"the converter for {what} must be callable(module, ctx), got {fn!r}")
        if isinstance(module_type, str):
            _PENDING[module_type] = (fn, declared, names, replace)
            _resolve_pending()
            return fn
        _add(module_type, fn, declared, names, replace)
        return fn

    return add if converter is None else add(converter)


def _add(module_type: type, fn: Converter, declared: tuple[str, ...] | None, names: tuple[str, ...] | None,
         replace: bool) -> None:
    if not replace and MODULE_CONVERTERS.get(module_type, fn) is not fn:
        raise TalonUsageError(f"a converter for {module_type.__module__}.{module_type.__qualname__} is already registered "
                              "(pass replace=True, or a custom_map entry for one export)")
    MODULE_CONVERTERS[module_type] = fn
    for table, value in ((_PRODUCES, declared), (_OUTPUT_NAMES, names)):
        if value is None:
            table.pop(module_type, None)
        else:
            table[module_type] = value


def _resolve_name(name: str) -> type:
    """The one class a dotted name names: every split into an importable module and an attribute path is
    tried; they must agree on one nn.Module subclass (its public alias and its home name do)."""
    parts = name.split(".")
    found: set[type] = set()
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        if isinstance(obj, type):
            found.add(obj)
    classes = [c for c in found if issubclass(c, nn.Module)]
    if len(classes) != 1 or len(found) != 1:
        got = ", ".join(sorted(f"{c.__module__}.{c.__qualname__}" for c in found)) or "nothing"
        raise TalonUsageError(f"register_converter({name!r}, ...): the name must resolve to exactly one nn.Module "
                              f"subclass, and resolves to {got}: name the class as '<package>.<Class>'")
    return classes[0]


def _resolve_pending() -> None:
    """Bind the converters registered by name whose library is now imported (the registry's readers call this)."""
    for name in [n for n in _PENDING if n.split(".", 1)[0] in sys.modules]:
        fn, declared, names, replace = _PENDING.pop(name)
        _add(_resolve_name(name), fn, declared, names, replace)


def unregister_converter(module_type: type | str) -> None:
    """Remove the converter of `module_type` (a class or a name registered lazily; a no-op when there is none)."""
    if isinstance(module_type, str):
        _PENDING.pop(module_type, None)
        if module_type.split(".", 1)[0] not in sys.modules:
            return
        module_type = _resolve_name(module_type)
    MODULE_CONVERTERS.pop(module_type, None)
    _PRODUCES.pop(module_type, None)
    _OUTPUT_NAMES.pop(module_type, None)


def registered_type(module: nn.Module) -> type:
    """The type a module's converter is registered under: its own, except for a module that
    torch.nn.utils.parametrize (parametrizations.weight_norm, spectral_norm, ...) re-classed as
    `Parametrized<Class>`, a subclass that only computes the parametrized tensors on access and keeps the
    forward of `<Class>`, whose converter then reads those tensors."""
    t = type(module)
    if t not in MODULE_CONVERTERS and parametrize.is_parametrized(module) and t.__module__ == parametrize.__name__:
        return t.__bases__[0]
    return t


def converter_for(module: nn.Module) -> Converter | None:
    """The converter registered for `type(module)` exactly (a parametrized module: its original class), or None."""
    _resolve_pending()
    return MODULE_CONVERTERS.get(registered_type(module))


def output_names(module_type: type) -> tuple[str, ...] | None:
    """What the forward of `module_type` returns, by name, as its converter's registration declared (None: undeclared)."""
    _resolve_pending()
    return _OUTPUT_NAMES.get(module_type)


def declared_products(module_type: type) -> tuple[str, ...] | None:
    """The IR types the registered converter of `module_type` declared it produces (None: undeclared)."""
    _resolve_pending()
    return _PRODUCES.get(module_type)


def producers_of(type_name: str) -> list[type]:
    """The module types whose registered converter declares that it produces `type_name`."""
    _resolve_pending()
    return [t for t, names in _PRODUCES.items() if type_name in names and t in MODULE_CONVERTERS]


def undeclared_converters() -> list[type]:
    """The module types with a registered converter that declares nothing it produces."""
    _resolve_pending()
    return [t for t in MODULE_CONVERTERS if t not in _PRODUCES]


def check_produced(module: nn.Module, path: str, result: Any) -> None:
    """Stop when the registered converter of `type(module)` returned an IR type it did not declare."""
    _resolve_pending()
    declared = _PRODUCES.get(registered_type(module))
    if declared is None:
        return
    nodes = result if isinstance(result, tuple) else (result,)
    wrong = [n.type_name for n in nodes if isinstance(n, Node) and n.type_name not in declared]
    if wrong:
        t = type(module)
        raise TalonError(
            f"the converter registered for {t.__module__}.{t.__qualname__} returned {', '.join(wrong)} for module {path!r}, "
            f"but declared produces={list(declared)}: add the type to its register_converter(..., produces=...) call"
        )


# --------------------------------------------------------------------------------------------------
# torch.nn module converters
# --------------------------------------------------------------------------------------------------

def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _features(ctx: ExportContext) -> int:
    return int(math.prod(ctx.output_shape))


def _linear(m: nn.Linear, ctx: ExportContext) -> Node:
    if m.bias is None:
        return Linear(weight=_f32(m.weight))
    return Affine(weight=_f32(m.weight), bias=_f32(m.bias))


def _conv_padding(m: nn.Module, ctx: ExportContext, ndim: int) -> tuple[int, ...]:
    if m.padding_mode != "zeros":
        raise ctx.unsupported(m, f"padding_mode={m.padding_mode!r}: the IR convolutions pad with zeros only")
    if m.padding == "valid":
        return (0,) * ndim
    if m.padding == "same":
        pads = []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            if total % 2:
                # PyTorch pads the extra element on the right only; IR padding is symmetric.
                raise ctx.unsupported(m, f"padding='same' with kernel {m.kernel_size} and dilation {m.dilation} pads asymmetrically")
            pads.append(total // 2)
        return tuple(pads)
    return tuple(int(p) for p in m.padding)


def _conv_bias(m: nn.Module) -> np.ndarray:
    return _f32(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float32)


def _conv1d(m: nn.Conv1d, ctx: ExportContext) -> Node:
    (pad,) = _conv_padding(m, ctx, 1)
    return Conv1d(weight=_f32(m.weight), bias=_conv_bias(m), stride=m.stride[0], padding=pad,
                  dilation=m.dilation[0], groups=m.groups)


def _conv2d(m: nn.Conv2d, ctx: ExportContext) -> Node:
    return Conv2d(weight=_f32(m.weight), bias=_conv_bias(m), stride=tuple(m.stride), padding=_conv_padding(m, ctx, 2),
                  dilation=tuple(m.dilation), groups=m.groups)


def _maxpool2d(m: nn.MaxPool2d, ctx: ExportContext) -> Node:
    if m.return_indices:
        raise ctx.unsupported(m, "return_indices=True has no IR equivalent")
    return MaxPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride if m.stride is not None else m.kernel_size),
                     padding=_pair(m.padding), dilation=_pair(m.dilation), ceil_mode=bool(m.ceil_mode))


def _avgpool2d(m: nn.AvgPool2d, ctx: ExportContext) -> Node:
    if m.divisor_override is not None:
        raise ctx.unsupported(m, "divisor_override has no IR equivalent")
    return AvgPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride if m.stride is not None else m.kernel_size),
                     padding=_pair(m.padding), ceil_mode=bool(m.ceil_mode), count_include_pad=bool(m.count_include_pad))


def _adaptive_avg_kernel(output_size: Any, in_shape: Shape) -> tuple[int, int] | str:
    """The AvgPool2d kernel (= stride) that computes adaptive average pooling to `output_size` exactly,
    or the reason there is none."""
    if len(in_shape) != 3:
        return f"it expects an input (C, H, W), got {in_shape}"
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    out = tuple(in_shape[1 + i] if o is None else int(o) for i, o in enumerate(size))
    h, w = in_shape[1], in_shape[2]
    if h % out[0] or w % out[1]:
        return (f"output size {out} does not divide the input {(h, w)}: its windows overlap or differ in size, which "
                "AvgPool2d cannot express")
    if out == (1, 1) and h * w > 1:
        return ("output size (1, 1) is a global mean, which torch sums in another order than AvgPool2d (results differ "
                "in the last bit); use nn.AvgPool2d(kernel_size=(H, W)) or x.mean via a custom_map converter")
    return h // out[0], w // out[1]


def _adaptive_avgpool2d(m: nn.AdaptiveAvgPool2d, ctx: ExportContext) -> Node:
    kernel = _adaptive_avg_kernel(m.output_size, ctx.input_shape)
    if isinstance(kernel, str):
        raise ctx.unsupported(m, kernel)
    return AvgPool2d(kernel_size=kernel, stride=kernel)


def _flatten_dims(start: int, end: int, full_rank: int) -> tuple[int, int] | None:
    """IR (batch-free) dims for flattening full-tensor dims start..end, or None if the batch dim is touched."""
    s = start + full_rank if start < 0 else start
    e = end + full_rank if end < 0 else end
    if s < 1 or e < s:
        return None
    return s - 1, (-1 if e == full_rank - 1 else e - 1)


def _flatten(m: nn.Flatten, ctx: ExportContext) -> Node:
    dims = _flatten_dims(m.start_dim, m.end_dim, len(ctx.input_shape) + 1)
    if dims is None:
        raise ctx.unsupported(m, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) merges the batch dimension")
    return Flatten(start_dim=dims[0], end_dim=dims[1])


def _upsample(m: nn.Upsample, ctx: ExportContext) -> Node:
    if m.mode not in ("nearest", "bilinear"):
        raise ctx.unsupported(m, f"mode={m.mode!r}: the IR Upsample supports 'nearest' and 'bilinear'")
    if m.size is not None:
        # scale_factor keeps its default: the IR field is not optional, and `size` wins when set.
        return Upsample(size=_pair(m.size), mode=m.mode, align_corners=bool(m.align_corners))
    f = m.scale_factor
    if isinstance(f, (tuple, list)):
        if len(set(f)) != 1:
            raise ctx.unsupported(m, f"scale_factor={f}: the IR Upsample takes one factor for both axes")
        f = f[0]
    return Upsample(scale_factor=f, mode=m.mode, align_corners=bool(m.align_corners))


def _softmax_dim(dim: int | None, full_rank: int) -> int | None:
    if dim is None:  # torch's legacy implicit choice
        dim = 0 if full_rank in (0, 1, 3) else 1
    d = dim + full_rank if dim < 0 else dim
    return None if d < 1 else (dim if dim < 0 else dim - 1)


def _softmax(m: nn.Softmax, ctx: ExportContext) -> Node:
    d = _softmax_dim(m.dim, len(ctx.input_shape) + 1)
    if d is None:
        raise ctx.unsupported(m, f"Softmax(dim={m.dim}) normalizes across the batch")
    return Softmax(dim=d, features=_features(ctx))


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, ctx: ExportContext) -> Node:
    if m.running_mean is None or m.running_var is None:
        raise ctx.unsupported(m, "track_running_stats=False normalizes with batch statistics; the IR BatchNorm is the inference form")
    n = m.num_features
    weight = _f32(m.weight) if m.weight is not None else np.ones(n, np.float32)
    bias = _f32(m.bias) if m.bias is not None else np.zeros(n, np.float32)
    cls = BatchNorm2d if isinstance(m, nn.BatchNorm2d) else BatchNorm1d
    return cls(num_features=n, weight=weight, bias=bias, running_mean=_f32(m.running_mean), running_var=_f32(m.running_var),
               eps=float(m.eps), momentum=float(m.momentum if m.momentum is not None else 0.1))


def _layernorm(m: nn.LayerNorm, ctx: ExportContext) -> Node:
    shape = tuple(m.normalized_shape)
    weight = _f32(m.weight) if m.weight is not None else np.ones(shape, np.float32)
    bias = _f32(m.bias) if m.bias is not None else np.zeros(shape, np.float32)
    return LayerNorm(normalized_shape=shape, weight=weight, bias=bias, eps=float(m.eps))


def _gelu(m: nn.GELU, ctx: ExportContext) -> Node:
    return GELU(approximate=m.approximate == "tanh", features=_features(ctx))


# Each torch.nn converter with the IR types it returns (every branch of it), through the call a user makes.
register_converter(nn.Linear, _linear, produces=("Linear", "Affine"))
register_converter(nn.Conv1d, _conv1d, produces=("Conv1d",))
register_converter(nn.Conv2d, _conv2d, produces=("Conv2d",))
register_converter(nn.MaxPool2d, _maxpool2d, produces=("MaxPool2d",))
register_converter(nn.AvgPool2d, _avgpool2d, produces=("AvgPool2d",))
register_converter(nn.AdaptiveAvgPool2d, _adaptive_avgpool2d, produces=("AvgPool2d",))
register_converter(nn.Flatten, _flatten, produces=("Flatten",))
register_converter(nn.Upsample, _upsample, produces=("Upsample",))
register_converter(nn.Identity, lambda m, ctx: Skip(skip_type="passthrough"), produces=("Skip",))
register_converter(nn.Dropout, lambda m, ctx: Dropout(p=float(m.p), features=_features(ctx)), produces=("Dropout",))
register_converter(nn.ReLU, lambda m, ctx: ReLU(features=_features(ctx)), produces=("ReLU",))
register_converter(nn.LeakyReLU, lambda m, ctx: ReLU(negative_slope=float(m.negative_slope), features=_features(ctx)), produces=("ReLU",))
register_converter(nn.Sigmoid, lambda m, ctx: Sigmoid(features=_features(ctx)), produces=("Sigmoid",))
register_converter(nn.Tanh, lambda m, ctx: Tanh(features=_features(ctx)), produces=("Tanh",))
register_converter(nn.Softmax, _softmax, produces=("Softmax",))
register_converter(nn.GELU, _gelu, produces=("GELU",))
register_converter(nn.ELU, lambda m, ctx: ELU(alpha=float(m.alpha), features=_features(ctx)), produces=("ELU",))
register_converter(nn.PReLU, lambda m, ctx: PReLU(weight=_f32(m.weight).reshape(-1), features=_features(ctx)), produces=("PReLU",))
register_converter(nn.BatchNorm1d, _batchnorm, produces=("BatchNorm1d",))
register_converter(nn.BatchNorm2d, _batchnorm, produces=("BatchNorm2d",))
register_converter(nn.LayerNorm, _layernorm, produces=("LayerNorm",))
