"""Matplotlib plots of simulations, profiles and mappings. Each returns a `matplotlib.figure.Figure`.

Figures are built without pyplot (no global state, no GUI backend; they render with Agg), so they work
headless and in notebooks alike. `save_figure(fig, path)` writes PNG/SVG/PDF by suffix. Arrays may be
numpy arrays or CPU torch tensors (converted with numpy.asarray; torch is never imported here).

- spike_raster(spikes)          spikes of recorded layers over time (one sample)
- firing_rates(rates)           per-layer firing rate bars
- energy_breakdown(profile)     energy by operation kind and by layer (a backend ProfileResult)
- memory_breakdown(graph)       weights / activations / state, and weight bytes per layer
- core_utilisation(mapping)     neuron and weight-memory use per core, drawn on the mesh
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def _figure(width: float = 8.0, height: float = 4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 120) -> str:
    """Write `fig` to `path` (format from the suffix: .png, .svg, .pdf); returns the path."""
    from talon.errors import TalonUsageError

    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    if suffix not in ("png", "svg", "pdf", "jpg", "jpeg"):
        raise TalonUsageError(f"cannot save a plot as {path!r}: use a .png, .svg or .pdf file name")
    from talon.ir._atomic import atomic_path

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=suffix)
    return path


def _category_ticks(ax: Any, labels: list[str]) -> None:
    """Category tick labels that never run into each other: slanted and anchored at their tick once
    they are many or long (matplotlib centres a rotated label on its tick, so neighbours overlap)."""
    crowded = len(labels) > 4 or sum(len(t) for t in labels) > 28
    ax.set_xticks(range(len(labels)), labels, rotation=35 if crowded else 0, ha="right" if crowded else "center", rotation_mode="anchor" if crowded else "default")


def _headroom(ax: Any, top: float, frac: float = 0.15) -> None:
    """Room above the tallest bar for its annotation, so neither touches the frame."""
    ax.set_ylim(0, (top if top > 0 else 1.0) * (1 + frac))


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


# -- spikes -------------------------------------------------------------------------------------------------

def spike_raster(spikes: Any, *, sample: int = 0, max_neurons: int = 200, layers: list[str] | None = None, title: str | None = None):
    """Raster of spikes: `spikes` is a SimulationResult (its recorded `spikes`) or {layer: (T, B, *shape)}.

    One panel per layer (stacked in `layers` order, default the recorded order; shared time axis); at
    most `max_neurons` neurons per layer are drawn, evenly spaced over the layer (the first ones of a
    conv layer are one corner of one channel, rarely representative).
    """
    data = getattr(spikes, "spikes", spikes)
    if not isinstance(data, Mapping) or not data:
        from talon.errors import TalonUsageError

        raise TalonUsageError("spike_raster needs recorded spikes: simulate with record=True (or pass {layer: (T, B, ...)} arrays)")
    layers = [n for n in (layers or list(data)) if n in data]
    fig = _figure(9.0, max(2.5, 1.6 * len(layers) + 1.0))
    axes = fig.subplots(len(layers), 1, sharex=True, squeeze=False)[:, 0]
    for i, (ax, name) in enumerate(zip(axes, layers)):
        s = _array(data[name])
        if s.ndim < 2:
            s = s.reshape(s.shape[0], 1, -1)
        s = s[:, min(sample, s.shape[1] - 1)].reshape(s.shape[0], -1)
        n = s.shape[1]
        picked = np.unique(np.linspace(0, n - 1, max_neurons).round().astype(int)) if n > max_neurons else np.arange(n)
        shown = s[:, picked]
        t, k = np.nonzero(shown)
        size = float(np.clip(3000.0 / max(shown.shape[1], 1), 4.0, 80.0))
        ax.scatter(t, k, s=size, marker="|", color=_COLOURS[i % len(_COLOURS)], linewidths=1.0)
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, max(shown.shape[1], 1) - 0.5)
        label = f"{name}\nneuron index\n({n} neurons" + (f", {len(picked)} evenly spaced)" if n > max_neurons else ")")
        ax.set_ylabel(label, fontsize=8)
        rate = float(s.astype(bool).mean()) if s.size else 0.0
        ax.text(1.0, 1.0, f"rate {rate:.3f} spikes/neuron/step", transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    axes[-1].set_xlabel("timestep (steps of dt)")
    from matplotlib.ticker import MaxNLocator

    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or f"spike raster (sample {sample})")
    return fig


def firing_rates(rates: Any, *, title: str | None = None):
    """Per-layer firing rate bars: `rates` is a SimulationResult or {layer: rate in [0, 1]}; with a
    second mapping under the key form {"float": {...}, "fixed": {...}} the bars are grouped."""
    data = getattr(rates, "firing_rates", rates)
    if data and all(isinstance(v, Mapping) for v in data.values()):
        series = {str(k): dict(v) for k, v in data.items()}
    else:
        series = {"rate": dict(data)}
    layers: list[str] = []
    for s in series.values():
        layers += [k for k in s if k not in layers]
    fig = _figure(max(5.0, 0.8 * len(layers) + 3), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(layers))
    for i, (label, s) in enumerate(series.items()):
        vals = [float(s.get(n, 0.0)) for n in layers]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=label, color=_COLOURS[i % len(_COLOURS)])
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:.3f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    _category_ticks(ax, layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    top = max([float(v) for s in series.values() for v in s.values()] + [0.01])
    ax.set_ylim(0, min(1.0, top * 1.25) if top < 0.8 else 1.05)
    if len(series) > 1:
        ax.legend()
    ax.set_title(title or "per-layer firing rates")
    return fig


# -- energy and memory -------------------------------------------------------------------------------------

_ENERGY_PARTS = (("MAC", "mac_energy_uj"), ("spike (AC)", "spike_energy_uj"), ("neuron", "neuron_energy_uj"), ("elementwise", "elementwise_energy_uj"), ("SRAM", "sram_energy_uj"))


def energy_breakdown(profile: Any, *, title: str | None = None):
    """Energy of a backend ProfileResult: totals by operation kind (left) and stacked per layer (right)."""
    fig = _figure(10.0, 4.5)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2.2])
    # the network-on-chip part exists only for a mapped graph; it is part of the total either way
    parts = _ENERGY_PARTS + ((("NoC", "noc_energy_uj"),) if float(getattr(profile, "noc_energy_uj", 0.0)) > 0 else ())
    totals = [float(getattr(profile, attr)) for _, attr in parts]
    labels = [label for label, _ in parts]
    bars = ax1.bar(range(len(labels)), totals, color=_COLOURS[: len(labels)])
    total = sum(totals) or 1.0
    for b, v in zip(bars, totals):
        ax1.annotate(f"{100 * v / total:.0f}%", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    _category_ticks(ax1, labels)
    _headroom(ax1, max(totals))
    ax1.set_xlabel("operation kind")
    ax1.set_ylabel("energy per sample (µJ)")
    ax1.set_title(f"total {float(profile.energy_estimate_uj):.4g} µJ")

    layers = list(profile.layers.values())
    names = [lp.name for lp in layers]
    bottom = np.zeros(len(layers))
    for i, (label, attr) in enumerate(parts):
        vals = np.array([float(getattr(lp, attr, 0.0)) for lp in layers])
        ax2.bar(range(len(names)), vals, bottom=bottom, label=label, color=_COLOURS[i])
        bottom += vals
    _category_ticks(ax2, names)
    _headroom(ax2, float(bottom.max()) if bottom.size else 0.0, 0.25)  # the legend sits in the headroom
    ax2.set_xlabel("layer")
    ax2.set_ylabel("energy per sample (µJ)")
    ax2.legend(fontsize=8, ncols=min(len(parts), 3), loc="upper right")
    ax2.set_title("by layer")
    preset = getattr(profile, "energy_preset", "")
    fig.suptitle(title or f"energy breakdown ({getattr(profile, 'mode', '')}, {preset}, {getattr(profile, 'timesteps', '?')} steps, latency {float(getattr(profile, 'total_latency_us', 0.0)):.3g} µs)")
    return fig


def memory_breakdown(graph: Any, *, profile: Any = None, title: str | None = None):
    """Memory of a graph (talon.sdk.profile_graph): weights / peak activations / state (left, with the
    8- and 4-bit weight alternatives) and parameter bytes per layer (right)."""
    from talon.sdk import analyze_graph, profile_graph

    p = profile if profile is not None else profile_graph(graph)
    stats = analyze_graph(graph)
    fig = _figure(10.0, 4.5)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2.2])
    kinds = ["weights", "activations", "state"]
    vals = [p.weight_memory, p.activation_memory, p.state_memory]
    variants = [("as stored", p.weight_memory)] + [(f"{b}-bit", m) for b, m in sorted(p.quantized_weight_memory.items(), reverse=True)]
    x = np.arange(len(variants))
    bottom = np.zeros(len(variants))
    for i, (kind, v) in enumerate(zip(kinds, vals)):
        row = np.array([w for _, w in variants], float) if kind == "weights" else np.full(len(variants), float(v))
        ax1.bar(x, row, bottom=bottom, label=kind, color=_COLOURS[i])
        bottom += row
    ax1.set_xticks(x, [label for label, _ in variants])
    _headroom(ax1, float(bottom.max()))
    ax1.set_xlabel("weight precision")
    ax1.set_ylabel("memory (bytes)")
    ax1.legend(fontsize=8)
    ax1.set_title(f"total {p.total_memory:,} B")
    layers = [s for s in stats.layers.values() if s.param_bytes]
    ax2.bar(range(len(layers)), [s.param_bytes for s in layers], color=_COLOURS[0])
    _category_ticks(ax2, [s.name for s in layers])
    _headroom(ax2, float(max([s.param_bytes for s in layers], default=0)))
    ax2.set_xlabel("layer")
    ax2.set_ylabel("parameter memory (bytes)")
    ax2.set_title("parameters by layer")
    # weights are stored once for the model; activations and state are held for each sample in flight
    fig.suptitle(title or "memory breakdown (weights per model; activations and state for one sample)")
    return fig


# -- mapping -----------------------------------------------------------------------------------------------

def core_utilisation(mapping: Any, *, title: str | None = None):
    """Per-core utilisation drawn on the mesh. `mapping` is a talon.mapping.MappingResult (its
    `utilisation_grids()`), anything with `core_utilisation()` / `utilisation` giving
    {metric: (rows, cols) array}, a dict {metric: 2-D array of fractions in [0, 1]}, or one 2-D array."""
    grids = utilisation_grids(mapping)
    rows, cols = next(iter(grids.values())).shape
    # panels sized to the mesh's aspect; a value is written in each cell only while cells stay legible
    pw, ph = min(7.0, max(3.0, 0.42 * cols)), min(6.0, max(2.6, 0.42 * rows))
    fig = _figure((pw + 1.4) * len(grids), ph + 1.2)
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    for ax, (metric, grid) in zip(axes, grids.items()):
        im = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=max(1.0, float(np.nanmax(grid)) if grid.size else 1.0))
        rows, cols = grid.shape
        if cols <= 16 and rows * cols <= 256:
            size = 7 if cols <= 8 else 6
            for r in range(rows):
                for c in range(cols):
                    v = grid[r, c]
                    ax.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=size, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(0, cols, max(1, -(-cols // 16))))
        ax.set_yticks(range(0, rows, max(1, -(-rows // 16))))
        ax.set_xlabel("mesh column X (core)")
        ax.set_ylabel("mesh row Y (core)")
        # a mapping places each Input's elements beside the neurons (docs/mapping.md): say so
        ax.set_title("neurons + input elements" if metric == "neurons" else metric)
        fig.colorbar(im, ax=ax, fraction=0.046 * max(rows / max(cols, 1), 0.3), pad=0.03, label="% of core capacity",
                     format=lambda x, _: f"{100 * x:.0f}")
    fig.suptitle(title or "core utilisation (% of each core's capacity)")
    return fig


def utilisation_grids(mapping: Any) -> dict[str, np.ndarray]:
    """{metric: (rows, cols) float array} from a mapping result, a dict of grids or one grid."""
    from talon.errors import TalonUsageError

    for attr in ("utilisation_grids", "core_utilisation", "core_utilization", "utilisation", "utilization"):
        value = getattr(mapping, attr, None)
        if value is not None:
            mapping = value() if callable(value) else value
            break
    if isinstance(mapping, Mapping):
        grids = {str(k): np.atleast_2d(_array(v).astype(float)) for k, v in mapping.items()}
    else:
        grids = {"capacity": np.atleast_2d(_array(mapping).astype(float))}
    if not grids or any(g.ndim != 2 for g in grids.values()):
        raise TalonUsageError("core_utilisation needs (rows, cols) grids of per-core use")
    return grids
