"""TALON end to end: train a small SNN with snnTorch, carry it to (modelled) neuromorphic hardware.

    bash scripts/setup.sh && .venv/bin/python examples/end_to_end.py

1. trains a 64-128-10 leaky integrate-and-fire network with snnTorch on scikit-learn's digits data set
   (8x8 images shipped inside scikit-learn: nothing is downloaded), pixels rate-coded as spikes;
2. exports it to the TALON IR (talon.bridge.to_ir) and stamps it (talon.sdk.stamp_graph);
3. then talon.pipeline.run_pipeline, the same code as `talon pipeline`: lints and analyzes it,
   converts it to 8-bit SpikingAffine layers, maps it onto a 4x4 mesh of cores, compiles the hardware
   descriptor, simulates float and fixed-point on the test split (accuracy of both), profiles energy and
   latency, and writes the report folder (.t1c files, hardware descriptor, JSON summaries, HTML view,
   plots), whose path it prints.

Runs in well under two minutes on 2 CPU cores. --epochs / --steps / --test-samples shorten it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# A program chooses its threading policy (docs/performance.md): idle OpenMP workers sleep instead of
# spinning, which on a loaded 2-core machine made training 7-30x slower. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--steps", type=int, default=20, help="timesteps per sample (default 20)")
    p.add_argument("--hidden", type=int, default=128, help="hidden LIF neurons (default 128)")
    p.add_argument("--beta", type=float, default=0.9, help="membrane decay of every LIF layer (default 0.9)")
    p.add_argument("--bits", type=int, default=8, help="weight bits of the hardware graph (default 8)")
    p.add_argument("--neurons-per-core", type=int, default=64, help="neurons per core of the 4x4 mesh (default 64)")
    p.add_argument("--test-samples", type=int, default=None, help="simulate only this many test samples (default: the whole test split)")
    p.add_argument("--out", default=os.path.join("out", "end_to_end"), help="report folder (default out/end_to_end)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, initialisation and spike coding")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots and the HTML view (faster)")
    args = p.parse_args(argv)
    for name in ("epochs", "steps", "hidden", "bits", "neurons_per_core"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def load_digits_split(seed: int):
    """scikit-learn's digits (1,797 8x8 images, 10 classes), pixels scaled to [0, 1], 75/25 stratified split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def build_model(hidden: int, beta: float):
    import snntorch as snn
    import torch.nn as nn

    class DigitsSNN(nn.Module):
        """64 -> hidden LIF -> 10 LIF; one call is one timestep (the membranes are passed in and out)."""

        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(64, hidden)
            self.lif1 = snn.Leaky(beta=beta)
            self.fc2 = nn.Linear(hidden, 10)
            self.lif2 = snn.Leaky(beta=beta)

        def forward(self, x, mem1=None, mem2=None):
            if mem1 is None:
                mem1 = self.lif1.init_leaky()
            if mem2 is None:
                mem2 = self.lif2.init_leaky()
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            return spk2, mem1, mem2

    return DigitsSNN()


def rate_code(x, steps: int, generator=None):
    """(B, 64) intensities in [0, 1] -> (T, B, 64) Bernoulli spike trains."""
    import torch

    return (torch.rand((steps, *x.shape), generator=generator) < x).float()


def train(model, x_train, y_train, *, epochs: int, steps: int, seed: int, log) -> None:
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = torch.as_tensor(x_train), torch.as_tensor(y_train)
    bar = _progress(epochs)
    for epoch in range(epochs):
        perm = torch.randperm(len(x_all))
        total, batches = 0.0, 0
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            spikes = rate_code(x_all[idx], steps)
            mem1 = mem2 = None
            loss = 0.0
            for t in range(steps):
                _, mem1, mem2 = model(spikes[t], mem1, mem2)
                loss = loss + loss_fn(mem2, y_all[idx])  # membrane of the output layer, every step
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) / steps
            batches += 1
        if bar is not None:
            bar.update(1, description=f"training, loss {total / max(batches, 1):.3f}")
        else:
            log(f"  epoch {epoch + 1}/{epochs}: loss {total / max(batches, 1):.3f}")
    if bar is not None:
        bar.close()


class _Bar:
    def __init__(self, progress, task):
        self.progress, self.task = progress, task

    def update(self, n, description):
        self.progress.update(self.task, advance=n, description=description)

    def close(self):
        self.progress.stop()


def _progress(total: int):
    """A rich progress bar on a terminal only (None when output goes to a file or pipe)."""
    if not sys.stdout.isatty() or total <= 0:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    progress.start()
    return _Bar(progress, progress.add_task("training", total=total))


def snntorch_accuracy(model, spikes, labels) -> float:
    """Accuracy of the trained snnTorch model itself (spike counts of the output layer)."""
    import torch

    with torch.no_grad():  # not inference_mode: its tensors would stick in the neurons' buffers, which to_ir restores in place
        mem1 = mem2 = None
        counts = 0
        for t in range(spikes.shape[0]):
            spk, mem1, mem2 = model(spikes[t], mem1, mem2)
            counts = counts + spk
    return float((counts.argmax(-1).numpy() == labels).mean())


def export_graph(model, *, epochs: int, steps: int, hidden: int, seed: int):
    """The demo's stamped TALON graph of `model`, fed rate-coded spikes (so fc1 is priced per spike)."""
    import torch

    from talon.bridge import to_ir
    from talon.sdk import stamp_graph

    graph = to_ir(model, torch.zeros(1, 64), spiking_input=True)
    return stamp_graph(graph, notes="examples/end_to_end.py: snnTorch digits SNN", metadata={
        "dataset": "sklearn digits", "epochs": epochs, "steps": steps, "hidden": hidden, "seed": seed,
    })


def demo_hardware(neurons_per_core: int = 64):
    """The demo's target: a 4x4 mesh."""
    from talon.mapping import HardwareSpec

    return HardwareSpec(mesh=(4, 4), neurons_per_core=neurons_per_core, name=f"4x4 mesh, {neurons_per_core} neurons/core")


def write_untrained_files(out: str | os.PathLike):
    """The demo's float and 8-bit graph files from its model untrained, through the same export, stamp and
    pipeline as main(), on 4 test images of 4 steps: every stored array keeps its dtype and shape whatever the
    training, so their sizes are the trained demo's to a few bytes. Returns (graph, float file, 8-bit file)."""
    import torch

    from talon.pipeline import run_pipeline

    torch.manual_seed(0)
    _, x_test, _, y_test = load_digits_split(0)
    graph = export_graph(build_model(128, 0.9).eval(), epochs=10, steps=20, hidden=128, seed=0)
    spikes = rate_code(torch.as_tensor(x_test[:4]), 4, torch.Generator().manual_seed(1))
    run_pipeline(graph, out, name="digits_snn", inputs=spikes, labels=y_test[:4], weight_bits=8, hardware=demo_hardware(64),
                 plots=False, html=False, log=lambda msg: None)
    return graph, os.path.join(out, "digits_snn.t1c"), os.path.join(out, "digits_snn_int8.t1c")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, flush=True)

    import numpy as np
    import torch

    from talon.pipeline import run_pipeline

    torch.manual_seed(args.seed)
    x_train, x_test, y_train, y_test = load_digits_split(args.seed)
    if args.test_samples is not None:
        x_test, y_test = x_test[: args.test_samples], y_test[: args.test_samples]
    log(f"TALON end-to-end demo: digits ({len(x_train)} train / {len(x_test)} test images of 8x8), {args.steps} steps per image")

    t0 = time.perf_counter()
    model = build_model(args.hidden, args.beta)
    log(f"train: snnTorch 64-{args.hidden}-10 LIF network, {args.epochs} epoch(s)")
    train(model, x_train, y_train, epochs=args.epochs, steps=args.steps, seed=args.seed, log=log)
    model.eval()
    gen = torch.Generator().manual_seed(args.seed + 1)
    test_spikes = rate_code(torch.as_tensor(x_test), args.steps, gen)  # one fixed stimulus for every simulation
    calib_spikes = rate_code(torch.as_tensor(x_train[:256]), args.steps, gen)  # calibration: training images only
    acc_snntorch = snntorch_accuracy(model, test_spikes, y_test)
    log(f"train: done in {time.perf_counter() - t0:.1f} s; snnTorch test accuracy {acc_snntorch:.2%}")

    graph = export_graph(model, epochs=args.epochs, steps=args.steps, hidden=args.hidden, seed=args.seed)
    log(f"export: {len(graph.nodes)} nodes ({', '.join(n.type_name for n in graph.nodes.values())})")

    summary = run_pipeline(
        graph, args.out, name="digits_snn", inputs=test_spikes, labels=y_test, calibration_inputs=calib_spikes,
        weight_bits=args.bits, hardware=demo_hardware(args.neurons_per_core), plots=not args.no_plots, html=not args.no_plots, log=log,
    )
    acc = summary["accuracy"]
    energy = summary["energy"]
    log("")
    log(f"accuracy on {len(y_test)} test images: float {acc['float']:.2%}, {args.bits}-bit fixed point {acc['fixed']:.2%} (snnTorch {acc_snntorch:.2%})")
    agreement = summary["simulation"]["fixed_float_agreement"]
    log("fixed/float spike agreement per layer: " + ", ".join(f"{n} {a:.4f}" for n, a in agreement.items()))
    log(f"per image: {energy['energy_per_sample_uj']:.4g} uJ, {energy['latency_per_sample_us']:.4g} us ({energy['preset']} energy model)")
    log(f"report: {os.path.abspath(args.out)}  ({time.perf_counter() - started:.1f} s in all)")
    np.save(os.path.join(args.out, "test_labels.npy"), np.asarray(y_test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
