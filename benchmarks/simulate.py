"""Benchmark: the TALON runtime (talon.bridge executors) against the snnTorch model it reproduces.

Run:  PYTHONPATH=src python benchmarks/simulate.py [--steps 200] [--batch 32] [--repeats 5] [--threads 2]

Two networks with the same weights on both sides: a 784-512-512-10 snn.Leaky MLP (beta 0.9) and a small
conv SNN (Conv2d-Leaky-MaxPool-Linear-Leaky on 1x28x28). For each it times, on 2 threads:
  * snnTorch: the usual explicit-state loop over T steps, both in default (autograd) mode and under
    torch.inference_mode();
  * the executor called once per step (return_state=True, state passed back in), under inference_mode;
  * the executor's multi-step call run(x_seq) on the whole (T, B, ...) sequence, under inference_mode;
and prints the ratios to the targets (per-step <= 0.5, multi-step <= 0.25 of snnTorch's time).
It also prints two floors: the model's own Linear/Conv/Pool calls replayed step by step (what a
bit-exact per-step runtime must spend) and the same calls batched over all T steps (what any runtime
that batches stateless stages across time must spend on the dense products).
Each timing is the minimum over `--repeats` rounds in which the four contenders take turns, so that on
a shared machine they see the same background load (the minimum is the least noisy estimate).
It also checks that the executor's spikes equal snnTorch's, so a fast but wrong runtime cannot pass.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import snntorch as snn

from talon import ir
from talon.bridge import ir_to_torch

PER_STEP_TARGET, MULTI_STEP_TARGET = 0.5, 0.25


def lif_node(beta: float, threshold: float = 1.0) -> ir.LIF:
    """snn.Leaky(beta) as an IR LIF: tau = dt/(1-beta) in float64 from the float32 beta, gain 1."""
    b = np.float64(np.float32(beta))
    tau = 1.0 / (1.0 - b)
    return ir.LIF(tau=tau, r=tau, v_leak=0.0, v_threshold=threshold, reset_mode="subtract")


def affine(layer: nn.Linear) -> ir.Affine:
    return ir.Affine(weight=layer.weight.detach().numpy(), bias=layer.bias.detach().numpy())


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(784, 512), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(512, 512), snn.Leaky(beta=0.9)
        self.fc3, self.lif3 = nn.Linear(512, 10), snn.Leaky(beta=0.9)
        with torch.no_grad():  # enough activity that every layer spikes
            self.fc1.weight.mul_(4)
            self.fc2.weight.mul_(6)
            self.fc3.weight.mul_(6)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        m1, m2, m3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        out = []
        for x in xs:
            s1, m1 = self.lif1(self.fc1(x), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            s3, m3 = self.lif3(self.fc3(s2), m3)
            out.append(s3)
        return torch.stack(out)

    def graph(self) -> ir.Graph:
        nodes = {
            "input": ir.Input(shape=(784,)),
            "fc1": affine(self.fc1), "lif1": lif_node(0.9),
            "fc2": affine(self.fc2), "lif2": lif_node(0.9),
            "fc3": affine(self.fc3), "lif3": lif_node(0.9),
            "output": ir.Output(),
        }
        names = list(nodes)
        return ir.Graph(nodes, list(zip(names, names[1:])))


class ConvSNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.lif1 = nn.Conv2d(1, 12, 5), snn.Leaky(beta=0.9)
        self.pool, self.flatten = nn.MaxPool2d(2), nn.Flatten()
        self.fc, self.lif2 = nn.Linear(12 * 12 * 12, 10), snn.Leaky(beta=0.9)
        with torch.no_grad():
            self.conv.weight.mul_(3)
            self.fc.weight.mul_(6)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        m1, m2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for x in xs:
            s1, m1 = self.lif1(self.conv(x), m1)
            s2, m2 = self.lif2(self.fc(self.flatten(self.pool(s1))), m2)
            out.append(s2)
        return torch.stack(out)

    def graph(self) -> ir.Graph:
        c = self.conv
        nodes = {
            "input": ir.Input(shape=(1, 28, 28)),
            "conv": ir.Conv2d(weight=c.weight.detach().numpy(), bias=c.bias.detach().numpy()),
            "lif1": lif_node(0.9),
            "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
            "flatten": ir.Flatten(),
            "fc": affine(self.fc), "lif2": lif_node(0.9),
            "output": ir.Output(),
        }
        names = list(nodes)
        return ir.Graph(nodes, list(zip(names, names[1:])))


def interleaved_best(fns: dict[str, tuple[Callable[[], object], bool]], repeats: int) -> dict[str, float]:
    """Minimum wall time of each fn over `repeats` rounds, the contenders taking turns in every round
    so that they all see the same background load. The bool says whether to run under inference_mode."""
    def timed(fn: Callable[[], object], inference: bool) -> float:
        ctx = torch.inference_mode() if inference else torch.enable_grad()
        with ctx:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

    for fn, inference in fns.values():  # warm-up: allocator, kernel selection
        timed(fn, inference)
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, (fn, inference) in fns.items():
            best[name] = min(best[name], timed(fn, inference))
    return best


def stateless_floor(model: nn.Module, xs: torch.Tensor) -> Callable[[], object]:
    """Replay, step by step, only the model's synaptic/pooling calls on the inputs they saw.

    Any runtime that reproduces snnTorch bit for bit must make these very calls (a different algorithm
    would round differently), so their time is a floor under the per-step executor's time.
    """
    captured: list[tuple[nn.Module, torch.Tensor]] = []
    kinds = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.Flatten)
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured.append((mod, inp[0])))
             for m in model.modules() if isinstance(m, kinds)]
    with torch.inference_mode():
        model(xs)
    for h in hooks:
        h.remove()
    return lambda: [mod(inp) for mod, inp in captured]


def batched_floor(model: nn.Module, xs: torch.Tensor) -> Callable[[], object]:
    """The same synaptic/pooling calls, each applied once to all T steps stacked as one (T*B, ...) batch.

    This is the least any runtime can spend on the dense products when it batches stateless stages
    across time (as run() does): one big matrix product per layer, at the machine's peak rate.
    """
    per_module: dict[nn.Module, list[torch.Tensor]] = {}
    kinds = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.Flatten)
    hooks = [m.register_forward_hook(lambda mod, inp, out: per_module.setdefault(mod, []).append(inp[0]))
             for m in model.modules() if isinstance(m, kinds)]
    with torch.inference_mode():
        model(xs)
    for h in hooks:
        h.remove()
    stacked = [(mod, torch.cat(inputs)) for mod, inputs in per_module.items()]
    return lambda: [mod(inp) for mod, inp in stacked]


def bench(label: str, model: nn.Module, xs: torch.Tensor, repeats: int) -> dict[str, float]:
    executor = ir_to_torch(model.graph(), return_state=True)

    def per_step() -> torch.Tensor:
        state, outs = None, []
        for x in xs:
            out, state = executor(x, state)
            outs.append(out)
        return torch.stack(outs)

    def snn_default() -> torch.Tensor:
        return model(xs)

    with torch.inference_mode():
        ref = model(xs)
        got_step, (got_seq, _) = per_step(), executor.run(xs)
    assert torch.equal(got_step, ref), f"{label}: per-step spikes differ from snnTorch"
    assert torch.equal(got_seq, ref), f"{label}: multi-step spikes differ from snnTorch"
    rate = float(ref.mean())

    times = interleaved_best(
        {
            "snn_grad": (snn_default, False),
            "snn_inf": (snn_default, True),
            "step": (per_step, True),
            "seq": (lambda: executor.run(xs), True),
            "floor": (stateless_floor(model, xs), True),
            "floor_batched": (batched_floor(model, xs), True),
        },
        repeats,
    )
    t_snn_grad, t_snn_inf, t_step, t_seq = times["snn_grad"], times["snn_inf"], times["step"], times["seq"]

    print(f"\n== {label}: T={xs.shape[0]}, B={xs.shape[1]}, output spike rate {rate:.3f}, spikes identical to snnTorch")
    print(f"  snnTorch loop, default (autograd) mode : {t_snn_grad * 1e3:8.1f} ms")
    print(f"  snnTorch loop, inference_mode          : {t_snn_inf * 1e3:8.1f} ms")
    print(f"  executor, one call per step            : {t_step * 1e3:8.1f} ms")
    print(f"  executor, run(x_seq) multi-step        : {t_seq * 1e3:8.1f} ms")
    t_floor = times["floor"]
    print(f"  floor: snnTorch's own Linear/Conv/Pool calls alone, per step: {t_floor * 1e3:8.1f} ms "
          f"({t_floor / t_snn_grad:.2f} of snnTorch default, {t_floor / t_snn_inf:.2f} of inference_mode)")
    t_floor_b = times["floor_batched"]
    print(f"  floor: the same calls batched over all T steps at once:    {t_floor_b * 1e3:8.1f} ms "
          f"({t_floor_b / t_snn_grad:.2f} of snnTorch default, {t_floor_b / t_snn_inf:.2f} of inference_mode)")
    for name, t, target in (("per-step", t_step, PER_STEP_TARGET), ("multi-step", t_seq, MULTI_STEP_TARGET)):
        r_grad, r_inf = t / t_snn_grad, t / t_snn_inf
        verdict = "met" if r_grad <= target else "NOT met"
        print(
            f"  {name:10s} ratio vs snnTorch default: {r_grad:5.2f} (target <= {target}: {verdict}); "
            f"vs snnTorch inference_mode: {r_inf:5.2f}"
        )
    return {"step": t_step / t_snn_grad, "seq": t_seq / t_snn_grad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mlp = MLP()
    xs = torch.rand(args.steps, args.batch, 784)
    bench("784-512-512-10 Leaky MLP", mlp, xs, args.repeats)
    conv = ConvSNN()
    xs = torch.rand(args.steps, args.batch, 1, 28, 28)
    bench("Conv2d-Leaky-MaxPool-Linear-Leaky (1x28x28)", conv, xs, args.repeats)


if __name__ == "__main__":
    main()
