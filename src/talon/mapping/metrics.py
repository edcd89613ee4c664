"""Mapping quality metrics (definitions in docs/mapping.md).

- cores_used: cores holding at least one neuron.
- spikes_per_step: sum of neuron firing rates.
- spike_packets_per_step: sum over source neurons i of rate_i x (number of distinct destination cores
  of i other than its own): one packet per (source neuron, destination core), multicast.
- local_spikes_per_step: rate-weighted deliveries to the source neuron's own core (no network hop).
- packet_hops_per_step ("traffic x hops"): sum over packets of their XY hop count (Manhattan distance).
- average_hops = packet_hops / packets; max_hops: the longest route carrying any packet.
- max_link_load / mean_link_load: packets per step on the busiest directed link / averaged over all links.
- congestion: max_link_load / link_bandwidth (> 1: the busiest link cannot carry one step's packets in a
  step); links_over_bandwidth: how many links exceed it.
- neuron_utilisation / memory_utilisation: per core, used / budget (max and mean over used cores).
- noc_energy_per_step = packet_hops x energy_per_hop (J); average/max_spike_latency = hops x latency_per_hop.
"""

from __future__ import annotations

import numpy as np

from talon.mapping.allocate import Allocation
from talon.mapping.route import Routing


def compute_metrics(routing: Routing, alloc: Allocation) -> dict:
    hw = routing.hardware
    part = routing.placement.partition
    ng = part.neurons
    packets = routing.packets_per_step
    hop_total = routing.packet_hops
    loads = routing.links.all()
    used = alloc.neurons > 0
    nu = alloc.neuron_utilisation[used]
    mu = alloc.memory_utilisation[used]
    m = {
        "cores_used": int(used.sum()),
        "neurons": int(ng.num_neurons),
        "synapses": int(ng.synapses),
        "spikes_per_step": float(ng.rates.sum()),
        "spike_packets_per_step": packets,
        "local_spikes_per_step": float(routing.local_spikes),
        "packet_hops_per_step": hop_total,
        "average_hops": hop_total / packets if packets > 0 else 0.0,
        "max_hops": int(routing.hops.max()) if routing.hops.size else 0,
        "max_link_load": float(loads.max()) if loads.size else 0.0,
        "mean_link_load": float(loads.mean()) if loads.size else 0.0,
        "routing_entries": int(routing.tables.num_entries),
        "max_neuron_utilisation": float(nu.max()) if nu.size else 0.0,
        "mean_neuron_utilisation": float(nu.mean()) if nu.size else 0.0,
        "max_memory_utilisation": float(mu.max()) if mu.size else 0.0,
        "mean_memory_utilisation": float(mu.mean()) if mu.size else 0.0,
        "max_fan_in": int(alloc.fan_in.max()) if alloc.fan_in.size else 0,
        "max_fan_out": int(alloc.fan_out.max()) if alloc.fan_out.size else 0,
        "noc_energy_per_step": hop_total * hw.energy_per_hop,
        "average_spike_latency": (hop_total / packets if packets > 0 else 0.0) * hw.latency_per_hop,
        "max_spike_latency": (int(routing.hops.max()) if routing.hops.size else 0) * hw.latency_per_hop,
    }
    if hw.link_bandwidth is not None:
        m["congestion"] = m["max_link_load"] / hw.link_bandwidth
        m["links_over_bandwidth"] = int(np.sum(loads > hw.link_bandwidth))
    return m
