"""snnTorch's Alpha neuron end to end, as a user runs it: export_to_ir -> executor spike-exact with snnTorch ->
.t1c round trip -> analyze/profile -> fixed-point simulation -> FPGA C simulation bit-exact with it ->
map_graph places its neurons; NIR refuses it by name, with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")

from snntorch.export_talonir import export_to_ir  # noqa: E402

from talon import ir  # noqa: E402
from talon.backend import get_backend  # noqa: E402
from talon.backend.cpu.fixed import FixedPointConfig  # noqa: E402
from talon.bridge import ir_to_torch  # noqa: E402
from talon.ir.nir import NIRConversionError  # noqa: E402
from talon.mapping import HardwareSpec, map_graph  # noqa: E402
from talon.sdk import analyze_graph, profile_graph  # noqa: E402

from branches import side_by_side  # noqa: E402
from fpga_helpers import needs_gxx  # noqa: E402

T, B = 40, 2


def _model(mode: str) -> nn.Module:
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Linear(10, 16), snn.Alpha(alpha=0.9, beta=0.7, threshold=0.5, init_hidden=True, reset_mechanism=mode),
        nn.Linear(16, 4), snn.Alpha(alpha=0.85, beta=0.4, threshold=0.4, init_hidden=True, reset_mechanism=mode),
    )
    with torch.no_grad():
        model[0].weight.mul_(2.5)
        model[2].weight.mul_(3.0)
    return model


@needs_gxx
@pytest.mark.parametrize("mode", ["subtract", "zero", "none"])
def test_alpha_model_through_every_tool(mode, tmp_path):
    model = _model(mode)
    x = torch.rand(T, B, 10, generator=torch.Generator().manual_seed(1))
    graph = export_to_ir(model, x[0])
    alphas = [n for n, node in graph.nodes.items() if node.type_name == "Alpha"]
    assert len(alphas) == 2

    # the executor reproduces snnTorch spike for spike (a fresh copy: the export ran the model once)
    model = _model(mode)
    with torch.no_grad():
        want = torch.stack([model(x[t]) for t in range(T)])
        got = ir_to_torch(graph).run(x)
    assert torch.equal(want, got) and want.sum() > 0

    # .t1c round trip
    path = tmp_path / "alpha.t1c"
    ir.write(path, graph)
    loaded = ir.read(path)
    assert loaded == graph

    # analysis and profile count its neurons and its three states per neuron
    stats = analyze_graph(path)
    assert stats.num_neurons == 16 + 4
    prof = profile_graph(loaded, state_bytes=4)
    assert prof.state_memory == 4 * 3 * (16 + 4)

    # fixed point: spikes close to the float run; the FPGA C simulation equals it bit for bit
    cpu = get_backend("cpu")
    fixed = cpu.simulate(loaded, x, mode="fixed")
    assert fixed.fixed_point.nodes[alphas[0]].current is not None
    rep = get_backend("fpga").verify(loaded, x, n_steps=T, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert {f"spikes/{a}" for a in alphas} | {f"membranes/{a}" for a in alphas} <= set(rep.compared)
    assert int(rep.csim.spikes[alphas[0]].sum()) > 0

    # mapping places every Alpha neuron
    res = map_graph(loaded, HardwareSpec(mesh=(2, 2)))
    assert set(alphas) <= set(res.layers)
    placed = {a: sum(int(stop - start) for start, stop in zip(res.assignments[a]["start"], res.assignments[a]["stop"])) for a in alphas}
    assert placed == {alphas[0]: 16, alphas[1]: 4}

    # NIR has no Alpha neuron: refused by name, with the reason
    with pytest.raises(NIRConversionError, match=r"'1' \(Alpha\).*NIR"):
        ir.to_nir(loaded)


@pytest.mark.parametrize("mode", ["subtract", "zero", "none"])
def test_fixed_point_alpha_keeps_the_float_spikes(mode):
    """With 16-bit weights (so that weight rounding does not move spikes), the fixed-point Alpha neurons, 24-bit
    traces and membranes, fire exactly when the float ones do over the run."""
    model = _model(mode)
    x = torch.rand(T, B, 10, generator=torch.Generator().manual_seed(2))
    res = get_backend("cpu").simulate(export_to_ir(model, x[0]), x, mode="fixed", compare=True, fixed_config=FixedPointConfig(weight_bits=16))
    assert set(res.agreement) == {"1", "3"}
    assert min(res.agreement.values()) >= 0.99
    assert res.spike_counts["1"] > 0 and res.spike_counts["3"] > 0


def _ir_graph(kind: str, mode: str) -> ir.Graph:
    """Two synaptic layers summed into one Alpha (its inputs aligned, graded spikes), or an Alpha closing a loop."""
    from talon.ir.primitives.alpha import Alpha

    rng = np.random.default_rng(0)
    aff = lambda o, i, m: ir.Affine(weight=rng.normal(m, 1.0, (o, i)).astype(np.float32), bias=np.full(o, 0.05, np.float32))  # noqa: E731
    if kind == "two-inputs":
        alpha = Alpha(tau_exc=np.float32(8.0), tau_inh=np.float32(3.0), v_threshold=np.linspace(0.3, 1.0, 5).astype(np.float32),
                      reset_mode=mode, graded_spikes_factor=0.5)
        return ir.Graph({"x": ir.Input(shape=(6,)), "fa": aff(5, 6, 0.0), "fb": aff(5, 6, 0.3), "a": alpha, "y": ir.Output()},
                        [("x", "fa"), ("x", "fb"), ("fa", "a"), ("fb", "a"), ("a", "y")])
    alpha = Alpha(tau_exc=np.float32(8.0), tau_inh=np.float32(3.0), v_threshold=np.float32(0.6), reset_mode=mode)
    return ir.Graph({"x": ir.Input(shape=(6,)), "fa": aff(5, 6, 0.2), "a": alpha, "rec": aff(5, 5, -0.2), "y": ir.Output()},
                    [("x", "fa"), ("fa", "a"), ("a", "rec"), ("rec", "a"), ("a", "y")])


@needs_gxx
@pytest.mark.parametrize("kind", ["two-inputs", "recurrent"])
def test_alpha_with_several_inputs_or_in_a_loop_is_bit_exact_in_c_simulation(kind, tmp_path):
    modes = ["subtract", "zero", "none"]
    for mode in modes:
        assert bool(_ir_graph(kind, mode).cycles()) == (kind == "recurrent")
    # every reset mode a branch of one graph (tests/backend/branches.py): one C simulation build for the three
    g = side_by_side({mode: _ir_graph(kind, mode) for mode in modes}, "x")
    x = torch.rand(T, B, 6, generator=torch.Generator().manual_seed(1)) * 2
    rep = get_backend("fpga").verify(g, x, n_steps=T, work_dir=tmp_path)
    assert rep.ok, rep.summary()
    for mode in modes:
        assert {f"spikes/a_{mode}", f"membranes/a_{mode}"} <= set(rep.compared) and int(np.count_nonzero(rep.csim.spikes[f"a_{mode}"])) > 0, mode
    if kind == "two-inputs":
        top = (tmp_path / "firmware" / "talon_top.cpp").read_text()
        for mode in modes:  # the inputs really are aligned and summed
            assert f"isum_n_a_{mode});" in top and "k_align_add" in top.split(f"isum_n_a_{mode});")[0].splitlines()[-1], mode
