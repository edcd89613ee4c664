"""The runtime of the Alpha neuron (talon.ir.primitives.alpha): snnTorch's `snn.Alpha`, bit for bit.

Every float32 operation is snnTorch 1.0.0's (`_base_state_function`, `_base_sub`, `_base_zero`), in
its order and with its operands, so the spikes and all three states equal snnTorch's exactly:

    E = alpha*E + x;   N = beta*N - x;   U = tau_alpha*(E + N)
    subtract: E -= threshold*R;  N -= N*R;  U -= (-N_prev)*R        zero: E -= E*R;  N -= N*R;  U -= U*R

Resets use float 0/1 masks R, which make every product with R exact. The step has two public halves,
`traces` (the new traces before any reset) and `fire` (membrane, reset, spike), so that fixed-point mode
can round the traces between them without a second copy of either formula (talon.backend.fpga.emitters.alpha).
State: (E, N, U), membrane last.

Also the exporter's converter of `snn.Alpha`, registered by name ("snntorch.Alpha"), so that this module
never imports snntorch: the registry binds it once snnTorch is imported (talon.bridge.converters).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from talon.bridge.converters import ConverterResult, ExportContext, register_converter

from talon.bridge.modules import StatefulRuntime, register_runtime
from talon.ir.primitives.alpha import Alpha, alpha_coefficients

__all__ = ["AlphaRuntime", "convert_alpha"]


class AlphaRuntime(StatefulRuntime):
    """Alpha neuron; constants computed in float64 from the node and cast once to float32 buffers."""

    def __init__(self, node: Alpha, dt: float) -> None:
        super().__init__()
        alpha, beta, tau_alpha = alpha_coefficients(node, dt)
        for name, value in (("alpha", alpha), ("beta", beta), ("tau_alpha", tau_alpha), ("v_threshold", node.v_threshold)):
            self.register_buffer(name, torch.from_numpy(np.asarray(value, np.float64).astype(np.float32)), persistent=True)
        self.reset_mode = node.reset_mode
        gsf = np.float32(node.graded_spikes_factor)
        self.graded_spikes_factor = None if gsf == 1.0 else float(gsf)

    def init_state(self, inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x = inputs[0]
        return torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)

    def traces(self, inputs: Sequence[Tensor], state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The new traces before the reset: alpha*E + x_k..., beta*N - x_k... (fresh tensors)."""
        e = torch.mul(self.alpha, state[0])
        n = torch.mul(self.beta, state[1])
        for x in inputs:
            e = e + x
            n = n - x
        return e, n

    def fire(self, e: Tensor, n: Tensor, state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Membrane, reset (from the stored membrane) and spike: returns (spike, (E, N, U))."""
        thr = self.v_threshold
        u = self.tau_alpha * (e + n)
        if self.reset_mode != "none":
            reset = torch.gt(state[2], thr).to(u.dtype)  # R: the previous step's spike
            if self.reset_mode == "subtract":
                e = e - thr * reset
                n = n - n * reset
                u = u - torch.neg(state[1]) * reset
            else:
                e = e - e * reset
                n = n - n * reset
                u = u - u * reset
        spike = torch.gt(u, thr).to(u.dtype)
        if self.graded_spikes_factor is not None:
            spike = spike * self.graded_spikes_factor
        return spike, (e, n, u)

    def step(self, inputs: Sequence[Tensor], state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        e, n = self.traces(inputs, state)
        return self.fire(e, n, state)


register_runtime("Alpha", lambda node, ctx: AlphaRuntime(node, ctx.dt))


def convert_alpha(m: nn.Module, ctx: ExportContext) -> ConverterResult:
    """snnTorch's Alpha, exactly: its clamped alpha and beta as time constants (as for Synaptic), and the
    membrane gain tau_alpha as the float32 value snnTorch computes from them on every step."""
    # snnTorch's helpers: an snn.Alpha exists, so snnTorch is imported (only talon.bridge.snntorch imports it)
    from talon.bridge.snntorch import _check_common, _decay, _param, _tau

    mechanism, gsf = _check_common(m, ctx)
    shape = ctx.output_shape
    alpha = _decay(m, ctx, "alpha", m.alpha, shape)
    beta = _decay(m, ctx, "beta", m.beta, shape)
    if np.any(beta == 1.0):
        raise ctx.unsupported(m, "beta is 1, which snnTorch's tau_alpha = ln(alpha)/(ln(beta) - ln(alpha)) + 1 divides by zero")
    if np.any(alpha <= beta):
        raise ctx.unsupported(m, "alpha <= beta after snnTorch's clamp to [0, 1]: the Alpha neuron needs alpha > beta")
    with torch.no_grad():  # snnTorch's own expression, in the parameters' dtype (cast to float32 where it is used)
        a = torch.as_tensor(m.alpha).detach().cpu().clamp(0, 1)
        b = torch.as_tensor(m.beta).detach().cpu().clamp(0, 1)
        tau_alpha = torch.log(a) / (torch.log(b) - torch.log(a)) + 1
    return Alpha(tau_exc=_tau(alpha, ctx.dt), tau_inh=_tau(beta, ctx.dt), v_threshold=_param(m, ctx, "threshold", m.threshold, shape),
                 tau_alpha=_param(m, ctx, "tau_alpha", tau_alpha, shape), reset_mode=mechanism, graded_spikes_factor=gsf)


#: what snn.Alpha's forward returns, in order: a state argument is carried over when it is output of its name
register_converter("snntorch.Alpha", convert_alpha, produces=("Alpha",), outputs=("spk", "syn_exc", "syn_inh", "mem"))
