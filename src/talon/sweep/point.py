"""The work of one sweep point, in pieces a worker can run alone (in-process or as Ray tasks).

`prepare` converts the model for the point (batch norms folded, Affine layers to SpikingAffine with
`weight_bits` weights and `accumulator_bits` accumulators, weights snapped to the grid) and maps it on the
point's hardware: a model that does not fit is a result (fits=False and the reason), not an error.
`run_shard` simulates one shard of the data set (a (T, B, *S) block of already-encoded samples) on the
backend and prices it: the predictions, and the sums of spikes, energy and latency over its samples.
Both are pure functions of their arguments, so a retried task returns the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from talon.errors import MappingError, TalonError


@dataclass
class Prepared:
    """A point converted and mapped: `graph` is None when it does not fit (`reason` says why)."""

    graph: Any
    fits: bool
    reason: str | None
    mapping: dict[str, Any]
    accumulator_bits: list[int]


def hardware_spec(settings: dict[str, Any]) -> Any:
    """The point's HardwareSpec: its preset with the swept mesh, neurons per core and weight width."""
    from talon.mapping.hardware import preset

    overrides: dict[str, Any] = {"weight_bits": settings["weight_bits"]}
    if settings.get("mesh"):
        overrides["mesh"] = tuple(int(d) for d in settings["mesh"].split("x"))
    if settings.get("neurons_per_core"):
        overrides["neurons_per_core"] = settings["neurons_per_core"]
    return preset(settings["hardware"], **overrides)


def fixed_config(settings: dict[str, Any]) -> Any:
    """The fixed-point datapath of layers that are not SpikingAffine (conv, pooling): the swept widths."""
    from talon.backend.cpu.fixed import FixedPointConfig

    kw = {"weight_bits": settings["weight_bits"]}
    if settings.get("accumulator_bits"):
        kw["accumulator_bits"] = settings["accumulator_bits"]
    return FixedPointConfig(**kw)


def prepare(graph: Any, settings: dict[str, Any]) -> Prepared:
    """Convert and map `graph` for one point; a conversion or mapping refusal is recorded, not raised."""
    from talon.mapping import map_graph
    from talon.pipeline import fold_for_hardware
    from talon.sdk import convert_to_spiking, quantize_weights

    try:
        hw, _ = fold_for_hardware(graph)
        hw = quantize_weights(convert_to_spiking(hw, settings["weight_bits"], settings.get("accumulator_bits")), settings["weight_bits"])
    except TalonError as exc:
        return Prepared(None, False, f"convert: {exc}", {}, [])
    acc = sorted({int(n.accumulator_bits) for n in hw.nodes.values() if n.type_name == "SpikingAffine"})
    try:
        spec = hardware_spec(settings)
        result = map_graph(hw, spec, settings["algorithm"])
    except MappingError as exc:
        return Prepared(None, False, f"map: {exc}", {}, acc)
    result.attach(hw)
    m = result.metrics
    mapping = {"hardware": spec.name, "mesh": f"{spec.mesh[0]}x{spec.mesh[1]}", "neurons_per_core": spec.neurons_per_core,
               "algorithm": result.algorithm, "cores": int(m["cores_used"]), "packet_hops_per_step": float(m["packet_hops_per_step"]),
               "max_neuron_utilisation": float(m["max_neuron_utilisation"]), "max_memory_utilisation": float(m["max_memory_utilisation"])}  # fmt: skip
    return Prepared(hw, True, None, mapping, acc)


@dataclass
class ShardResult:
    """One shard's predictions and its sums over samples (spikes, energy in µJ, latency in µs)."""

    predictions: np.ndarray
    spikes: float
    energy_uj: float
    latency_us: float


def run_shard(graph: Any, x: np.ndarray, mode: str, *, batch_size: int, readout: Callable[[np.ndarray], np.ndarray], output: str,
              energy_preset: str, calibration: np.ndarray | None = None, config: Any = None, backend: str = "cpu") -> ShardResult:  # fmt: skip
    """Simulate the (T, N, *S) shard `x` on `graph` in `mode`, `batch_size` samples at a time, and price it."""
    from talon.backend import get_backend

    be = get_backend(backend)
    T, N = x.shape[:2]
    preds, spikes, energy, latency = [], 0.0, 0.0, 0.0
    kw = {"calibration_inputs": calibration, "compare": False, "fixed_config": config} if mode == "fixed" else {}
    for i in range(0, N, batch_size):
        xb = x[:, i : i + batch_size]
        B = xb.shape[1]
        sim = be.simulate(graph, xb, T, mode=mode, progress=False, **kw)
        prof = be.profile(graph, xb, T, energy_preset=energy_preset, mode=mode, simulation=sim, progress=False)
        out = np.asarray(sim.outputs[output].detach().cpu(), dtype=np.float64).reshape(T, B, -1)
        pred = np.asarray(readout(out)).reshape(-1).astype(np.int64)
        if pred.shape != (B,):
            raise TalonError(f"the readout returned {pred.size} classes for a batch of {B} samples; it must return one class per sample")
        preds.append(pred)
        spikes += float(sim.total_spikes)
        energy += float(prof.energy_estimate_uj) * B
        latency += float(prof.total_latency_us) * B
    return ShardResult(np.concatenate(preds), spikes, energy, latency)


def readout_function(readout: str | Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The class decision of talon.eval: "count" (argmax of summed outputs), "last", or a function."""
    if callable(readout):
        return readout
    if readout == "count":
        return _count
    if readout == "last":
        return _last
    raise TalonError(f"unknown readout {readout!r}; readouts: count, last, or a function of the (T, B, K) outputs")


def _count(out: np.ndarray) -> np.ndarray:
    return out.sum(axis=0).argmax(axis=1)


def _last(out: np.ndarray) -> np.ndarray:
    return out[-1].argmax(axis=1)
