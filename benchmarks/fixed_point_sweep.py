"""How fixed-point spike agreement moves with weight_bits, accumulator_bits and activation_bits.

Run:  PYTHONPATH=src python benchmarks/fixed_point_sweep.py [--epochs 5] [--steps 20] [--test-samples 200]

Two real models, trained here with snnTorch on scikit-learn's digits (8x8 images, rate coded):
  * digits_mlp: the end-to-end demo's network (examples/end_to_end.py: 64-128-10 snn.Leaky, beta 0.9);
  * digits_conv: a conv SNN, Conv2d(1, 8, 3, padding 1) - Leaky - MaxPool2d(2) - Flatten - Linear(128, 10) - Leaky.
Each is exported with talon.bridge.to_ir and simulated with the CPU backend in fixed point
(FixedPointConfig: one width changed at a time from the defaults), calibrated on 256 training images,
on the same rate-coded test images as its float run. It prints a markdown table (docs/fixed_point.md,
section 8, holds one): per-layer agreement (fraction of (step, sample, neuron) positions where the fixed
spike equals the float spike) and the accuracy of both runs (spike-count decoding).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import end_to_end as demo  # noqa: E402  (the demo's data, model, coding and training)

SWEEP = {
    "weight_bits": (4, 6, 8, 12, 16),
    "accumulator_bits": (12, 16, 24, 32, 48),
    "activation_bits": (4, 6, 8, 12, 16),
}


def build_conv(beta: float):
    import snntorch as snn
    import torch.nn as nn

    class DigitsConvSNN(nn.Module):
        """1x8x8 -> Conv2d(8, 3x3) LIF -> max pool 2 -> 128 -> 10 LIF; one call is one timestep."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.lif1 = snn.Leaky(beta=beta)
            self.pool = nn.MaxPool2d(2)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(128, 10)
            self.lif2 = snn.Leaky(beta=beta)

        def forward(self, x, mem1=None, mem2=None):
            if mem1 is None:
                mem1 = self.lif1.init_leaky()
            if mem2 is None:
                mem2 = self.lif2.init_leaky()
            spk1, mem1 = self.lif1(self.conv(x), mem1)
            spk2, mem2 = self.lif2(self.fc(self.flat(self.pool(spk1))), mem2)
            return spk2, mem1, mem2

    return DigitsConvSNN()


def accuracy(sim, labels: np.ndarray) -> float:
    out = sim.output.detach().numpy()
    return float((out.sum(axis=0).reshape(out.shape[1], -1).argmax(axis=1) == labels).mean())


def sweep(name: str, graph, test: torch.Tensor, calib: torch.Tensor, labels: np.ndarray) -> list[str]:
    from talon.backend import get_backend
    from talon.backend.cpu import FixedPointConfig

    cpu = get_backend("cpu")
    acc_float = accuracy(cpu.simulate(graph, test, mode="float"), labels)
    rows = []
    for field, widths in SWEEP.items():
        for w in widths:
            try:
                sim = cpu.simulate(graph, test, mode="fixed", fixed_config=FixedPointConfig(**{field: w}), calibration_inputs=calib)
            except Exception as exc:  # noqa: BLE001 - a configuration the plan refuses is a row too
                rows.append(f"| {name} | {field} = {w} | refused: {type(exc).__name__}: {str(exc)[:80]} | | |")
                continue
            layers = ", ".join(f"{n} {a:.4f}" for n, a in sim.agreement.items())
            rows.append(f"| {name} | {field} = {w} | {layers} | {accuracy(sim, labels):.2%} | {acc_float:.2%} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--test-samples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    from talon.bridge import to_ir

    started = time.perf_counter()
    x_train, x_test, y_train, y_test = demo.load_digits_split(args.seed)
    x_test, y_test = x_test[: args.test_samples], y_test[: args.test_samples]
    gen = torch.Generator().manual_seed(args.seed + 1)
    test = demo.rate_code(torch.as_tensor(x_test), args.steps, gen)
    calib = demo.rate_code(torch.as_tensor(x_train[:256]), args.steps, gen)
    quiet = lambda msg: None  # noqa: E731

    torch.manual_seed(args.seed)
    mlp = demo.build_model(128, 0.9)
    demo.train(mlp, x_train, y_train, epochs=args.epochs, steps=args.steps, seed=args.seed, log=quiet)
    mlp.eval()
    rows = sweep("digits_mlp", to_ir(mlp, torch.zeros(1, 64)), test, calib, y_test)

    torch.manual_seed(args.seed)
    conv = build_conv(0.9)
    img = lambda x: x.reshape(*x.shape[:-1], 1, 8, 8)  # noqa: E731
    demo.train(_Flat2Img(conv), x_train, y_train, epochs=args.epochs, steps=args.steps, seed=args.seed, log=quiet)
    conv.eval()
    rows += sweep("digits_conv", to_ir(conv, torch.zeros(1, 1, 8, 8)), img(test), img(calib), y_test)

    print(f"{len(y_test)} test images x {args.steps} steps, {args.epochs} training epochs; defaults weight_bits 8, "
          f"accumulator_bits 32, activation_bits 8 ({time.perf_counter() - started:.0f} s)\n")
    print("| model | changed width | fixed/float spike agreement per layer | accuracy fixed | accuracy float |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


class _Flat2Img(torch.nn.Module):
    """The conv model behind the demo's training loop, which feeds (B, 64) vectors."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x, mem1=None, mem2=None):
        return self.inner(x.reshape(x.shape[0], 1, 8, 8), mem1, mem2)


if __name__ == "__main__":
    sys.exit(main())
