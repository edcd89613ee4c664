"""The work of one sweep point, in pieces a worker can run alone (in-process or as Ray tasks).

`prepare` converts the model for the point (batch norms folded, Affine layers to SpikingAffine with
`weight_bits` weights and `accumulator_bits` accumulators, weights snapped to the grid) and maps it on the
point's hardware: a model that does not fit is a result (fits=False and the reason), not an error.
`run_shard` simulates one shard of the data set (a (T, B, *S) block of already-encoded samples) on the
backend: the predictions, and the activity counts (spikes, input events) summed over its samples, as
integers. `price` prices a point's shards together, as one run of the whole data set, so that energy and
latency per sample do not depend on the shard or batch size. All are pure functions of their arguments,
so a retried task returns the same numbers.
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
    fits: bool | None  # None: the conversion refused the point, so its fit was never checked
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
    except TalonError as exc:  # e.g. accumulators narrower than the weights: not a question of fitting the hardware
        return Prepared(None, None, f"convert: {exc}", {}, [])
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
    """One shard's predictions and its activity as exact integer counts, summed over its samples: spikes
    per spiking node and input events per spike-driven layer (what the energy and latency model reads)."""

    predictions: np.ndarray
    spike_counts: dict[str, int]
    input_events: dict[str, int]
    spike_inputs: dict[str, str]  # the Inputs every batch of the shard fed spikes to (talon.backend.spike_inputs)
    neurons: dict[str, int]
    steps: int

    @property
    def spikes(self) -> int:
        return int(sum(self.spike_counts.values()))


def run_shard(graph: Any, x: np.ndarray, mode: str, *, batch_size: int, readout: Callable[[np.ndarray], np.ndarray], output: str,
              calibration: np.ndarray | None = None, config: Any = None, backend: str = "cpu") -> ShardResult:  # fmt: skip
    """Simulate the (T, N, *S) shard `x` on `graph` in `mode`, `batch_size` samples at a time: the
    predictions and the activity counts (integers, so that any cut of the data set sums to the same)."""
    from talon.backend import get_backend
    from talon.eval import kept_calibration

    be = get_backend(backend)
    T, N = x.shape[:2]
    preds: list[np.ndarray] = []
    counts: dict[str, int] = {}
    events: dict[str, int] = {}
    spike_inputs: dict[str, str] | None = None
    neurons: dict[str, int] = {}
    kw = {"compare": False, "fixed_config": config} if mode == "fixed" else {}
    if mode == "fixed" and calibration is not None:  # calibrated once for every batch (else each batch on itself)
        kw.update(kept_calibration(be, graph, calibration))
    for i in range(0, N, batch_size):
        xb = x[:, i : i + batch_size]
        B = xb.shape[1]
        sim = be.simulate(graph, xb, T, mode=mode, progress=False, **kw)
        out = np.asarray(sim.outputs[output].detach().cpu(), dtype=np.float64).reshape(T, B, -1)
        pred = np.asarray(readout(out)).reshape(-1).astype(np.int64)
        if pred.shape != (B,):
            raise TalonError(f"the readout returned {pred.size} classes for a batch of {B} samples; it must return one class per sample")
        preds.append(pred)
        _add(counts, sim.spike_counts)
        _add(events, sim.input_events)
        spike_inputs = dict(sim.spike_inputs) if spike_inputs is None else {k: v for k, v in spike_inputs.items() if k in sim.spike_inputs}
        neurons = dict(sim.neurons)
    return ShardResult(np.concatenate(preds), counts, events, spike_inputs or {}, neurons, int(T))


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + int(v)


@dataclass
class Priced:
    """Energy and latency per sample of a whole data set's run, and what priced it."""

    energy_uj: float
    latency_us: float
    spikes_per_sample: float
    pricing: dict[str, Any]


def price(graph: Any, shards: list[ShardResult], mode: str, *, energy_preset: str, config: Any = None, backend: str = "cpu") -> Priced:
    """Price the run of every shard as one run of the whole data set: the backend's profile of the summed
    counts (batch = every sample). The counts are integers, so the price does not depend on how the data set
    was cut into shards and batches. Event-driven work enters the latency model as the data set's average
    per sample and step (the profiler averages over a run's samples and steps; docs/sweep.md)."""
    from talon.backend import get_backend
    from talon.backend.base import SimulationResult

    if not shards:
        raise TalonError("nothing to price: the data set has no shards")
    n = int(sum(len(s.predictions) for s in shards))
    T = shards[0].steps
    counts: dict[str, int] = {}
    events: dict[str, int] = {}
    for s in shards:
        _add(counts, s.spike_counts)
        _add(events, s.input_events)
    spike_inputs = dict(shards[0].spike_inputs)
    for s in shards[1:]:
        spike_inputs = {k: v for k, v in spike_inputs.items() if k in s.spike_inputs}
    neurons = shards[0].neurons
    rates = {k: v / (neurons[k] * T * n) if neurons.get(k) else 0.0 for k, v in counts.items()}
    be = get_backend(backend)
    sim = SimulationResult(backend=be.name, mode=mode, timesteps_run=T, batch_size=n, spike_counts=counts, firing_rates=rates,
                           neurons=dict(neurons), input_events=events, outputs={}, outputs_valid=True, spike_inputs=spike_inputs)  # fmt: skip
    prof = be.profile(graph, None, T, energy_preset=energy_preset, mode=mode, simulation=sim, fixed_config=config, progress=False)
    pricing: dict[str, Any] = {"energy_preset": prof.energy_preset}
    spec = hardware_of(graph)
    if spec is not None:  # a mapped graph: its network-on-chip hops are priced with the hardware's figures
        pricing.update(hardware=spec.name, energy_per_hop_pj=spec.energy_per_hop * 1e12, latency_per_hop_ns=spec.latency_per_hop * 1e9)
    return Priced(float(prof.energy_estimate_uj), float(prof.total_latency_us), sum(counts.values()) / n, pricing)


def hardware_of(graph: Any) -> Any:
    """The HardwareSpec of the mapping stored in `graph` (None without one)."""
    from talon.backend.cpu.profiler import resolve_mapping

    m = resolve_mapping(graph)
    return None if m is None else m.hardware


def readout_function(readout: str | Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The class decision of talon.eval: "count" (argmax of summed outputs), "last", or a function."""
    if callable(readout):
        from talon.eval import whole_classes

        return lambda out: whole_classes(readout(out))  # fractional classes refused, not truncated
    if readout == "count":
        return _count
    if readout == "last":
        return _last
    raise TalonError(f"unknown readout {readout!r}; readouts: count, last, or a function of the (T, B, K) outputs")


def _count(out: np.ndarray) -> np.ndarray:
    return out.sum(axis=0).argmax(axis=1)


def _last(out: np.ndarray) -> np.ndarray:
    return out[-1].argmax(axis=1)
