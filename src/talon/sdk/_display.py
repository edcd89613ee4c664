"""Jupyter's rich display of analysis results (`GraphStats._repr_html_`): totals and the layer table."""

from __future__ import annotations

from typing import Any

from talon._html import card, table


def stats_html(stats: Any) -> str:
    rows = [
        [s.name, s.type_name, " ".join(str(tuple(x)) for x in s.output_shapes), s.params, s.macs, s.flops, s.neurons]
        for s in stats.layers.values()
    ]
    totals = (
        f"{stats.total_params:,} parameters ({stats.neuron_params:,} neuron constants; {stats.total_bytes:,} bytes), "
        f"{stats.total_macs:,} MACs and {stats.total_flops:,} FLOPs per step, {stats.num_neurons:,} neurons, depth {stats.depth}, width {stats.width}"
    )
    return card(
        f"TALON analysis: {stats.num_nodes} nodes, {stats.num_edges} edges",
        [totals, table(["layer", "type", "output", "params", "MACs", "FLOPs", "neurons"], rows)],
    )


def hardware_profile_html(p: Any) -> str:
    q = ", ".join(f"{b}-bit {m:,}" for b, m in p.quantized_weight_memory.items())
    rows = [
        ["weight memory (bytes)", p.weight_memory], ["  quantized", q or "-"],
        ["activation memory (bytes)", p.activation_memory], ["  peak at", str(p.peak_activation_node)],
        ["state memory (bytes)", p.state_memory], ["total memory (bytes)", p.total_memory],
        ["MAC operations", p.mac_ops], ["spike operations", p.spike_ops], ["spikes per step, at most", p.spike_events],
        ["largest layer", f"{p.largest_layer} ({p.largest_layer_params:,} params)"],
    ]  # fmt: skip
    return card("TALON hardware profile (per sample, per step)", [table(["", "value"], rows), *[f"• {r}" for r in p.recommendations]])
