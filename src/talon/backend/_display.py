"""Jupyter's rich display of a backend's results (`SimulationResult._repr_html_`, `ProfileResult._repr_html_`)."""

from __future__ import annotations

from typing import Any

from talon._html import card, table


def simulation_html(sim: Any) -> str:
    rows = []
    for name, count in sim.spike_counts.items():
        agree = sim.agreement.get(name) if sim.agreement else None
        rows.append([name, sim.neurons.get(name, 0), count, f"{sim.firing_rates[name]:.4f}", "-" if agree is None else f"{agree:.4f}"])
    outs = ", ".join(f"{n} {tuple(getattr(v, 'shape', ()))}" for n, v in sim.outputs.items())
    return card(
        f"TALON {sim.backend} simulation ({sim.mode}): {sim.timesteps_run} steps, batch {sim.batch_size}",
        [table(["layer", "neurons", "spikes", "firing rate", "fixed/float agreement"], rows),
         f"{sim.total_spikes:,} spikes in all; outputs {outs} (valid: {sim.outputs_valid})", f"stimulus: {sim.stimulus}"],
    )  # fmt: skip


def profile_html(p: Any) -> str:
    e = p.energy_estimate_uj or 1.0
    parts = [("MAC", p.mac_energy_uj), ("spike (AC)", p.spike_energy_uj), ("neuron", p.neuron_energy_uj),
             ("elementwise", p.elementwise_energy_uj), ("SRAM", p.sram_energy_uj), ("NoC", p.noc_energy_uj)]  # fmt: skip
    energy = table(["energy", "µJ", "share"], [[k, f"{v:.6f}", f"{100 * v / e:.1f}%"] for k, v in parts], caption=f"energy per sample: {p.energy_estimate_uj:.6f} µJ")
    layers = table(
        ["layer", "type", "energy µJ", "latency µs", "MACs", "ACs", "SRAM bytes"],
        [[lp.name, lp.type_name, f"{lp.energy_uj:.6f}", f"{lp.latency_us:.3f}", lp.macs, lp.accumulates, lp.sram_bytes] for lp in p.layers.values()],
    )
    head = f"latency {p.total_latency_us:,.2f} µs ({p.total_cycles:,} cycles at {p.clock_mhz:g} MHz), peak memory {p.peak_memory_bytes:,} bytes"
    return card(f"TALON {p.backend} profile ({p.mode}, {p.energy_preset}): {p.timesteps} steps, per sample", [head, energy, layers])
