"""Event-camera demo: synthetic gestures as real event files -> snnTorch conv SNN -> TALON -> `talon eval`.

1. writes a small gesture-like event data set (talon.io.synthetic: bars moving right, left, down and a
   circling blob on a 32x32 sensor) as Prophesee EVT3 files in tonic's layout, DIR/{train,test}/<class>/;
2. reads them back with talon.io (expelliarmus underneath) and frames them into `--steps` bins of
   `--dt` microseconds (2 polarity channels);
3. trains a small convolutional SNN with snnTorch (Conv2d -> Leaky -> MaxPool -> Linear -> Leaky);
4. exports it to TALON IR and evaluates it with `talon eval` on the test files, in float and in the
   hardware's fixed point (accuracy, per-class accuracy, confusion matrix, agreement, spikes, energy).

    python examples/event_gestures.py [--out DIR] [--epochs N] [--train-per-class N] ...

About a minute on 2 cores with the defaults. Prints where it wrote the model, the JSON results and the plot.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    p.add_argument("--train-per-class", type=int, default=40)
    p.add_argument("--test-per-class", type=int, default=15)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--steps", type=int, default=20, help="time bins per recording")
    p.add_argument("--dt", type=int, default=5000, help="microseconds per time bin")
    p.add_argument("--format", default="evt3", choices=["evt3", "evt2", "dat", "hdf5"], help="event file format to write")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_model(beta: float = 0.9):
    import snntorch as snn
    import torch.nn as nn

    class GestureSNN(nn.Module):
        """(2, 32, 32) event frames -> 8 conv channels (LIF) -> max-pool -> 4 LIF outputs; one call is one step."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(2, 8, 5, stride=2, padding=2)
            self.lif1 = snn.Leaky(beta=beta)
            self.pool = nn.MaxPool2d(2)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(8 * 8 * 8, 4)
            self.lif2 = snn.Leaky(beta=beta)

        def forward(self, x, mem1=None, mem2=None):
            if mem1 is None:
                mem1 = self.lif1.init_leaky()
            if mem2 is None:
                mem2 = self.lif2.init_leaky()
            spk1, mem1 = self.lif1(self.conv1(x), mem1)
            spk2, mem2 = self.lif2(self.fc(self.flatten(self.pool(spk1))), mem2)
            return spk2, mem1, mem2

    return GestureSNN()


def load_frames(folder: str, steps: int, dt: int):
    """(T, N, 2, 32, 32) frames and (N,) labels of every file under `folder` (talon.io)."""
    import numpy as np

    from talon import io

    ds = io.EventFolder(folder)
    frames = [io.events_to_frames(ev, (32, 32, 2), dt=dt, steps=steps) for ev, _ in ds]
    return np.stack(frames, axis=1), np.asarray(ds.targets)


def train(model, x, y, *, epochs: int, seed: int, log) -> None:
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    for epoch in range(epochs):
        perm = torch.randperm(x.shape[1])
        total = 0.0
        for i in range(0, len(perm), 16):
            idx = perm[i : i + 16]
            mem1 = mem2 = None
            loss = 0.0
            for t in range(x.shape[0]):
                _, mem1, mem2 = model(x[t, idx], mem1, mem2)
                loss = loss + loss_fn(mem2, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) / x.shape[0]
        log(f"  epoch {epoch + 1}/{epochs}: loss {total / max(1, (len(perm) + 15) // 16):.3f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    out = args.out or tempfile.mkdtemp(prefix="talon_gestures_")
    os.makedirs(out, exist_ok=True)

    import torch

    from talon import ir
    from talon.bridge import to_ir
    from talon.cli import cli
    from talon.io.synthetic import CLASSES, write_gesture_dataset

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    train_dir, test_dir = os.path.join(out, "train"), os.path.join(out, "test")
    n_train = len(write_gesture_dataset(train_dir, args.train_per_class, format=args.format, seed=args.seed))
    n_test = len(write_gesture_dataset(test_dir, args.test_per_class, format=args.format, seed=args.seed + 1))
    log(f"data: {n_train} train / {n_test} test {args.format.upper()} recordings of {', '.join(CLASSES)} in {out} ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    x_train, y_train = load_frames(train_dir, args.steps, args.dt)
    model = build_model()
    log(f"train: snnTorch conv SNN on {args.steps} bins of {args.dt} us, {args.epochs} epochs")
    train(model, x_train, y_train, epochs=args.epochs, seed=args.seed, log=log)
    model.eval()
    log(f"train: done in {time.perf_counter() - t0:.1f} s")

    model_path = os.path.join(out, "gestures.t1c")
    ir.write(model_path, to_ir(model, torch.zeros(1, 2, 32, 32)))
    results, plot = os.path.join(out, "eval.json"), os.path.join(out, "confusion.png")
    command = ["eval", model_path, test_dir, "--mode", "fixed", "--steps", str(args.steps), "--dt", str(args.dt), "-o", results, "--plot", plot]
    log("evaluate: talon " + " ".join(command))
    code = cli.main(args=command, prog_name="talon", standalone_mode=False)
    log(f"done in {time.perf_counter() - started:.1f} s; model {model_path}, results {results}, plot {plot}")
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
