"""The Backend base class, its capabilities, and the result objects every backend returns.

A backend is a class with a `name`, a `capabilities` record and any of `simulate`, `profile` and
`compile`. What it does not support raises BackendError naming the capability, so callers can ask
first (`backend.capabilities.simulate`) or just try.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from talon.errors import BackendError, TalonError


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. `modes` are the numeric modes `simulate`/`profile` accept."""

    simulate: bool = False
    profile: bool = False
    compile: bool = False
    modes: tuple[str, ...] = ()
    energy_presets: bool = False
    #: Runs on real hardware (False: a model of it).
    hardware: bool = False
    #: Primitive type names the backend can run (None: whatever the bridge runtime supports).
    primitives: frozenset[str] | None = None
    description: str = ""


class Backend:
    """Base of every backend. Subclasses set `name` and `capabilities` and override what they support."""

    name: ClassVar[str] = "backend"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def _unsupported(self, what: str) -> BackendError:
        return BackendError(f"backend {self.name!r} does not support {what} (capabilities: {self.capabilities})")

    def simulate(self, graph: Any, inputs: Any = None, n_steps: int | None = None, **kw: Any) -> "SimulationResult":
        raise self._unsupported("simulate")

    def profile(self, graph: Any, inputs: Any = None, n_steps: int | None = None, **kw: Any) -> "ProfileResult":
        raise self._unsupported("profile")

    def compile(self, graph: Any, **kw: Any) -> Any:
        raise self._unsupported("compile")

    def check_mode(self, mode: str) -> None:
        if mode not in self.capabilities.modes:
            raise BackendError(f"backend {self.name!r} has no numeric mode {mode!r}; it supports {list(self.capabilities.modes)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


@dataclass
class SimulationResult:
    """What `simulate` returns. Counts are summed over all timesteps and the whole batch.

    - spike_counts[node]: spikes emitted by each spiking node (a graded spike counts once).
    - firing_rates[node]: spike_counts / (neurons * timesteps * batch), in [0, 1].
    - input_events[node]: non-zero input elements seen by each node with synaptic weights (for spike-fed
      layers these are the spike events that drive its accumulates).
    - outputs[name]: each Output node's value at every step, shape (T, B, *shape).
    - outputs_valid: every output is finite and has the shape the graph declares.
    - spikes / membranes: recorded (T, B, *shape) tensors for the recorded nodes (`record=`).
    - agreement (fixed mode): per spiking node, the fraction of (step, sample, neuron) spike values equal
      to the float simulation's on the same stimulus.
    - spike_inputs: the Inputs priced as spikes and why (declared `Input.spikes`, or a binary stimulus):
      the layers they feed count input events and are priced as event-driven.
    """

    backend: str
    mode: str
    timesteps_run: int
    batch_size: int
    spike_counts: dict[str, int]
    firing_rates: dict[str, float]
    neurons: dict[str, int]
    input_events: dict[str, int]
    outputs: dict[str, Any]
    outputs_valid: bool
    spikes: dict[str, Any] = field(default_factory=dict)
    membranes: dict[str, Any] = field(default_factory=dict)
    agreement: dict[str, float] | None = None
    fixed_point: Any = None
    stimulus: str = ""
    wall_time_s: float = 0.0
    #: {Input name: why it was priced as spikes} (talon.backend.spike_inputs): declared, or a binary stimulus
    spike_inputs: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> Any:
        """The only Output's (T, B, ...) tensor (error when the graph has several)."""
        if len(self.outputs) != 1:
            raise BackendError(f"the graph has {len(self.outputs)} outputs {list(self.outputs)}: use .outputs[name]")
        return next(iter(self.outputs.values()))

    @property
    def total_spikes(self) -> int:
        return int(sum(self.spike_counts.values()))

    def summary(self) -> str:
        lines = [f"{self.backend} simulation ({self.mode}): {self.timesteps_run} steps, batch {self.batch_size}, outputs valid: {self.outputs_valid}"]
        for name, count in self.spike_counts.items():
            line = f"  {name:<16} {count:>10,} spikes  rate {self.firing_rates[name]:.4f}"
            if self.agreement is not None and name in self.agreement:
                line += f"  fixed/float agreement {self.agreement[name]:.4f}"
            lines.append(line)
        lines += [f"  {line}" for line in _spike_input_lines(self.spike_inputs)]
        return "\n".join(lines)

    __str__ = summary

    def _repr_html_(self) -> str:
        """Jupyter's rich display (talon.backend._display)."""
        from talon.backend._display import simulation_html

        return simulation_html(self)


def _spike_input_lines(priced: dict[str, str]) -> list[str]:
    return [f"input {n!r} priced as spikes ({why}): the layers it feeds are event-driven" for n, why in priced.items()]


@dataclass(frozen=True)
class LayerProfile:
    """One node's share of a profile, for the whole run (all steps), per sample. Energies in microjoules.

    noc_*: the network-on-chip packets this node's spikes sent, their hops and energy (mapped graphs only;
    charged to the source layer)."""

    name: str
    type_name: str
    event_driven: bool
    macs: int
    accumulates: int
    neuron_updates: int
    elementwise_ops: int
    sram_bytes: int
    mac_energy_uj: float
    spike_energy_uj: float
    neuron_energy_uj: float
    elementwise_energy_uj: float
    sram_energy_uj: float
    cycles: int
    latency_us: float
    input_events: int = 0
    noc_packets: int = 0
    noc_packet_hops: int = 0
    noc_energy_uj: float = 0.0

    @property
    def energy_uj(self) -> float:
        return (
            self.mac_energy_uj + self.spike_energy_uj + self.neuron_energy_uj + self.elementwise_energy_uj + self.sram_energy_uj
            + self.noc_energy_uj
        )  # fmt: skip


Link = tuple[tuple[int, int], tuple[int, int]]  # a directed mesh link: (from (row, col), to (row, col))


@dataclass(frozen=True)
class NocCongestion:
    """Where network-on-chip packets queue in a profiled run of a mapped graph (docs/energy.md, "Link
    congestion"). Times in microseconds and loads in packets, per sample.

    Per step t: `step_latency_us[t]`, the step's NoC latency (mean over the batch) = the larger of its
    longest active route (`step_route_latency_us[t]`) and, over the links, the time the link's packets
    need to reach it, cross it one after another and arrive; `step_max_link_load[t]`, the packets on the
    busiest directed link (worst sample of the batch), and `step_busiest_link[t]`, that link (None when
    no packet moved). Whole run: `busiest_link` carried `max_link_load` packets in step `busiest_step`,
    the most of any link in any step; `link_packets`, packets per link over the run (a
    talon.mapping.LinkLoads; summed over the links it equals the profile's noc_packet_hops);
    `peak_link_loads`, each link's highest one-step load; `congestion_latency_us` = latency_us -
    route_latency_us, what queueing adds over the longest routes alone, in `congested_steps` steps;
    `over_bandwidth_steps`, steps whose busiest link exceeded HardwareSpec.link_bandwidth (None without
    one). `exact`: every source layer's per-step activity was known (False: some layer's load is its
    per-step upper bound, charged on every step).
    """

    mesh: tuple[int, int]
    latency_per_hop_ns: float
    packet_time_ns: float
    step_latency_us: tuple[float, ...]
    step_route_latency_us: tuple[float, ...]
    step_max_link_load: tuple[float, ...]
    step_busiest_link: tuple[Link | None, ...]
    busiest_link: Link | None
    busiest_step: int | None
    max_link_load: float
    latency_us: float
    route_latency_us: float
    congestion_latency_us: float
    congested_steps: int
    over_bandwidth_steps: int | None
    exact: bool
    link_packets: Any = field(default=None, compare=False)  # talon.mapping.LinkLoads (numpy arrays)
    peak_link_loads: Any = field(default=None, compare=False)

    def top_links(self, k: int = 5) -> list[dict[str, Any]]:
        """The `k` links with the highest one-step load (ties: more packets over the run first):
        [{"link", "peak_load", "packets"}]."""
        if self.peak_link_loads is None or self.link_packets is None:
            return []
        from talon.mapping.route import link_endpoints

        peak, total = self.peak_link_loads.all(), self.link_packets.all()
        import numpy as np

        order = [int(i) for i in np.lexsort((np.arange(peak.size), -total, -peak)) if peak[i] > 0][: max(k, 0)]
        fr, fc, tr, tc = link_endpoints(*self.mesh, order)
        return [
            {"link": ((int(a), int(b)), (int(c), int(d))), "peak_load": float(peak[i]), "packets": float(total[i])}
            for i, a, b, c, d in zip(order, fr, fc, tr, tc)
        ]


@dataclass(frozen=True)
class ProfileResult:
    """What `profile` returns: the run's latency and energy per sample (all timesteps), and where they go.

    energy_estimate_uj = mac_energy_uj + spike_energy_uj + neuron_energy_uj + elementwise_energy_uj
    + sram_energy_uj + noc_energy_uj. docs/energy.md derives every term. The network-on-chip terms are
    zero unless the graph was mapped (talon.mapping); total_latency_us then includes noc_latency_us, and
    noc_packets / noc_packet_hops count the run's spike packets and their hops (per sample);
    noc_congestion says, step by step, which link was busiest and what queueing cost (NocCongestion).
    """

    backend: str
    mode: str
    energy_preset: str
    timesteps: int
    batch_size: int
    total_latency_us: float
    total_cycles: int
    clock_mhz: float
    energy_estimate_uj: float
    mac_energy_uj: float
    spike_energy_uj: float
    neuron_energy_uj: float
    elementwise_energy_uj: float
    sram_energy_uj: float
    peak_memory_bytes: int
    layers: dict[str, LayerProfile]
    op_costs_pj: dict[str, float]
    derivation: dict[str, str]
    simulation: SimulationResult | None = None
    noc_energy_uj: float = 0.0
    noc_latency_us: float = 0.0
    noc_packets: float = 0.0
    noc_packet_hops: float = 0.0
    noc_congestion: NocCongestion | None = None

    @property
    def compute_energy_uj(self) -> float:
        return self.mac_energy_uj + self.spike_energy_uj + self.neuron_energy_uj + self.elementwise_energy_uj

    @property
    def energy_per_step_uj(self) -> float:
        return self.energy_estimate_uj / self.timesteps if self.timesteps else 0.0

    def summary(self) -> str:
        e = self.energy_estimate_uj or 1.0
        lines = [
            f"{self.backend} profile ({self.mode}, {self.energy_preset}): {self.timesteps} steps, per sample",
            f"  latency      {self.total_latency_us:12.2f} us ({self.total_cycles:,} cycles at {self.clock_mhz:g} MHz)",
            f"  energy       {self.energy_estimate_uj:12.6f} uJ",
        ]
        for label, v in (
            ("MAC", self.mac_energy_uj),
            ("spike (AC)", self.spike_energy_uj),
            ("neuron", self.neuron_energy_uj),
            ("elementwise", self.elementwise_energy_uj),
            ("SRAM", self.sram_energy_uj),
            ("NoC", self.noc_energy_uj),
        ):
            lines.append(f"    {label:<12} {v:12.6f} uJ  ({100 * v / e:5.1f}%)")
        if self.noc_packets or self.noc_energy_uj or self.noc_latency_us:
            lines.append(
                f"  NoC traffic  {self.noc_packets:12,.1f} packets, {self.noc_packet_hops:,.1f} packet-hops, latency {self.noc_latency_us:.3f} us"
            )
        cg = self.noc_congestion
        if cg is not None and cg.busiest_link is not None:
            (a, b) = cg.busiest_link
            lines.append(
                f"  NoC links    busiest {a}->{b}: {cg.max_link_load:,.1f} packets in step {cg.busiest_step}; queueing adds "
                f"{cg.congestion_latency_us:.3f} us in {cg.congested_steps} of {len(cg.step_latency_us)} steps"
                + ("" if cg.exact else " (upper-bound loads)")
            )
        lines.append(f"  peak memory  {self.peak_memory_bytes:12,} bytes")
        if self.simulation is not None:
            lines += [f"  {line}" for line in _spike_input_lines(self.simulation.spike_inputs)]
        lines.append(f"  {'layer':<14} {'type':<10} {'energy uJ':>12} {'latency us':>12} {'MACs':>12} {'ACs':>10} {'SRAM B':>12}")
        for lp in self.layers.values():
            lines.append(
                f"  {lp.name:<14} {lp.type_name:<10} {lp.energy_uj:12.6f} {lp.latency_us:12.3f} {lp.macs:12,} {lp.accumulates:10,} {lp.sram_bytes:12,}"
            )
        return "\n".join(lines)

    __str__ = summary

    def _repr_html_(self) -> str:
        """Jupyter's rich display (talon.backend._display)."""
        from talon.backend._display import profile_html

        return profile_html(self)


def load_graph(graph: Any) -> Any:
    """A talon.ir.Graph, or the graph read from a .t1c path: what every backend entry point accepts.
    Failures other than TalonError (a wrong type, say) become a BackendError naming the argument."""
    from talon.sdk import as_graph

    try:
        return as_graph(graph)
    except TalonError:
        raise
    except Exception as exc:
        raise BackendError(f"cannot use {graph!r} as a graph: {exc}") from None
