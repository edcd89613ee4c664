"""The ALIF neuron in torch: its runtime (the one implementation of talon.ir.primitives.neurons.ALIF's update),
the `ALIF` module a user puts in a PyTorch model, its export converter, and the import of Lava-DL's
ALIF parameters.

`alif_step` is the update, written once. Two arguments carry everything a numerics mode changes: `decay`
(a state times its retention factor) and `sat` (applied to each new state); the float mode leaves them
exact float32 arithmetic, and the fixed-point rule (talon.backend.alif) passes Lava-DL's integer rounding
through `ALIFRuntime.advance`, on the summed input it rounded to the state grid. The user-facing `ALIF` module steps through the same function, so
an exported model is reproduced bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from talon.bridge.converters import register_converter
from talon.bridge.modules import StatefulRuntime, register_runtime
from talon.errors import TalonUsageError
from talon.ir.primitives.neurons import ALIF as ALIFNode
from talon.ir.primitives.neurons import DECAYS

State = tuple[Tensor, Tensor, Tensor, Tensor]  # (u, th, r, v)


def _exact(t: Tensor) -> Tensor:
    return t


def alif_step(
    x: Tensor, state: State, keep: Sequence[Any], threshold: Any, threshold_step: Any,
    decay: Callable[[Tensor, Any], Tensor] = torch.mul, sat: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, State]:
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

    def init_state(self, inputs: Sequence[Tensor]) -> State:
        z = torch.zeros_like(inputs[0])
        return z, torch.zeros_like(z).add_(self._get(self._threshold)), torch.zeros_like(z), torch.zeros_like(z)

    def advance(self, x: Tensor, state: State, decay: Callable[[Tensor, Any], Tensor] = torch.mul,
                sat: Callable[[Tensor], Tensor] = _exact) -> tuple[Tensor, State]:
        """One step on the summed input `x`. `decay(state, keep)` and `sat(state)` are the arithmetic a
        numerics mode chooses: exact float products and no saturation here; the fixed-point rule
        (talon.backend.alif) passes Lava-DL's integer rounding and saturation."""
        keep = [self._get(k) for k in self._keep]
        return alif_step(x, state, keep, self._get(self._threshold), self._get(self._threshold_step), decay=decay, sat=sat)

    def step(self, inputs: Sequence[Tensor], state: State) -> tuple[Tensor, State]:
        return self.advance(self.sum_inputs(inputs), state)


register_runtime("ALIF", lambda node, ctx: ALIFRuntime(node))


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
        raise ctx.unsupported(module, "convert_alif converts talon.bridge.alif.ALIF modules only")
    return module.to_node()


register_converter(ALIF, convert_alif)
