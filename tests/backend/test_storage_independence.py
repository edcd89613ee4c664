"""The same model gives the same numbers whatever form holds its neuron constants.

A neuron constant may be a scalar (the snnTorch exporter), a per-channel array or a full per-neuron array
of equal values (a hand-built graph, a NIR import, the existing SDK's files), in memory or read back from a
.t1c file. Counts, memory, energy and latency must be the same to the last bit (==, never approx): a user
comparing the profile of a file with the profile of the model in memory gets one number.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.backend import get_backend
from talon.ir._compact import smallest_broadcast
from talon.sdk import analyze_graph, profile_graph
from talon.sdk.cost import cost_entry, graph_costs
from talon.sdk._graph import infer_shapes

from backend_graphs import build_hybrid, build_mlp, build_tiny

CPU = get_backend("cpu")


def reshaped_constants(graph: ir.Graph, how: str) -> ir.Graph:
    """A copy of `graph` whose neuron constants are all expanded to one value per neuron ("full") or all
    reduced to the shape they vary over ("compact"); the values every neuron sees are unchanged."""
    shapes = infer_shapes(graph)
    g = graph.copy()
    for name, node in graph.nodes.items():
        if not (node.stateful or node.spiking) or isinstance(node, ir.Graph):
            continue
        entry = cost_entry(node.type_name)
        weights = entry.weight_fields if entry else ()
        out = shapes[name][1][0]
        changes = {
            field: np.broadcast_to(arr, out).copy() if how == "full" else smallest_broadcast(arr)
            for field, arr in node.arrays()
            if field not in weights
        }
        g.nodes[name] = node.replace(**changes)
    return g


def round_trip(graph: ir.Graph) -> ir.Graph:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.t1c"
        ir.write(path, graph)
        return ir.read(path)


def numbers(graph: ir.Graph, x: torch.Tensor, steps: int, modes=("float", "fixed")) -> dict:
    """Every number analyze, profile_graph and the backend's profile give, exactly as computed."""
    out = {"costs": graph_costs(graph), "analyze": analyze_graph(graph).summary(), "profile": profile_graph(graph).summary()}
    for mode in modes:
        p = CPU.profile(graph, x, n_steps=steps, mode=mode)
        out[mode] = (
            p.energy_estimate_uj, p.mac_energy_uj, p.spike_energy_uj, p.neuron_energy_uj, p.elementwise_energy_uj,
            p.sram_energy_uj, p.total_latency_us, p.total_cycles, p.peak_memory_bytes,
            {n: (lp.energy_uj, lp.sram_bytes, lp.cycles) for n, lp in p.layers.items()},
        )
    return out


def forms(graph: ir.Graph) -> dict[str, ir.Graph]:
    full, compact = reshaped_constants(graph, "full"), reshaped_constants(graph, "compact")
    return {"full": full, "compact": compact, "file": round_trip(graph), "full file": round_trip(full), "compact file": round_trip(compact)}


def assert_same_numbers(graph: ir.Graph, x: torch.Tensor, steps: int, modes=("float", "fixed")) -> None:
    want = numbers(graph, x, steps, modes)
    for form, g in forms(graph).items():
        got = numbers(g, x, steps, modes)
        for key in want:
            assert got[key] == want[key], (form, key)


def test_hand_built_graphs_give_the_same_numbers_in_every_form():
    torch.manual_seed(0)
    assert_same_numbers(build_tiny(), torch.tensor([2.0, 0.5]), 2)
    assert_same_numbers(build_mlp(), 2 * torch.rand(3, 4), 5)
    assert_same_numbers(build_hybrid(), torch.rand(2, 1, 28, 28), 3)


def test_the_tutorials_exported_models_give_the_same_numbers_from_file_and_per_neuron_form():
    pytest.importorskip("snntorch")
    from talon.bridge import to_ir
    from tutorial_models import HybridSNN, SimpleSNN

    torch.manual_seed(0)
    simple = to_ir(SimpleSNN(), torch.zeros(1, 784))
    assert_same_numbers(simple, torch.rand(2, 784), 4)
    hybrid = to_ir(HybridSNN(), torch.zeros(1, 1, 28, 28))
    assert_same_numbers(hybrid, torch.rand(2, 1, 28, 28), 3)
    # the exporter's scalars and the hand-built per-neuron arrays of the same Leaky(beta=0.9) count alike
    assert np.ndim(hybrid.nodes["lif"].tau) == 0 and np.shape(build_hybrid().nodes["lif"].tau) == (64,)
    assert graph_costs(hybrid)["lif"].params == graph_costs(build_hybrid())["lif"].params == 4
    assert analyze_graph(hybrid).total_params == analyze_graph(build_hybrid()).total_params == 201_582


def test_varying_constants_still_count_one_value_per_neuron_or_channel():
    lif = ir.LIF(tau=np.arange(2, 8, dtype=np.float32), r=np.full(6, 2.0, np.float32), v_leak=np.zeros(6, np.float32), v_threshold=np.ones(6, np.float32))
    g = ir.Graph({"x": ir.Input(shape=(6,)), "lif": lif, "y": ir.Output()})
    g.chain("x", "lif", "y")
    assert graph_costs(g)["lif"].params == 6 + 3  # tau per neuron; r, v_leak, v_threshold one value each
    per_channel = np.broadcast_to(np.array([2.0, 3.0], np.float32).reshape(2, 1, 1), (2, 3, 3)).copy()
    conv_lif = ir.LIF(tau=per_channel, r=per_channel, v_leak=np.zeros((2, 3, 3), np.float32), v_threshold=np.ones((2, 3, 3), np.float32))
    g = ir.Graph({"x": ir.Input(shape=(2, 3, 3)), "lif": conv_lif, "y": ir.Output()})
    g.chain("x", "lif", "y")
    assert graph_costs(g)["lif"].params == 2 + 2 + 1 + 1


_FORM = st.sampled_from(["scalar", "equal", "varying"])


def _constant(form: str, n: int, value: float, rng: np.random.Generator) -> np.ndarray:
    if form == "scalar":
        return np.array(value, np.float32)
    if form == "equal":
        return np.full(n, value, np.float32)
    return (value * (1 + rng.random(n))).astype(np.float32)


@st.composite
def random_graphs(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_in, hidden, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    tau = _constant(draw(_FORM), hidden, 2.0 + 8 * rng.random(), rng)
    lif = ir.LIF(
        tau=tau,
        r=tau.copy(),
        v_leak=_constant(draw(_FORM), hidden, 0.0, rng),
        v_threshold=_constant(draw(_FORM), hidden, 0.5 + rng.random(), rng),
        reset_mode=draw(st.sampled_from(["subtract", "zero"])),
    )
    nodes = {
        "x": ir.Input(shape=(n_in,)),
        "fc1": ir.Affine(weight=rng.normal(0, 1.5, (hidden, n_in)).astype(np.float32), bias=rng.normal(0, 0.5, hidden).astype(np.float32)),
        "lif": lif,
        "fc2": ir.Affine(weight=rng.normal(0, 1, (n_out, hidden)).astype(np.float32), bias=np.zeros(n_out, np.float32)),
        "out_lif": ir.IF(v_threshold=_constant(draw(_FORM), n_out, 1.0, rng)),
        "y": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    x = torch.from_numpy(rng.random((draw(st.integers(1, 3)), n_in)).astype(np.float32))
    return g, x


@settings(max_examples=15, deadline=None)
@given(random_graphs(), st.integers(1, 4))
def test_random_graphs_written_and_read_back_give_the_same_numbers(case, steps):
    graph, x = case
    assert_same_numbers(graph, x, steps, modes=("float",))


COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"


@pytest.mark.parametrize("name", ["mlp_lif", "if_neuron", "recurrent"])
def test_existing_sdk_files_give_the_same_numbers_in_every_form(name):
    """The existing SDK's files hold per-neuron constants flat: read as they are, compacted, expanded, and
    written by TALON and read back, they give one set of numbers."""
    path = COMPAT / f"{name}.t1c"
    if not path.exists():
        pytest.skip(f"existing-SDK sample {path} not found")
    graph = ir.read(path)
    assert any(np.ndim(arr) > 0 for node in graph.nodes.values() if node.stateful for _, arr in node.arrays())
    gen = torch.Generator().manual_seed(0)
    shapes = {n: tuple(graph.nodes[n].shape) for n in graph.input_names}
    x = {n: 2 * torch.rand(3, *s, generator=gen) for n, s in shapes.items()}
    assert_same_numbers(graph, x if len(x) > 1 else next(iter(x.values())), 4, modes=("float",))
