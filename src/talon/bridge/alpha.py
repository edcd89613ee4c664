"""The runtime of the Alpha neuron (talon.ir.primitives.alpha): snnTorch's `snn.Alpha`, bit for bit.

Every float32 operation is snnTorch 1.0.0's (`_base_state_function`, `_base_sub`, `_base_zero`), in
its order and with its operands, so the spikes and all three states equal snnTorch's exactly:

    E = alpha*E + x;   N = beta*N - x;   U = tau_alpha*(E + N)
    subtract: E -= threshold*R;  N -= N*R;  U -= (-N_prev)*R        zero: E -= E*R;  N -= N*R;  U -= U*R

Resets use float 0/1 masks R, which make every product with R exact. The step has two public halves,
`traces` (the new traces before any reset) and `fire` (membrane, reset, spike), so that fixed-point mode
can round the traces between them without a second copy of either formula (talon.backend.fpga.emitters.alpha).
State: (E, N, U), membrane last.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from talon.bridge.modules import StatefulRuntime, register_runtime
from talon.ir.primitives.alpha import Alpha, alpha_coefficients

__all__ = ["AlphaRuntime"]


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
