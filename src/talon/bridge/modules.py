"""The runtime of every IR primitive: exactly one torch implementation each, and their registry.

This module owns what each primitive *computes*. The executors (executor.py) only decide when and on
what; the CPU backend reuses these same modules with instrumentation. Nothing here may duplicate math
that lives elsewhere: a change to a primitive's numerics is a change to this file only.

Runtime protocol (what a builder must return):

* stateless: an ``nn.Module`` whose ``forward(*inputs)`` takes the node's inputs in edge order, each
  batch-first ``(B, *sample_shape)``, and returns one tensor, or a tuple of tensors for a node with
  several outputs (ChannelSplit). It must treat dimension 0 as an arbitrary batch: multi-step execution
  applies it once to a ``(T*B, ...)`` tensor.
* stateful: a ``StatefulRuntime`` (or any module with ``init_state`` and ``step``):
  ``init_state(inputs) -> state`` builds the zero state from the first inputs seen (batch, device and
  dtype come from them); ``step(inputs, state) -> (output, new_state)`` advances one timestep without
  modifying ``state`` (old states stay valid, so a caller may resume from any returned state).

Neuron numerics follow src/talon/ir/primitives/neurons.py exactly, in float32, in the op order that
reproduces snnTorch bit for bit (see docs/runtime.md): constants are computed in float64 from the stored
fields and cast once; inputs are added one by one in edge order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talon.bridge._carry import Carried, owned_by
from talon.bridge.converters import register_converter
from talon.errors import BackendError, TalonUsageError
from talon.ir import primitives as P
from talon.ir.node import Node
from talon.ir.primitives.neurons import ALIF as ALIFNode
from talon.ir.primitives.neurons import DECAYS

State = Any  # a tuple of tensors for primitives, a dict for nested graphs


@dataclass
class RuntimeContext:
    """What a builder may need beyond the node: its (qualified) name, the graph's dt, user overrides."""

    name: str
    dt: float = 1.0
    node_map: dict[str, Any] = field(default_factory=dict)


RuntimeBuilder = Callable[[Node, RuntimeContext], nn.Module]

#: type name -> builder(node, ctx) returning the node's runtime module.
RUNTIME_BUILDERS: dict[str, RuntimeBuilder] = {}


def register_runtime(type_name: str, builder: RuntimeBuilder | None = None, *, replace: bool = False) -> Any:
    """Register `builder(node, ctx) -> nn.Module` as the runtime of primitive `type_name`.

    Usable as a decorator. Registering a second builder for a name is an error unless `replace=True`.
    """

    def decorate(b: RuntimeBuilder) -> RuntimeBuilder:
        if not callable(b):
            raise TalonUsageError(f"register_runtime expects a callable builder, got {b!r}")
        if type_name in RUNTIME_BUILDERS and RUNTIME_BUILDERS[type_name] is not b and not replace:
            raise TalonUsageError(f"a runtime for {type_name!r} is already registered; pass replace=True to override it")
        RUNTIME_BUILDERS[type_name] = b
        return b

    return decorate(builder) if builder is not None else decorate


def build_runtime(node: Node, ctx: RuntimeContext) -> nn.Module:
    """The runtime module of `node`: a user override from ctx.node_map, else the registered builder.

    node_map keys are node names (qualified as "outer/inner" inside nested graphs) or type names; a name
    wins over a type. Values are ready ``nn.Module`` instances or builders ``(node, ctx) -> nn.Module``.
    """
    override = ctx.node_map.get(ctx.name, ctx.node_map.get(node.type_name))
    if override is not None:
        module = override if isinstance(override, nn.Module) else override(node, ctx)
    else:
        builder = RUNTIME_BUILDERS.get(node.type_name)
        if builder is None:
            raise BackendError(
                f"node {ctx.name!r} ({node.type_name}) has no runtime: register one with "
                f"talon.bridge.register_runtime({node.type_name!r}, builder) or pass node_map={{{ctx.name!r}: module}}"
            )
        module = builder(node, ctx)
    if not isinstance(module, nn.Module):
        raise BackendError(f"the runtime built for node {ctx.name!r} ({node.type_name}) is a {type(module).__name__}, not a torch.nn.Module")
    return module


def is_stateful(module: nn.Module) -> bool:
    return callable(getattr(module, "init_state", None)) and callable(getattr(module, "step", None))


# -- helpers ---------------------------------------------------------------------------------------


def _param(arr: np.ndarray | None) -> nn.Parameter | None:
    """Weights become frozen float32 Parameters: listed by .parameters(), moved by .to(), untracked."""
    if arr is None:
        return None
    return nn.Parameter(torch.tensor(np.asarray(arr, dtype=np.float32)), requires_grad=False)


def _const(module: nn.Module, name: str, value64: np.ndarray | float | None) -> None:
    """Set a per-neuron constant, given in float64, cast once to float32.

    An array whose entries are all equal becomes a Python float holding that exact float32 value (a
    scalar operand gives the same float32 result and costs less); otherwise a buffer (moved by .to()).
    None stays None, meaning "skip this term".
    """
    if value64 is None:
        setattr(module, name, None)
        setattr(module, "_op_" + name, None)
        return
    arr = np.asarray(value64, dtype=np.float64).astype(np.float32)
    if arr.size == 0:
        raise BackendError(f"{type(module).__name__}.{name} is empty")
    flat = arr.reshape(-1)
    if np.all(flat == flat[0]) and not np.isnan(flat[0]):
        setattr(module, name, float(flat[0]))
        op = torch.tensor(flat[0])
    else:
        op = torch.from_numpy(np.ascontiguousarray(arr))
        module.register_buffer(name, op, persistent=True)
        op = op.clone()
    # The tensor operand of the same value, "_op_<name>": a 0-d tensor costs a fraction of a Python float
    # operand per op (no scalar wrapped and converted on every call) and rounds identically, since both are
    # the same float32 value. Not persistent: state_dict keeps its fields; .to()/.double() move it.
    module.register_buffer("_op_" + name, op, persistent=False)


def _unit_or(value64: np.ndarray | float) -> np.ndarray | None:
    """None when a gain is exactly 1 in float32 everywhere (multiplying by 1.0 is exact: skip it)."""
    arr = np.asarray(value64, dtype=np.float64)
    return None if np.all(arr.astype(np.float32) == 1.0) else arr


def _zero_or(value64: np.ndarray) -> np.ndarray | None:
    """None when an additive term is 0 everywhere (adding +0.0 changes nothing but costs a pass)."""
    arr = np.asarray(value64, dtype=np.float64)
    return None if np.all(arr.astype(np.float32) == 0.0) else arr


def _sample_dim(dim: int) -> int:
    """IR dims count sample dimensions; runtime tensors carry a leading batch dimension."""
    return dim + 1 if dim >= 0 else dim


# -- stateless primitives --------------------------------------------------------------------------


class Identity(nn.Module):
    """Output, Dropout (inference), HybridRegion, Skip(passthrough)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class AffineRuntime(nn.Module):
    """Affine / Linear / SpikingAffine (float mode): y = x W^T + b via F.linear, as nn.Linear does."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        super().__init__()
        self.weight = _param(weight)
        self.bias = _param(bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class ScaleRuntime(nn.Module):
    """y = x * scale (the operand order of snnTorch's RecurrentOneToOne; IEEE multiplication commutes)."""

    def __init__(self, scale: np.ndarray) -> None:
        super().__init__()
        self.scale = _param(scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class ConvRuntime(nn.Module):
    """Conv1d / Conv2d / SConv / SDConv through F.conv1d / F.conv2d (zero padding), as nn.ConvNd."""

    def __init__(self, node: Node, dims: int) -> None:
        super().__init__()
        self.weight = _param(node.weight)
        self.bias = _param(node.bias)
        self.stride, self.padding, self.dilation, self.groups = node.stride, node.padding, node.dilation, node.groups
        self.conv = F.conv1d if dims == 1 else F.conv2d

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class SepConv2dRuntime(nn.Module):
    """Depthwise conv (groups = C, with stride/padding/dilation) then a pointwise 1x1 conv."""

    def __init__(self, node: P.SepConv2d) -> None:
        super().__init__()
        self.dw_weight, self.dw_bias = _param(node.depthwise_weight), _param(node.depthwise_bias)
        self.pw_weight, self.pw_bias = _param(node.pointwise_weight), _param(node.pointwise_bias)
        self.stride, self.padding, self.dilation = node.stride, node.padding, node.dilation
        self.channels = int(node.depthwise_weight.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(x, self.dw_weight, self.dw_bias, self.stride, self.padding, self.dilation, self.channels)
        return F.conv2d(y, self.pw_weight, self.pw_bias)


class FunctionRuntime(nn.Module):
    """A stateless primitive that is one torch function of its inputs with fixed keyword arguments."""

    def __init__(self, fn: Callable[..., Tensor], label: str, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.label, self.kwargs = fn, label, kwargs

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.fn(*inputs, **self.kwargs)

    def extra_repr(self) -> str:
        return f"{self.label}, {self.kwargs}"


def _sum_pool2d(x: Tensor, kernel_size: tuple, stride: tuple, padding: tuple) -> Tensor:
    # divisor_override=1 turns the window average into the plain window sum, zero padding included,
    # with no count_include_pad correction to undo.
    return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=1)


def _residual(*inputs: Tensor) -> Tensor:
    out = inputs[0]
    for x in inputs[1:]:  # edge order fixes the float addition order
        out = out + x
    return out


def _concat(*inputs: Tensor, dim: int) -> Tensor:
    return torch.cat(inputs, dim=dim)


def _threshold(x: Tensor, threshold: Any) -> Tensor:
    return torch.gt(x, threshold).to(x.dtype)


class ThresholdRuntime(nn.Module):
    """Stateless spike generator s = (x > v_threshold) as 1.0 / 0.0."""

    def __init__(self, node: P.Threshold) -> None:
        super().__init__()
        _const(self, "v_threshold", node.v_threshold)

    def forward(self, x: Tensor) -> Tensor:
        return _threshold(x, self.v_threshold)


class ChannelSplitRuntime(nn.Module):
    """Chunks along `dim`; the executor sends chunk k along the node's k-th outgoing edge."""

    def __init__(self, node: P.ChannelSplit) -> None:
        super().__init__()
        self.sections, self.dim = list(node.split_sections), _sample_dim(node.dim)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return torch.split(x, self.sections, dim=self.dim)


class BatchNormRuntime(nn.Module):
    """Inference batch norm with running statistics (F.batch_norm, training=False), as nn.BatchNormNd.eval()."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.weight, self.bias = _param(node.weight), _param(node.bias)
        self.register_buffer("running_mean", torch.tensor(np.asarray(node.running_mean, dtype=np.float32)))
        self.register_buffer("running_var", torch.tensor(np.asarray(node.running_var, dtype=np.float32)))
        self.eps, self.momentum = node.eps, node.momentum

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, self.momentum, self.eps)


class LayerNormRuntime(nn.Module):
    def __init__(self, node: P.LayerNorm) -> None:
        super().__init__()
        self.shape = tuple(node.normalized_shape)
        self.weight, self.bias, self.eps = _param(node.weight), _param(node.bias), node.eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


class PReLURuntime(nn.Module):
    """F.prelu: one slope, or one per channel on dimension 1 of the batched input."""

    def __init__(self, node: P.PReLU) -> None:
        super().__init__()
        self.weight = _param(node.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)


class NearestUpsampleRuntime(nn.Module):
    """Upsample(nearest) reading the source pixels F.interpolate reads for float32 input, at every dtype.

    torch computes the nearest-neighbour scale in the input's precision, so a float64 run (the
    fixed-point simulation) can read another source row than a float32 one (2x2 -> 82x82: output row
    41). The pixel map is taken once per input size from F.interpolate on float32 lines of row and
    column indices and applied with a gather: identical to F.interpolate for
    float32, the same pixels for every other dtype, and the table the FPGA kernel uses (`pixel_map`).
    """

    def __init__(self, size: tuple[int, int] | None, scale_factor: float | None) -> None:
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self._maps: dict[tuple[int, int, torch.device], Tensor] = {}

    def pixel_map(self, h: int, w: int) -> Tensor:
        """Flat source index (row * w + col) of every output pixel, shape (H_out, W_out), int64."""
        return self._axis_map(h, 0)[:, None] * w + self._axis_map(w, 1)[None, :]

    def _axis_map(self, n: int, axis: int) -> Tensor:
        # Nearest is separable and torch applies the same per-axis rule in 1-D, so each axis is mapped on
        # a line of its own indices: exact in float32 up to 2**24 pixels per axis, not per image.
        kw: dict[str, Any] = {"size": self.size[axis]} if self.size is not None else {"scale_factor": self.scale_factor}
        line = torch.arange(n, dtype=torch.float32).reshape(1, 1, n)
        return F.interpolate(line, mode="nearest", **kw)[0, 0].to(torch.int64)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        key = (h, w, x.device)
        index = self._maps.get(key)
        if index is None:
            index = self._maps[key] = self.pixel_map(h, w).to(x.device)
        return x.flatten(-2)[..., index.reshape(-1)].reshape(*x.shape[:-2], *index.shape)


def _upsample(node: P.Upsample, ctx: RuntimeContext) -> nn.Module:
    size = tuple(node.size) if node.size is not None else None
    scale = float(node.scale_factor) if size is None else None
    if node.mode == "nearest":
        return NearestUpsampleRuntime(size, scale)
    return FunctionRuntime(F.interpolate, "Upsample", mode=node.mode, size=size, scale_factor=scale, align_corners=node.align_corners)


def _flatten(x: Tensor, start_dim: int, end_dim: int) -> Tensor:
    return torch.flatten(x, start_dim, end_dim)


def _skip(node: P.Skip, ctx: RuntimeContext) -> nn.Module:
    if node.skip_type == "passthrough":
        return Identity()
    if node.skip_type == "residual":
        return FunctionRuntime(_residual, "Skip(residual)")
    return FunctionRuntime(_concat, "Skip(concatenate)", dim=1)


def _relu(node: P.ReLU, ctx: RuntimeContext) -> nn.Module:
    if node.negative_slope == 0.0:
        return FunctionRuntime(F.relu, "ReLU")
    return FunctionRuntime(F.leaky_relu, "ReLU", negative_slope=node.negative_slope)


def _unsupported(node: Node, ctx: RuntimeContext) -> nn.Module:
    raise BackendError(
        f"node {ctx.name!r} ({node.type_name}) is an existing-SDK detection block that TALON stores but cannot run; "
        f"register a runtime with talon.bridge.register_runtime({node.type_name!r}, builder) or override it with node_map"
    )


# -- stateful primitives ---------------------------------------------------------------------------


class StatefulRuntime(nn.Module):
    """Base of runtimes that carry state across timesteps (see the module docstring for the protocol)."""

    def init_state(self, inputs: Sequence[Tensor]) -> State:
        raise NotImplementedError

    def step(self, inputs: Sequence[Tensor], state: State) -> tuple[Any, State]:
        raise NotImplementedError

    def state_batch(self, state: State) -> int | None:
        """The batch size a state was built for (lets the executor refuse a state from another batch)."""
        first = state[0] if isinstance(state, (tuple, list)) and state else None
        return first.shape[0] if isinstance(first, Tensor) and first.dim() else None

    def run_seq(self, inputs: Sequence[Tensor], state: State) -> tuple[Any, State]:
        """Whole sequences (T, B, ...) in, (outputs (T, B, ...), final state) out; by default a step loop."""
        outs = []
        for t in range(inputs[0].shape[0]):
            out, state = self.step([x[t] for x in inputs], state)
            outs.append(out)
        if isinstance(outs[0], (tuple, list)):
            return tuple(torch.stack(o) for o in zip(*outs)), state
        return torch.stack(outs), state

    def forward(self, inputs: Sequence[Tensor], state: State) -> tuple[Any, State]:
        return self.step(inputs, state)


class _SpikingNeuron(StatefulRuntime):
    """Shared membrane update, reset and spike of LIF, IF and CubaLIF (the IR's reset modes).

    Subclasses set beta (None: no decay), leak (None: no leak term), gain (None: unit gain) and the
    spike constants; `_membrane` is the one place where the float op order is fixed:
        v = beta*v;  v += leak;  v += gain*x_k for each input k in edge order
    Resets use float 0/1 masks, never bool tensors or torch.where: for R in {0, 1} the products R*thr and
    v*(1-R) are exact, so `v - R*thr` (however it is fused) and `v*(1-R)` round exactly like snnTorch's
    `mem - reset*threshold`, `(1-reset)*mem` and `mem - reset*mem`, and float masks are several times
    cheaper than bool ones on CPU.
    """

    def _spike_constants(self, node: Node) -> None:
        _const(self, "v_threshold", node.v_threshold)
        _const(self, "v_reset", None if node.v_reset is None else _zero_or(node.v_reset))
        self.reset_mode = node.reset_mode
        self.reset_delay = node.reset_delay
        gsf = np.float32(node.graded_spikes_factor)
        self.graded_spikes_factor = None if gsf == 1.0 else float(gsf)

    def _membrane(self, v: Tensor, inputs: Sequence[Tensor]) -> Tensor:
        beta, leak, gain = self._op_beta, self._op_leak, self._op_gain
        # The first op allocates; the rest run in place on that fresh tensor (never on the caller's state).
        u = torch.mul(v, beta) if beta is not None else None
        if leak is not None:
            u = torch.add(v, leak) if u is None else u.add_(leak)
        for x in inputs:
            if gain is not None:
                x = x * gain
            u = torch.add(v, x) if u is None else u.add_(x)
        return u

    def _zero(self, v: Tensor, keep: Tensor, in_place: bool) -> Tensor:
        """where(R, v_reset, v) as arithmetic on keep = 1 - R: v*keep is v or +-0, exactly."""
        v = v.mul_(keep) if in_place else torch.mul(v, keep)
        v_reset = self.v_reset
        if v_reset is not None:  # +-0 + v_reset is exactly v_reset; v + 0 is v
            if isinstance(v_reset, float):
                v.add_(torch.rsub(keep, 1.0), alpha=v_reset)
            else:
                v.addcmul_(torch.rsub(keep, 1.0), v_reset)
        return v

    def _reset_and_fire(
        self, v_prev: Tensor, integrate: Callable[[Tensor], Tensor], spike_out: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """R from the stored membrane, reset by mode around `integrate`, spike; returns (spike, v).

        `spike_out`, when given, receives the spikes (multi-step runs write straight into their output).
        """
        thr, mode = self._op_v_threshold, self.reset_mode
        reset = keep = None
        if mode == "subtract":
            reset = torch.gt(v_prev, thr, out=torch.empty_like(v_prev))  # R: last step's spike
            v = integrate(v_prev)
            _subtract_reset(v, reset, self.v_threshold, thr)
        elif mode == "zero":  # snnTorch Leaky: clear the stored membrane, then integrate
            keep = torch.le(v_prev, thr, out=torch.empty_like(v_prev))
            v = integrate(self._zero(v_prev, keep, in_place=False))
        elif mode == "zero_post":  # snnTorch Synaptic/RLeaky: clear the new membrane
            keep = torch.le(v_prev, thr, out=torch.empty_like(v_prev))
            v = self._zero(integrate(v_prev), keep, in_place=True)
        else:
            v = integrate(v_prev)
        spike = torch.gt(v, thr, out=torch.empty_like(v) if spike_out is None else spike_out)
        if not self.reset_delay and mode != "none":
            # snnTorch: do_reset = spk/gsf - reset, where spk/gsf is exactly the unscaled spike.
            do_reset = spike - (reset if reset is not None else torch.rsub(keep, 1.0))
            v = v - do_reset * (thr if mode == "subtract" else v)
        if self.graded_spikes_factor is not None:
            spike.mul_(self.graded_spikes_factor)
        return spike, v

    def run_seq(self, inputs: Sequence[Tensor], state: State) -> tuple[Tensor, State]:
        # Same step, but spikes land directly in the (T, B, ...) output instead of being stacked after.
        out = torch.empty_like(inputs[0])
        for t in range(out.shape[0]):
            _, state = self.step([x[t] for x in inputs], state, out[t])
        return out, state


def _subtract_reset(v: Tensor, reset: Tensor, thr: Any, thr_op: Tensor) -> None:
    """v -= R*thr in place; R in {0, 1} makes the product exact, so fused or not it rounds like snnTorch."""
    if isinstance(thr, float):
        v.sub_(reset, alpha=thr)
    else:
        v.addcmul_(reset, thr_op, value=-1.0)


class LIFRuntime(_SpikingNeuron):
    """LIF: beta = 1 - dt/tau, leak = (1-beta)*v_leak, gain = dt*r/tau (float64, cast to float32); state (v,)."""

    def __init__(self, node: P.LIF, dt: float) -> None:
        super().__init__()
        c = P.coefficients(node, dt)
        _const(self, "beta", c.beta)
        _const(self, "leak", _zero_or(c.leak))
        _const(self, "gain", _unit_or(c.gain))
        self._spike_constants(node)

    def init_state(self, inputs: Sequence[Tensor]) -> tuple[Tensor]:
        return (torch.zeros_like(inputs[0]),)

    def step(self, inputs: Sequence[Tensor], state: tuple[Tensor], spike_out: Tensor | None = None) -> tuple[Tensor, tuple[Tensor]]:
        if self.reset_mode == "subtract" and self.reset_delay:
            # snnTorch Leaky's default, spelled out: _reset_and_fire's ops in its order, fewer Python hops
            v_prev, thr = state[0], self._op_v_threshold
            reset = torch.gt(v_prev, thr, out=torch.empty_like(v_prev))
            v = self._membrane(v_prev, inputs)
            _subtract_reset(v, reset, self.v_threshold, thr)
            # R is dead once subtracted: the spike takes its storage (one allocation less per step)
            spike = torch.gt(v, thr, out=reset if spike_out is None else spike_out)
            if self.graded_spikes_factor is not None:
                spike.mul_(self.graded_spikes_factor)
            return spike, (v,)
        spike, v = self._reset_and_fire(state[0], lambda v: self._membrane(v, inputs), spike_out)
        return spike, (v,)

    #: run_seq takes `trace=`: a (T, B, ...) tensor that receives the membrane after every step
    traces_membrane = True

    def run_seq(self, inputs: Sequence[Tensor], state: tuple[Tensor], trace: Tensor | None = None) -> tuple[Tensor, tuple[Tensor]]:
        """The step loop fused for the delayed reset (snnTorch's default; any reset mode).

        One membrane tensor is updated in place across the steps (the caller's state is copied once,
        never modified) and spikes land in the output; subtraction's reset mask of step t is step t-1's
        unscaled spike, which is exactly gt(v_{t-1}, threshold). Every op and operand is the one `step`
        uses, in the same order, so the results are bit for bit those of T `step` calls.

        The state comes back as a `Carried` tuple owned by this runtime (talon.bridge._carry): given back
        for run()'s next chunk, the membrane is stepped on in place and the last spike reused as the
        reset mask, instead of a copy and a comparison per chunk.

        `trace`, when given, receives each step's membrane (the state `step` returns) as the step ends:
        for instruments (the fixed-point calibration) that need every step's membrane.
        """
        mode = self.reset_mode
        if mode != "none" and not self.reset_delay:
            if trace is None:
                return super().run_seq(inputs, state)
            out = torch.empty_like(inputs[0])
            for t in range(out.shape[0]):
                _, state = self.step([x[t] for x in inputs], state, out[t])
                trace[t].copy_(state[0])
            return out, state
        beta, leak, gain, thr = self._op_beta, self._op_leak, self._op_gain, self._op_v_threshold
        if gain is not None:  # elementwise: the same products the steps would take one by one
            inputs = [x * gain for x in inputs]
        out = torch.empty_like(inputs[0])
        owned = owned_by(state, self)
        v = state[0] if owned else state[0].clone()
        reset = None
        if mode == "subtract":
            reset = state.extra if owned and state.extra is not None else torch.gt(v, thr, out=torch.empty_like(v))
        keep = torch.empty_like(v) if mode in ("zero", "zero_post") else None
        steps = [x.unbind(0) for x in inputs]  # all per-step views at once: cheaper than x[t] in the loop
        traced = trace.unbind(0) if trace is not None else None
        for t, out_t in enumerate(out.unbind(0)):
            if keep is not None:
                torch.le(v, thr, out=keep)
                if mode == "zero":
                    self._zero(v, keep, in_place=True)
            if beta is not None:
                v.mul_(beta)
            if leak is not None:
                v.add_(leak)
            for x in steps:
                v.add_(x[t])
            if reset is not None:
                _subtract_reset(v, reset, self.v_threshold, thr)
                reset = torch.gt(v, thr, out=out_t)
            else:
                if mode == "zero_post":
                    self._zero(v, keep, in_place=True)
                torch.gt(v, thr, out=out_t)
            if traced is not None:
                traced[t].copy_(v)
        if self.graded_spikes_factor is not None:
            out.mul_(self.graded_spikes_factor)
            reset = None  # scaled in place with the output: no longer the 0/1 mask
        return out, Carried.of(self, (v,), reset)


class IFRuntime(LIFRuntime):
    """IF: LIF without decay or leak, gain = dt*r (r None: 1); state (v,)."""

    def __init__(self, node: P.IF, dt: float) -> None:
        StatefulRuntime.__init__(self)
        _const(self, "beta", None)
        _const(self, "leak", None)
        _const(self, "gain", _unit_or(P.coefficients(node, dt).gain))
        self._spike_constants(node)


class CubaLIFRuntime(_SpikingNeuron):
    """Current-based LIF (snnTorch Synaptic): I = alpha*I + gain_in*x_k; v = beta*v + leak + gain*I; state (I, v)."""

    def __init__(self, node: P.CubaLIF, dt: float) -> None:
        super().__init__()
        c = P.coefficients(node, dt)
        _const(self, "alpha", c.alpha)
        _const(self, "beta", c.beta)
        _const(self, "leak", _zero_or(c.leak))
        _const(self, "gain", _unit_or(c.gain))
        _const(self, "gain_in", None if c.gain_in is None else _unit_or(c.gain_in))
        self._spike_constants(node)

    def init_state(self, inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        return torch.zeros_like(inputs[0]), torch.zeros_like(inputs[0])

    def integrate_current(self, inputs: Sequence[Tensor], current: Tensor) -> Tensor:
        """The new synaptic current alpha*I + gain_in*x_k (a fresh tensor; `current` is not modified)."""
        current = torch.mul(current, self._op_alpha)
        gain_in = self._op_gain_in
        for x in inputs:
            current.add_(x if gain_in is None else x * gain_in)
        return current

    def fire(self, current: Tensor, v: Tensor, spike_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The membrane half of the step, driven by this step's current: returns (spike, new v)."""
        return self._reset_and_fire(v, lambda u: self._membrane(u, (current,)), spike_out)

    def step(
        self, inputs: Sequence[Tensor], state: tuple[Tensor, Tensor], spike_out: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        # Two public halves so that fixed-point mode can round the current between them
        # (talon.backend.cpu.fixed) without a second copy of either formula.
        current = self.integrate_current(inputs, state[0])
        spike, v = self.fire(current, state[1], spike_out)
        return spike, (current, v)


class LIRuntime(_SpikingNeuron):
    run_seq = StatefulRuntime.run_seq  # outputs v, not spikes

    """Leaky integrator: v = beta*v + leak + gain*x_k; outputs v; state (v,)."""

    def __init__(self, node: P.LI, dt: float) -> None:
        super().__init__()
        c = P.coefficients(node, dt)
        _const(self, "beta", c.beta)
        _const(self, "leak", _zero_or(c.leak))
        _const(self, "gain", _unit_or(c.gain))

    def init_state(self, inputs: Sequence[Tensor]) -> tuple[Tensor]:
        return (torch.zeros_like(inputs[0]),)

    def step(self, inputs: Sequence[Tensor], state: tuple[Tensor]) -> tuple[Tensor, tuple[Tensor]]:
        v = self._membrane(state[0], inputs)
        return v, (v,)


class IntegratorRuntime(LIRuntime):
    """Integrator: v = v + dt*r*x_k; outputs v; state (v,)."""

    def __init__(self, node: P.Integrator, dt: float) -> None:
        StatefulRuntime.__init__(self)
        _const(self, "beta", None)
        _const(self, "leak", None)
        _const(self, "gain", _unit_or(P.coefficients(node, dt).gain))


class DelayRuntime(StatefulRuntime):
    """y[t] = x[t - delay] per element. State (history,): the last max(delay)+1 inputs, newest first."""

    def __init__(self, node: P.Delay) -> None:
        super().__init__()
        delay = np.asarray(node.delay, dtype=np.int64)
        self.length = int(delay.max()) + 1 if delay.size else 1
        flat = delay.reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            self.uniform: int | None = int(flat[0])
        else:
            self.uniform = None
            self.register_buffer("delay", torch.from_numpy(delay.copy()))

    def init_state(self, inputs: Sequence[Tensor]) -> tuple[Tensor]:
        x = inputs[0]
        return (x.new_zeros((self.length, *x.shape)),)

    def state_batch(self, state: tuple[Tensor]) -> int | None:
        return state[0].shape[1]

    def step(self, inputs: Sequence[Tensor], state: tuple[Tensor]) -> tuple[Tensor, tuple[Tensor]]:
        (x,) = inputs
        # A new history tensor each step (not a ring buffer written in place) keeps old states valid.
        history = torch.cat((x.unsqueeze(0), state[0][:-1]), dim=0)
        if self.uniform is not None:
            return history[self.uniform], (history,)
        index = self.delay.expand(x.shape).unsqueeze(0)
        return history.gather(0, index).squeeze(0), (history,)


# -- registry of the built-in primitives -----------------------------------------------------------


def _register_builtins() -> None:
    reg = register_runtime
    for name in ("Output", "Dropout", "HybridRegion"):
        reg(name, lambda node, ctx: Identity())
    reg("Affine", lambda node, ctx: AffineRuntime(node.weight, node.bias))
    reg("SpikingAffine", lambda node, ctx: AffineRuntime(node.weight, node.bias))
    reg("Linear", lambda node, ctx: AffineRuntime(node.weight, None))
    reg("Scale", lambda node, ctx: ScaleRuntime(node.scale))
    reg("Conv1d", lambda node, ctx: ConvRuntime(node, 1))
    for name in ("Conv2d", "SConv", "SDConv"):
        reg(name, lambda node, ctx: ConvRuntime(node, 2))
    reg("SepConv2d", lambda node, ctx: SepConv2dRuntime(node))
    reg("MaxPool2d", lambda node, ctx: FunctionRuntime(
        F.max_pool2d, "MaxPool2d", kernel_size=node.kernel_size, stride=node.stride, padding=node.padding,
        dilation=node.dilation, ceil_mode=node.ceil_mode))
    reg("AvgPool2d", lambda node, ctx: FunctionRuntime(
        F.avg_pool2d, "AvgPool2d", kernel_size=node.kernel_size, stride=node.stride, padding=node.padding,
        ceil_mode=node.ceil_mode, count_include_pad=node.count_include_pad))
    reg("SumPool2d", lambda node, ctx: FunctionRuntime(
        _sum_pool2d, "SumPool2d", kernel_size=node.kernel_size, stride=node.stride, padding=node.padding))
    reg("Upsample", _upsample)
    reg("Flatten", lambda node, ctx: FunctionRuntime(
        _flatten, "Flatten", start_dim=_sample_dim(node.start_dim), end_dim=_sample_dim(node.end_dim)))
    reg("Skip", _skip)
    reg("Concat", lambda node, ctx: FunctionRuntime(_concat, "Concat", dim=_sample_dim(node.dim)))
    reg("ChannelSplit", lambda node, ctx: ChannelSplitRuntime(node))
    reg("BatchNorm1d", lambda node, ctx: BatchNormRuntime(node))
    reg("BatchNorm2d", lambda node, ctx: BatchNormRuntime(node))
    reg("LayerNorm", lambda node, ctx: LayerNormRuntime(node))
    reg("ReLU", _relu)
    reg("Sigmoid", lambda node, ctx: FunctionRuntime(torch.sigmoid, "Sigmoid"))
    reg("Tanh", lambda node, ctx: FunctionRuntime(torch.tanh, "Tanh"))
    reg("Softmax", lambda node, ctx: FunctionRuntime(F.softmax, "Softmax", dim=_sample_dim(node.dim)))
    reg("GELU", lambda node, ctx: FunctionRuntime(F.gelu, "GELU", approximate="tanh" if node.approximate else "none"))
    reg("ELU", lambda node, ctx: FunctionRuntime(F.elu, "ELU", alpha=node.alpha))
    reg("PReLU", lambda node, ctx: PReLURuntime(node))
    reg("Threshold", lambda node, ctx: ThresholdRuntime(node))
    reg("LIF", lambda node, ctx: LIFRuntime(node, ctx.dt))
    reg("IF", lambda node, ctx: IFRuntime(node, ctx.dt))
    reg("CubaLIF", lambda node, ctx: CubaLIFRuntime(node, ctx.dt))
    reg("LI", lambda node, ctx: LIRuntime(node, ctx.dt))
    reg("Integrator", lambda node, ctx: IntegratorRuntime(node, ctx.dt))
    reg("Delay", lambda node, ctx: DelayRuntime(node))
    for name in ("SGhostConv", "SGhostEncoderLite", "GhostBasicBlock1", "GhostBasicBlock2", "SDDetect",
                 "DFLDecode", "Dist2BBox", "NMS"):
        reg(name, _unsupported)
    # "Graph" (nested graphs) is registered by executor.py, which owns the sub-executor.


_register_builtins()

# -- ALIF: Lava-DL's adaptive-threshold LIF ----------------------------------------------------------
# Its runtime, the `ALIF` module a user puts in a PyTorch model (stepping through the same update, so an
# exported model is reproduced bit for bit), its export converter and the import of Lava-DL's parameters.
# `alif_step` is the update, written once: `decay` (a state times its retention factor) and `sat` (applied
# to each new state) carry what a numerics mode changes; the float mode leaves them exact float32
# arithmetic and the fixed-point rule (talon.backend.fpga.emitters.neurons) passes Lava-DL's integer
# rounding through `ALIFRuntime.advance`, on the summed input it rounded to the state grid.

ALIFState = tuple[Tensor, Tensor, Tensor, Tensor]  # (u, th, r, v)


def _exact(t: Tensor) -> Tensor:
    return t


def alif_step(
    x: Tensor, state: ALIFState, keep: Sequence[Any], threshold: Any, threshold_step: Any,
    decay: Callable[[Tensor, Any], Tensor] = torch.mul, sat: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, ALIFState]:
    """One ALIF step (talon.ir.primitives.neurons.ALIF): `keep` = (1-current_decay, 1-voltage_decay,
    1-threshold_decay, 1-refractory_decay). Returns (spike, (u, th, r, v)); `state` is not modified."""
    u0, th0, r0, v0 = state
    ku, kv, kth, kr = keep
    sat = sat or _exact
    u = sat(decay(u0, ku) + x)
    v = sat(decay(v0, kv) + u)
    th = sat(decay(th0 - threshold, kth) + threshold)
    r = sat(decay(r0, kr))
    spike = torch.ge(v, th + r).to(v.dtype)
    r_next = sat(r + 2 * th * spike)
    th_next = sat(th + threshold_step * spike)
    return spike, (u, th_next, r_next, v)


def _as_operand(value64: np.ndarray, dtype: torch.dtype = torch.float32) -> Any:
    """A per-neuron constant cast once from float64: a Python float when uniform, else a tensor."""
    arr = np.asarray(value64, np.float64).astype(np.float32 if dtype == torch.float32 else np.float64)
    flat = arr.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return torch.from_numpy(np.ascontiguousarray(arr))


class ALIFRuntime(StatefulRuntime):
    """The runtime of an ALIF node: state (u, th, r, v), inputs summed in edge order."""

    def __init__(self, node: ALIFNode) -> None:
        super().__init__()
        keep = node.keep_factors()
        self._keep = [self._operand(f"keep_{i}", keep[name]) for i, name in enumerate(DECAYS)]
        self._threshold = self._operand("threshold", np.asarray(node.threshold, np.float64))
        self._threshold_step = self._operand("threshold_step", np.asarray(node.threshold_step, np.float64))

    def _operand(self, name: str, value64: np.ndarray) -> Any:
        op = _as_operand(value64)
        if isinstance(op, Tensor):
            self.register_buffer(name, op, persistent=False)  # moved by .to()/.double() with the module
            return name
        return op

    def _get(self, op: Any) -> Any:
        return getattr(self, op) if isinstance(op, str) else op

    def sum_inputs(self, inputs: Sequence[Tensor]) -> Tensor:
        """x: the inputs added in edge order (a fresh tensor)."""
        x = inputs[0]
        for y in inputs[1:]:
            x = x + y
        return x

    def init_state(self, inputs: Sequence[Tensor]) -> ALIFState:
        z = torch.zeros_like(inputs[0])
        return z, torch.zeros_like(z).add_(self._get(self._threshold)), torch.zeros_like(z), torch.zeros_like(z)

    def advance(self, x: Tensor, state: ALIFState, decay: Callable[[Tensor, Any], Tensor] = torch.mul,
                sat: Callable[[Tensor], Tensor] = _exact) -> tuple[Tensor, ALIFState]:
        """One step on the summed input `x`. `decay(state, keep)` and `sat(state)` are the arithmetic a
        numerics mode chooses: exact float products and no saturation here; the fixed-point rule
        (talon.backend.fpga.emitters.neurons) passes Lava-DL's integer rounding and saturation."""
        keep = [self._get(k) for k in self._keep]
        return alif_step(x, state, keep, self._get(self._threshold), self._get(self._threshold_step), decay=decay, sat=sat)

    def step(self, inputs: Sequence[Tensor], state: ALIFState) -> tuple[Tensor, ALIFState]:
        return self.advance(self.sum_inputs(inputs), state)


register_runtime("ALIF", lambda node, ctx: ALIFRuntime(node))  # beside the built-ins, with its user module


# -- the module users put in their PyTorch models ---------------------------------------------------


class ALIF(nn.Module):
    """Adaptive-threshold LIF layer (Lava-DL `alif`'s parameters and equations), one step per call.

        alif = ALIF(threshold=1.0, threshold_step=0.5, current_decay=0.25, voltage_decay=0.1,
                    threshold_decay=0.05, refractory_decay=0.2)
        spk = alif(x)            # x: (batch, *neurons); the state persists across calls
        alif.reset_state()       # start the next sequence from rest

    Parameters are scalars or tensors broadcasting to the neuron shape. The state lives in buffers (u, th,
    r, v) sized on the first call. `to_ir` exports it exactly as an IR ALIF node (`convert_alif`, registered
    as its converter).
    """

    def __init__(self, threshold: Any, threshold_step: Any, current_decay: Any, voltage_decay: Any,
                 threshold_decay: Any, refractory_decay: Any) -> None:
        super().__init__()
        values = dict(threshold=threshold, threshold_step=threshold_step, current_decay=current_decay,
                      voltage_decay=voltage_decay, threshold_decay=threshold_decay, refractory_decay=refractory_decay)
        ALIFNode(**{k: np.asarray(torch.as_tensor(v, dtype=torch.float32)) for k, v in values.items()})  # validates ranges
        for k, v in values.items():
            self.register_buffer(k, torch.as_tensor(v, dtype=torch.float32).clone())
        for k in ("u", "th", "r", "v"):
            self.register_buffer(k, torch.zeros(0), persistent=False)

    def reset_state(self) -> None:
        """Forget the state: the next call starts from u = v = r = 0, th = threshold."""
        for k in ("u", "th", "r", "v"):
            setattr(self, k, torch.zeros(0, device=self.threshold.device))

    def forward(self, x: Tensor) -> Tensor:
        node = self.to_node()
        rt = ALIFRuntime(node).to(x.device)
        state = (self.u, self.th, self.r, self.v)
        if self.u.shape != x.shape:
            state = rt.init_state([x])
        spike, (u, th, r, v) = rt.step([x], state)
        self.u, self.th, self.r, self.v = u, th, r, v
        return spike

    def to_node(self) -> ALIFNode:
        """The IR node this module computes (float32 fields, exactly the module's values)."""
        return ALIFNode(**{k: getattr(self, k).detach().cpu().numpy().astype(np.float32) for k in
                           ("threshold", "threshold_step", *DECAYS)})

    @classmethod
    def from_lava_dl(cls, params: Mapping[str, Any], scale: int = 1 << 6) -> "ALIF":
        """From Lava-DL: its neuron keyword arguments (threshold, threshold_step, current_decay, ...) or its
        `device_params` dict (vThMant, vThStep, iDecay, vDecay, thDecay, refDecay; Lava-DL's
        `neuron_params` scaling: thresholds / scale, decays / 4096). Lava-DL rounds a neuron's threshold
        and step down to multiples of 1/scale and its decays to multiples of 1/4096: its device parameters
        are already on those grids; keyword arguments are taken as given."""
        if params.get("gradedSpike") or params.get("graded_spike"):
            raise TalonUsageError("ALIF.from_lava_dl: Lava-DL's graded spikes (spike = v / scale) have no TALON equivalent; "
                                  "use binary spikes (graded_spike=False)")
        if "vThMant" in params:
            missing = [k for k in ("vThMant", "iDecay", "vDecay", "thDecay", "refDecay") if k not in params]
            if missing:
                raise TalonUsageError(f"ALIF.from_lava_dl: device_params lack {missing}")
            # Lava-DL's neuron_params() reuses vThMant for the step; device_params carries vThStep itself.
            step = params.get("vThStep", params["vThMant"])
            return cls(params["vThMant"] / scale, step / scale, params["iDecay"] / 4096, params["vDecay"] / 4096,
                       params["thDecay"] / 4096, params["refDecay"] / 4096)
        names = ("threshold", "threshold_step", *DECAYS)
        missing = [k for k in names if k not in params]
        if missing:
            raise TalonUsageError(f"ALIF.from_lava_dl: parameters lack {missing} (give Lava-DL's alif.Neuron arguments or device_params)")
        return cls(*(params[k] for k in names))


def convert_alif(module: ALIF, ctx: Any) -> ALIFNode:
    """Export converter: the module's parameters as they are (the runtime then computes what it computed)."""
    if not isinstance(module, ALIF):
        raise ctx.unsupported(module, "convert_alif converts talon.bridge.modules.ALIF modules only")
    return module.to_node()


register_converter(ALIF, convert_alif, produces=("ALIF",))
