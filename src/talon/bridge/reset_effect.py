"""The measured effect of approximating neuron resets for NIR (talon.ir.nir_resets), on TALON's float runtime.

`to_nir(..., approximate_resets=True)` writes snnTorch's subtract reset (and zero_post) as NIR's reset to
v_reset. This module runs the true graph and the approximated one over the same fixed stimulus and compares
the spikes of every approximated neuron layer and the graph's outputs. talon.ir cannot import the runtime,
so importing talon.bridge registers `measure_reset_effect` as talon.ir's default measure.

The default stimulus: every graph input gets values drawn uniformly from [0, 1) (seeded), the range lint
assumes for inputs (spike trains, normalised pixels), for `steps` steps and `batch` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talon.bridge.executor import TransientStateObserver, ir_to_torch
from talon.ir.graph import Graph
from talon.ir.nir_resets import reset_approximation

__all__ = ["ResetEffect", "LayerAgreement", "measure_reset_effect"]


@dataclass(frozen=True)
class LayerAgreement:
    """One layer's outputs under the true and the approximated reset."""

    name: str
    agreement: float  # fraction of (step, sample, neuron) values that are identical
    true_spikes: int  # non-zero outputs of the true graph
    approx_spikes: int  # ... of the approximated graph
    max_abs_difference: float

    def to_dict(self) -> dict:
        return {"name": self.name, "agreement": self.agreement, "true_spikes": self.true_spikes,
                "approx_spikes": self.approx_spikes, "max_abs_difference": self.max_abs_difference}


@dataclass(frozen=True)
class ResetEffect:
    """The spike agreement between a graph and its NIR-reset approximation over a fixed stimulus."""

    steps: int
    batch: int
    seed: int
    layers: tuple[LayerAgreement, ...]  # the approximated neuron layers
    outputs: tuple[LayerAgreement, ...]  # the graph's outputs

    @property
    def exact(self) -> bool:
        return all(a.agreement == 1.0 for a in self.layers + self.outputs)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "batch": self.batch, "seed": self.seed, "stimulus": "uniform [0, 1)", "exact": self.exact,
                "layers": [a.to_dict() for a in self.layers], "outputs": [a.to_dict() for a in self.outputs]}

    def __str__(self) -> str:
        def part(a: LayerAgreement, what: str, count: str) -> str:
            return f"{a.name!r}: {100 * a.agreement:.1f}% of {what} agree ({a.true_spikes} {count} true, {a.approx_spikes} approximated)"

        body = "; ".join([part(a, "neuron-steps", "spikes") for a in self.layers]
                         + [part(a, "output values", "non-zero") for a in self.outputs])
        return (f"over {self.steps} steps of a seeded uniform [0, 1) stimulus ({self.batch} samples), {body}"
                + ("" if not self.exact else " (no spike changed on this stimulus)"))


def measure_reset_effect(true_graph: Graph, approx_graph: Graph | None = None, *, steps: int = 100, batch: int = 4,
                         seed: int = 0) -> ResetEffect:
    """Run both graphs on the default stimulus and compare the approximated layers and the outputs.

    approx_graph: default talon.ir.nir_resets.reset_approximation(true_graph)."""
    changed = reset_approximation(true_graph)[1]
    if approx_graph is None:
        approx_graph = reset_approximation(true_graph)[0]
    rng = np.random.default_rng(seed)
    xs = [torch.from_numpy(rng.random((steps, batch, *true_graph.nodes[n].shape), dtype=np.float32)) for n in true_graph.input_names]
    true_layers, true_out = _run(true_graph, xs, list(changed))
    approx_layers, approx_out = _run(approx_graph, xs, list(changed))
    layers = tuple(_agreement(n, true_layers[n], approx_layers[n]) for n in changed)
    outputs = tuple(_agreement(n, a, b) for n, a, b in zip(true_graph.output_names, true_out, approx_out))
    return ResetEffect(steps=steps, batch=batch, seed=seed, layers=layers, outputs=outputs)


def _run(graph: Graph, xs: list[torch.Tensor], watch: list[str]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    seen: dict[str, list[np.ndarray]] = {n: [] for n in watch}

    def observe(name: str, node, inputs, output, state) -> None:
        if name in seen:
            seen[name].append(output.detach().cpu().numpy())

    ex = ir_to_torch(graph, observer=TransientStateObserver(observe))  # keeps outputs (as numpy), never a state
    with torch.inference_mode():
        out = ex.run(*xs, batch_time=False)
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    return {n: np.stack(v) for n, v in seen.items()}, [o.cpu().numpy() for o in outs]


def _agreement(name: str, a: np.ndarray, b: np.ndarray) -> LayerAgreement:
    return LayerAgreement(name=name, agreement=float(np.mean(a == b)) if a.size else 1.0, true_spikes=int(np.count_nonzero(a)),
                          approx_spikes=int(np.count_nonzero(b)), max_abs_difference=float(np.max(np.abs(a - b))) if a.size else 0.0)
