"""Benchmark: the TALON runtime (talon.bridge executors) against the snnTorch model it reproduces.

Run:  PYTHONPATH=src python benchmarks/simulate.py [--steps 200] [--batch 32] [--repeats 7] [--threads 2] [--no-compile]

Two networks with the same weights on both sides: a 784-512-512-10 snn.Leaky MLP (beta 0.9) and a small
conv SNN (Conv2d-Leaky-MaxPool-Linear-Leaky on 1x28x28). For each it times, under inference_mode:
  * snnTorch: the usual explicit-state loop over T steps (also in default autograd mode), and the same
    step compiled with torch.compile (checked spike for spike; skipped when the compiler is missing);
  * the executor called once per step (return_state=True, state passed back in);
  * the executor's multi-step call run(x_seq) on the whole (T, B, ...) sequence;
  * two floors: the model's own Linear/Conv/Pool calls replayed step by step (what a bit-exact per-step
    runtime must spend) and the same calls batched over all T steps (what run() must spend on them).
The contenders take turns in every round (`--repeats` rounds after a warm-up), so that on a shared
machine they see the same background load. Every ratio is printed as the median of the per-round ratios
and as minimum over minimum, with the floor it is measured against beside it. The load average is
printed with the numbers. Any spike that differs from snnTorch's raises (a fast wrong runtime fails).

Threading policy: per-step work on a (32, 512) tensor is microseconds long, so OpenMP workers that
busy-wait between ops steal the cores other processes need (10-17x slower on a loaded 2-core machine).
This script sets OMP_WAIT_POLICY=PASSIVE (unless already set) before torch starts, and uses `--threads`
intra-op threads (default 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see the docstring)
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import snntorch as snn

from talon import ir
from talon.bridge import ir_to_torch

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

    def init_state(self) -> tuple:
        return self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()

    def step(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        m1, m2, m3 = state
        s1, m1 = self.lif1(self.fc1(x), m1)
        s2, m2 = self.lif2(self.fc2(s1), m2)
        s3, m3 = self.lif3(self.fc3(s2), m3)
        return s3, (m1, m2, m3)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        state, out = self.init_state(), []
        for x in xs:
            s, state = self.step(x, state)
            out.append(s)
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

    def init_state(self) -> tuple:
        return self.lif1.init_leaky(), self.lif2.init_leaky()

    def step(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        m1, m2 = state
        s1, m1 = self.lif1(self.conv(x), m1)
        s2, m2 = self.lif2(self.fc(self.flatten(self.pool(s1))), m2)
        return s2, (m1, m2)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        state, out = self.init_state(), []
        for x in xs:
            s, state = self.step(x, state)
            out.append(s)
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


def interleaved(fns: dict[str, tuple[Callable[[], object], bool]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each fn over `repeats` rounds, the contenders taking turns in every round so that
    they all see the same background load. The bool says whether to run under inference_mode."""
    def timed(fn: Callable[[], object], inference: bool) -> float:
        ctx = torch.inference_mode() if inference else torch.enable_grad()
        with ctx:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

    for fn, inference in fns.values():  # warm-up: allocator, kernel selection
        timed(fn, inference)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, (fn, inference) in fns.items():
            times[name].append(timed(fn, inference))
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float]:
    """(median of the per-round ratios a/b, min(a)/min(b))."""
    return statistics.median(x / y for x, y in zip(times[a], times[b])), min(times[a]) / min(times[b])


def load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:  # pragma: no cover - not on every platform
        return "load average unavailable"


def compiled_snn(model: nn.Module, xs: torch.Tensor) -> Callable[[], torch.Tensor] | None:
    """snnTorch's step under torch.compile (the loop over T stays in Python), or None without a compiler."""
    try:
        step = torch.compile(model.step, dynamic=False)

        def run() -> torch.Tensor:
            state, out = model.init_state(), []
            for x in xs:
                s, state = step(x, state)
                out.append(s)
            return torch.stack(out)

        with torch.inference_mode():
            run()
        return run
    except Exception as exc:  # noqa: BLE001 - any compiler failure means "not measured", said aloud
        print(f"  (torch.compile unavailable here: {type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        return None


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


def bench(label: str, model: nn.Module, xs: torch.Tensor, repeats: int, use_compile: bool) -> None:
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
    if not torch.equal(got_step, ref):
        raise SystemExit(f"FAIL {label}: per-step spikes differ from snnTorch")
    if not torch.equal(got_seq, ref):
        raise SystemExit(f"FAIL {label}: multi-step spikes differ from snnTorch")
    rate = float(ref.mean())
    fns = {
        "snn_grad": (snn_default, False),
        "snn_inf": (snn_default, True),
        "step": (per_step, True),
        "seq": (lambda: executor.run(xs), True),
        "floor": (stateless_floor(model, xs), True),
        "floor_batched": (batched_floor(model, xs), True),
    }
    compiled = compiled_snn(model, xs) if use_compile else None
    if compiled is not None:
        with torch.inference_mode():
            if not torch.equal(compiled(), ref):
                raise SystemExit(f"FAIL {label}: torch.compile'd snnTorch spikes differ from eager snnTorch (not an exact contender)")
        fns["snn_compiled"] = (compiled, True)
    before = load()
    times = interleaved(fns, repeats)
    print(f"\n== {label}: T={xs.shape[0]}, B={xs.shape[1]}, output spike rate {rate:.3f}, spikes identical to snnTorch")
    print(f"  {repeats} rounds; before: {before}; after: {load()}")
    names = {
        "snn_grad": "snnTorch loop, default (autograd) mode", "snn_inf": "snnTorch loop, inference_mode",
        "snn_compiled": "snnTorch step under torch.compile", "step": "executor, one call per step",
        "seq": "executor, run(x_seq) multi-step", "floor": "floor: the model's products, per step",
        "floor_batched": "floor: the same products batched over T",
    }
    for key, text in names.items():
        if key in times:
            print(f"  {text:42s} median {statistics.median(times[key]) * 1e3:8.1f} ms   min {min(times[key]) * 1e3:8.1f} ms")
    rows = [("per-step / per-step floor", "step", "floor", 1.10), ("run() / batched floor", "seq", "floor_batched", 1.05)]
    if "snn_compiled" in times:
        rows.append(("run() / snnTorch compiled", "seq", "snn_compiled", 0.65))
    rows += [("per-step / snnTorch inference", "step", "snn_inf", None), ("run() / snnTorch inference", "seq", "snn_inf", None)]
    for text, a, b, target in rows:
        med, mn = ratio(times, a, b)
        goal = f"target <= {target}: {'met' if med <= target else 'NOT met'}" if target else "information"
        print(f"  {text:32s} median {med:5.2f}   min/min {mn:5.2f}   ({goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile contender")
    parser.add_argument("--mlp-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} intra-op threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    torch.manual_seed(0)
    mlp = MLP()
    xs = torch.rand(args.steps, args.batch, 784)
    bench("784-512-512-10 Leaky MLP", mlp, xs, args.repeats, not args.no_compile)
    if args.mlp_only:
        return
    conv = ConvSNN()
    xs = torch.rand(args.steps, args.batch, 1, 28, 28)
    bench("Conv2d-Leaky-MaxPool-Linear-Leaky (1x28x28)", conv, xs, args.repeats, not args.no_compile)


if __name__ == "__main__":
    main()
