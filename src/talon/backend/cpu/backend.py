"""The `cpu` backend class: float and fixed-point simulation, energy/latency profiles, hardware descriptors."""

from __future__ import annotations

from typing import Any

import numpy as np

from talon.backend.base import Backend, Capabilities, load_graph, ProfileResult, SimulationResult
from talon.backend.cpu.fixed import Calibration, FixedPointConfig
from talon.backend.cpu.kept_calibration import check_kept_calibration_use, plan_from_calibration
from talon.backend.cpu.profiler import LatencyModel, add_noc, noc_record_names, profile_run, resolve_mapping
from talon.backend.cpu.simulator import calibrate_run, calibration_stimulus, plan_for, simulate_graph
from talon.backend.descriptor import HardwareDescriptor, smallest_int_dtype
from talon.backend.energy import EnergyPreset
from talon.errors import BackendError
from talon.ir import Graph

__all__ = ["CPUBackend"]


class CPUBackend(Backend):
    """Runs graphs on the CPU through the bridge runtime, with counters; see docs/backend.md."""

    name = "cpu"
    capabilities = Capabilities(
        simulate=True,
        profile=True,
        compile=True,
        modes=("float", "fixed"),
        energy_presets=True,
        hardware=False,
        description="bridge runtime with spike/event counters; float32 or bit-exact fixed point (docs/fixed_point.md)",
    )

    def simulate(
        self,
        graph: Any,
        inputs: Any = None,
        n_steps: int | None = None,
        mode: str = "float",
        record: Any = None,
        *,
        fixed_config: FixedPointConfig | None = None,
        calibration_inputs: Any = None,
        compare: bool = True,
        chunk_steps: int | None = None,
        progress: bool | None = None,
        batch_time: bool = True,
        calibration: Calibration | None = None,
    ) -> SimulationResult:
        """Simulate `graph` (a Graph or .t1c path) for `n_steps` steps (default: the length of a
        sequence input, else 10).

        inputs: see talon.backend.stimulus (tensor, (T, B, ...) sequence, encoder, dict per Input, or
        None for the documented default stimulus). mode "fixed" runs the hardware numerics of
        docs/fixed_point.md, calibrated on a float run of `calibration_inputs` (default: `inputs`; a
        constant or encoded calibration input runs the simulation's steps, a sequence its own), and,
        with compare=True, reports the per-layer spike agreement with that float run. `calibration` (a
        Calibration kept from `calibrate` or a fixed result's `fixed_point.calibration`) replaces the
        calibration run: the same formats, bits and results as calibrating on the same data in the call;
        with compare=False no float run at all, with compare=True only the float run of `inputs` the
        agreement is measured against. record: True,
        "spikes", "membranes" or node names. batch_time=False steps stateless layers one step at a
        time (slower; bit-identical to per-step executor calls at every batch size, see docs/runtime.md).
        """
        self.check_mode(mode)
        return simulate_graph(
            load_graph(graph), inputs, n_steps, mode, record,
            fixed_config=fixed_config, calibration_inputs=calibration_inputs, compare=compare,
            chunk_steps=chunk_steps, progress=progress, batch_time=batch_time, backend=self.name, calibration=calibration,
        )  # fmt: skip

    def calibrate(
        self,
        graph: Any,
        calibration_inputs: Any = None,
        n_steps: int | None = None,
        *,
        chunk_steps: int | None = None,
        progress: bool | None = None,
    ) -> Calibration:
        """The fixed-point calibration of `graph` (a Graph or .t1c path) on a float run of
        `calibration_inputs` (as `simulate` reads inputs; default: the default stimulus) for `n_steps`
        steps (default: the length of a sequence, else 10): the ranges every format is fitted to. Pass it
        as `calibration=` to `simulate`, `profile` or `compile` to run fixed point without calibrating
        again; `simulate(x, n, mode="fixed", calibration_inputs=c)` equals
        `simulate(x, n, mode="fixed", calibration=calibrate(graph, c, n))` bit for bit (`n` may be left
        out of `calibrate` where `c` is a sequence)."""
        g = load_graph(graph)
        calibration, _ = calibrate_run(g, calibration_stimulus(g, calibration_inputs, n_steps), chunk_steps=chunk_steps, progress=progress)
        return calibration

    def profile(
        self,
        graph: Any,
        inputs: Any = None,
        n_steps: int | None = None,
        energy_preset: str | EnergyPreset = "45nm_cmos",
        *,
        mode: str = "float",
        latency: LatencyModel | None = None,
        fixed_config: FixedPointConfig | None = None,
        simulation: SimulationResult | None = None,
        progress: bool | None = None,
        mapping: Any = None,
        calibration_inputs: Any = None,
        calibration: Calibration | None = None,
    ) -> ProfileResult:
        """Latency, energy (and its parts) and peak memory of running `graph` for `n_steps` steps,
        per sample. Spike-driven work is priced from the actual spikes of a simulation (run here, or
        pass `simulation=` to reuse one). `mapping` (a talon.mapping.MappingResult; default: the one
        stored in the graph, if any) adds network-on-chip hop energy and latency. docs/energy.md derives
        every number. mode "fixed" calibrates its formats on `calibration_inputs` (default: `inputs`), or
        takes them from a kept `calibration` (see `simulate`)."""
        self.check_mode(mode)
        if calibration is not None:
            check_kept_calibration_use(mode, calibration_inputs)
            if simulation is not None:
                raise BackendError("profile: calibration= sets up the simulation profile would run; with simulation= given "
                                   "nothing is simulated: pass one or the other")
        g = load_graph(graph)
        mp = resolve_mapping(g, mapping)
        sim = simulation
        if sim is None:
            record = None
            if mp is not None:  # per-neuron spikes of the mapped layers drive the NoC model
                from talon.backend.stimulus import make_stimulus

                stim = make_stimulus(inputs, {n: tuple(g.nodes[n].shape) for n in g.input_names}, n_steps)
                record = noc_record_names(g, mp, stim.n_steps, stim.batch_size) or None
            sim = self.simulate(g, inputs, n_steps, mode, record=record, fixed_config=fixed_config, compare=False, progress=progress,
                                calibration_inputs=calibration_inputs, calibration=calibration)
        elif sim.mode != mode:
            raise BackendError(f"simulation was run in mode {sim.mode!r} but the profile asks for {mode!r}")
        cfg = None
        if mode == "fixed":
            cfg = sim.fixed_point.config if sim.fixed_point is not None else (fixed_config or FixedPointConfig())
        result = profile_run(g, sim, energy_preset=energy_preset, latency=latency, fixed_config=cfg)
        return add_noc(result, g, mp)

    def compile(
        self,
        graph: Any,
        *,
        fixed_config: FixedPointConfig | None = None,
        calibration_inputs: Any = None,
        n_steps: int | None = None,
        mapping: Any = None,
        calibration: Calibration | None = None,
    ) -> HardwareDescriptor:
        """The fixed-point hardware descriptor of `graph` (docs/backend.md), calibrated on a float run
        of `calibration_inputs` (default: the default stimulus) for `n_steps` steps (default 10).
        With a mapping (`mapping=`, or one stored in the graph) its `mapping` section carries each mapped
        layer's core assignment (core, row, col and the flat neuron slice [start, stop) per run) and
        `routes`: the hardware, algorithm, layer list (routing `layer` indexes it), metrics and the names
        of the arrays `mapping/routing/<field>` (per-core routing tables), `mapping/cores/<field>` (core
        positions and loads) and `mapping/flows/<field>` (core-to-core flows: packets per step, hops).
        A kept `calibration` (see `calibrate`) replaces the calibration run."""
        from talon.backend.compile import build_descriptor, scalar_params

        # Validation, the calibration run's executor and shape inference write inferred shapes onto the
        # graph's nodes: work on a private copy so the caller's graph is left exactly as it was (a graph
        # read from a path is already private).
        g = graph.copy() if isinstance(graph, Graph) else load_graph(graph)
        g.validate()
        for name, node in g.nodes.items():  # refuse a non-finite field before the calibration run
            scalar_params(name, node)
        if calibration is not None:
            check_kept_calibration_use("fixed", calibration_inputs)
            if n_steps is not None:
                raise BackendError("compile: n_steps sets the length of the calibration run, and with calibration= there is none: drop n_steps")
            plan = plan_from_calibration(g, calibration, fixed_config)
        else:
            plan, _ = plan_for(g, calibration_stimulus(g, calibration_inputs, n_steps), fixed_config)
        mp = resolve_mapping(g, mapping)
        if mp is None:
            return build_descriptor(g, plan)
        md = mp.to_metadata()
        assignment = {n: {k: np.asarray(v).tolist() for k, v in md["assignments"][n].items()} for n in md["layers"]}
        tables = {f"mapping/routing/{k}": np.asarray(a) for k, a in md["routing"].items()}
        tables.update({f"mapping/cores/{k}": np.asarray(md["cores"][k]) for k in ("row", "col", "neurons", "routing_entries")})
        tables.update({f"mapping/flows/{k}": np.asarray(md["flows"][k]) for k in ("src", "dst", "hops")})
        routes = {
            "hardware": md["hardware"], "algorithm": md["algorithm"], "placement": md["placement"],
            "layers": list(md["layers"]), "unmapped": list(md["unmapped"]),
            "routing_tables": sorted(k for k in tables if k.startswith("mapping/routing/")),
            "cores": sorted(k for k in tables if k.startswith("mapping/cores/")),
            "flows": sorted(k for k in tables if k.startswith("mapping/flows/")) + ["mapping/flows/packets"],
            "metrics": md["metrics"],
        }  # fmt: skip
        desc = build_descriptor(g, plan, core_assignment=assignment, routes=routes)
        for key, a in tables.items():
            desc.arrays[key] = a.astype(smallest_int_dtype(a))
        desc.arrays["mapping/flows/packets"] = np.asarray(md["flows"]["packets"], dtype=np.float64)
        return desc
