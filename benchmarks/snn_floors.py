"""Floors for benchmarks/simulate.py: the least any bit-exact runtime of an snnTorch model must spend.

An eager run of the model is traced (every Linear/Conv2d/MaxPool2d/Flatten call and every snn.Leaky
step, in call order, with the tensors they received), then replayed four ways:

* products, per step: the model's own product/pooling calls on the inputs they saw, step by step;
* products, batched: the same calls once per module on the inputs stacked over time, either over all
  T steps at once or in chunks of `chunk` steps (run()'s chunks); the faster is the floor;
* exact, per step: the products per step plus, for each Leaky layer, the fewest bare-torch ops that give
  snnTorch's bits and what a per-step call must return (a fresh membrane and a fresh spike tensor):
  ``R = v > thr`` (written into the spike's storage), ``u = v * beta``, ``u += x``, ``u -= R * thr``
  (R in {0, 1}: the product is exact, fused or not), ``s = u > thr``: five passes, two allocations;
* exact, batched: the batched products plus each Leaky layer stepped in place over the steps,
  ``v *= beta; v += x_t; v -= R * thr; R = s_t = v > thr`` (the reset mask of step t is step t-1's
  spike): four passes per step, no allocation but the output.

The exact replays are checked against the traced eager membranes and spikes bit for bit before any
timing (`check_exact`); a replay that differs exits non-zero. Replays keep no result alive (a list of
every step's outputs would make each allocation fresh memory, page faults included, and inflate the floor). No other order of float ops reproduces
snnTorch's roundings (a fused multiply-add such as ``torch.add(x, v, alpha=beta)`` rounds once instead
of twice), so these are floors for any exact runtime, not just for TALON's.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import snntorch as snn

PRODUCTS = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.Flatten)
Call = tuple[nn.Module, tuple[torch.Tensor, ...]]


class ExactLeaky:
    """snn.Leaky (subtract reset, delayed, binary spikes) as the fewest bit-exact bare-torch ops."""

    def __init__(self, mod: snn.Leaky) -> None:
        unsupported = (mod.reset_mechanism != "subtract" or not mod.reset_delay or mod.inhibition
                       or mod.state_quant or float(mod.graded_spikes_factor) != 1.0)
        if unsupported:
            raise SystemExit(f"snn_floors: only snn.Leaky with subtract reset, reset_delay and binary spikes has an exact floor here ({mod})")
        self.beta = mod.beta.detach().clamp(0, 1)
        self.thr = mod.threshold.detach().clone()
        self.thr_f = float(self.thr)

    def step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.gt(v, self.thr, out=torch.empty_like(v))  # R; the spike reuses its storage
        u = torch.mul(v, self.beta)
        u.add_(x)
        u.sub_(s, alpha=self.thr_f)
        torch.gt(u, self.thr, out=s)
        return s, u

    def seq(self, xs: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps over xs (Tc, B, ...) in place on v; r is the last step's spike. Returns (spikes, r)."""
        out = torch.empty_like(xs)
        for x, o in zip(xs.unbind(0), out.unbind(0)):
            v.mul_(self.beta)
            v.add_(x)
            v.sub_(r, alpha=self.thr_f)
            r = torch.gt(v, self.thr, out=o)
        return out, r


def trace(model: nn.Module, xs: torch.Tensor) -> list[Call]:
    """Every product/pooling call and Leaky step of `model(xs)`, in call order, with its input tensors
    (a Leaky step as (input, membrane before the step))."""
    calls: list[Call] = []

    def on_product(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        calls.append((mod, (inp[0],)))

    def on_leaky(mod: nn.Module, args: tuple) -> None:
        x, mem = args
        calls.append((mod, (x, mem if mem.shape == x.shape else torch.zeros_like(x))))

    hooks = [m.register_forward_hook(on_product) for m in model.modules() if isinstance(m, PRODUCTS)]
    hooks += [m.register_forward_pre_hook(on_leaky) for m in model.modules() if isinstance(m, snn.Leaky)]
    try:
        with torch.inference_mode():
            model(xs)
    finally:
        for h in hooks:
            h.remove()
    return calls


def _per_module(calls: list[Call]) -> dict[nn.Module, list[tuple[torch.Tensor, ...]]]:
    per: dict[nn.Module, list[tuple[torch.Tensor, ...]]] = {}
    for mod, args in calls:
        per.setdefault(mod, []).append(args)
    return per  # insertion order = first-call order = the model's layer order


def check_exact(calls: list[Call]) -> None:
    """The exact replays give the traced membranes and spikes bit for bit, or the benchmark stops."""
    for mod, steps in _per_module(calls).items():
        if not isinstance(mod, snn.Leaky):
            continue
        ex = ExactLeaky(mod)
        seq_x = torch.stack([x for x, _ in steps])
        v0 = steps[0][1]
        with torch.inference_mode():
            spikes_seq, _ = ex.seq(seq_x, v0.clone(), torch.gt(v0, ex.thr).to(v0.dtype))
            for t, (x, v) in enumerate(steps):
                s, u = ex.step(x, v)
                if not torch.equal(s, spikes_seq[t]):
                    raise SystemExit(f"snn_floors: per-step and in-place exact replays differ at step {t}")
                if t + 1 < len(steps) and not torch.equal(u, steps[t + 1][1]):
                    raise SystemExit(f"snn_floors: the exact Leaky replay's membrane differs from snnTorch's at step {t}")
                if not torch.equal(s, ((u - ex.thr) > 0).to(s.dtype)):  # snnTorch's fire rule: heaviside(mem - thr)
                    raise SystemExit(f"snn_floors: the exact Leaky replay's spikes differ from snnTorch's at step {t}")


def products_per_step(calls: list[Call]) -> Callable[[], object]:
    prods = [(mod, args[0]) for mod, args in calls if isinstance(mod, PRODUCTS)]

    def run() -> None:
        for mod, x in prods:
            mod(x)

    return run


def exact_per_step(calls: list[Call]) -> Callable[[], object]:
    exact = {mod: ExactLeaky(mod) for mod, _ in calls if isinstance(mod, snn.Leaky)}
    plan = [(exact[mod].step if mod in exact else mod, args) for mod, args in calls]

    def run() -> None:
        for fn, args in plan:
            fn(*args)

    return run


def _chunks(calls: list[Call], chunk: int) -> list[list[tuple[nn.Module, tuple[torch.Tensor, ...]]]]:
    """Per chunk of `chunk` steps: each module's inputs stacked over the chunk, in layer order."""
    per = _per_module(calls)
    T = len(next(iter(per.values())))
    out = []
    for t0 in range(0, T, chunk):
        rows = []
        for mod, steps in per.items():
            part = steps[t0 : t0 + chunk]
            if isinstance(mod, snn.Leaky):
                rows.append((mod, (torch.stack([x for x, _ in part]), part[0][1])))
            else:
                rows.append((mod, (torch.cat([x for (x,) in part]),)))
        out.append(rows)
    return out


def products_batched(calls: list[Call], chunk: int) -> Callable[[], object]:
    """The product/pooling calls once per module and chunk, on (chunk*B, ...) inputs."""
    plan = [[(mod, args[0]) for mod, args in rows if isinstance(mod, PRODUCTS)] for rows in _chunks(calls, chunk)]

    def run() -> None:
        for rows in plan:
            for mod, x in rows:
                mod(x)

    return run


def exact_batched(calls: list[Call], chunk: int) -> Callable[[], object]:
    """Batched products plus the in-place Leaky loops, chunk after chunk in layer order (as run() does),
    the membranes and last spikes carried from one chunk to the next."""
    plan = _chunks(calls, chunk)
    exact = {mod: ExactLeaky(mod) for mod, _ in calls if isinstance(mod, snn.Leaky)}

    def run() -> None:
        carried: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        for rows in plan:
            for mod, args in rows:
                if mod in exact:
                    ex = exact[mod]
                    if mod not in carried:
                        v = args[1].clone()
                        carried[mod] = (v, torch.gt(v, ex.thr).to(v.dtype))
                    v, r = carried[mod]
                    _, r = ex.seq(args[0], v, r)
                    carried[mod] = (v, r)
                else:
                    mod(args[0])

    return run
