"""Which Inputs a run prices as spikes: the declared ones (`Input.spikes`) and those fed a binary stimulus.

- An Input that declares spikes must be fed spikes: a stimulus known to hold another value is refused
  (BackendError naming the input, the value and where it is), since pricing it as spikes would
  undercount its layers' work; a user's encoder is checked step by step as the run goes.
- An Input that does not declare spikes but whose stimulus is binary (every value 0 or 1, some of them
  1; or a RateEncoder) is priced as spikes too, and the run says so (`SimulationResult.spike_inputs`).

The simulation itself is unchanged: only what the run counts (the input events of the layers the Inputs
feed) and how the profile prices them follow from this.
"""

from __future__ import annotations

from typing import Any

from talon.backend.stimulus import Stimulus, first_non_binary, is_binary
from talon.errors import BackendError
from talon.ir import Graph, spike_inputs, with_spike_inputs

DECLARED = "declared (Input.spikes)"
BINARY = "binary stimulus (every value 0 or 1)"


def priced_spike_inputs(graph: Graph, stim: Stimulus) -> dict[str, str]:
    """{Input name: why it is priced as spikes} for `graph` fed `stim` (see the module docstring)."""
    declared = set(spike_inputs(graph))
    out: dict[str, str] = {}
    for name in graph.input_names:
        known = stim.binary.get(name)
        if name in declared:
            if known is False:
                check_spikes(name, stim.sequence(name) if name in stim.sequences else stim.step(0)[name])
            out[name] = DECLARED
        elif known:
            out[name] = BINARY
    return out


def pricing_graph(graph: Graph, priced: dict[str, str]) -> Graph:
    """`graph` with the Inputs of `priced` declaring spikes (the others' nodes shared, `graph` unchanged)."""
    return with_spike_inputs(graph, [n for n in priced if n in graph.nodes]) if priced else graph


def check_spikes(name: str, x: Any, where: str = "") -> None:
    """Refuse a stimulus `x` for the spike-declaring Input `name` unless every value is 0 or 1."""
    if is_binary(x):
        return
    index, value = first_non_binary(x)
    raise BackendError(
        f"Input {name!r} declares spikes (Input.spikes) but its stimulus{where} holds {value:g} at index {index}, not 0 or 1: "
        f"feed it spikes (e.g. rate-code the data: talon.backend.stimulus.RateEncoder, or `--rate-encode` on the command line) "
        f"or clear the declaration (graph.nodes[{name!r}] = graph.nodes[{name!r}].replace(spikes=False)) to price it as "
        f"real-valued input"
    )

