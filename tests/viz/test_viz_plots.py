"""talon.viz.plots: every plot returns a matplotlib Figure and saves to PNG/SVG; no torch, no pyplot."""

import subprocess
import sys

import numpy as np
import pytest

from talon.viz import plots


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def test_spike_raster_and_rates(tmp_path):
    rng = np.random.default_rng(0)
    spikes = {"lif1": rng.random((30, 2, 40)) < 0.2, "lif2": rng.random((30, 2, 5)) < 0.4}
    fig = plots.spike_raster(spikes, sample=1, layers=["lif2", "lif1"])
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == ["lif2", "lif1"]
    _png(tmp_path / "r.png") if plots.save_figure(fig, tmp_path / "r.png") else None
    fig = plots.firing_rates({"float": {"a": 0.1, "b": 0.3}, "fixed": {"a": 0.12, "b": 0.28}})
    assert len(fig.axes[0].patches) == 4
    plots.save_figure(fig, tmp_path / "rates.svg")
    assert (tmp_path / "rates.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(Exception, match="record"):
        plots.spike_raster({})
    # a big layer: the neurons shown are spread over all of it, not its first ones
    big = np.zeros((4, 1, 1000), bool)
    big[:, 0, 990:] = True  # only the last neurons fire
    fig = plots.spike_raster({"conv": big}, max_neurons=100)
    assert "100 evenly spaced" in fig.axes[0].get_ylabel()
    assert fig.axes[0].collections[0].get_offsets().shape[0] > 0  # the last neurons are among those drawn


def test_memory_breakdown(branchy, tmp_path):
    fig = plots.memory_breakdown(branchy)
    assert len(fig.axes) == 2
    _png(tmp_path / "m.png") if plots.save_figure(fig, tmp_path / "m.png") else None


def test_core_utilisation(branchy_mapping, tmp_path):
    grids = plots.utilisation_grids(branchy_mapping)
    assert set(grids) == {"neurons", "weight memory"} and grids["neurons"].shape == (3, 3)
    hw = branchy_mapping.hardware
    assert np.isclose(grids["neurons"].sum() * hw.neurons_per_core, branchy_mapping.metrics["neurons"])
    expected = branchy_mapping.utilisation_grids()  # the plot draws the result's own numbers
    assert all(np.array_equal(grids[k], expected[k]) for k in expected)
    fig = plots.core_utilisation(branchy_mapping)
    plots.save_figure(fig, tmp_path / "c.png")
    _png(tmp_path / "c.png")
    assert plots.utilisation_grids(np.eye(2))["capacity"].shape == (2, 2)


def test_energy_breakdown(tmp_path):
    from types import SimpleNamespace as NS

    layer = lambda n, k: NS(name=n, mac_energy_uj=k, spike_energy_uj=k / 2, neuron_energy_uj=0.1, elementwise_energy_uj=0.0, sram_energy_uj=k)  # noqa: E731
    prof = NS(mac_energy_uj=3.0, spike_energy_uj=1.5, neuron_energy_uj=0.2, elementwise_energy_uj=0.0, sram_energy_uj=3.0, energy_estimate_uj=7.7,
              layers={"a": layer("a", 1.0), "b": layer("b", 2.0)}, energy_preset="45nm_cmos", mode="fixed", timesteps=10, total_latency_us=3.0)
    fig = plots.energy_breakdown(prof)
    plots.save_figure(fig, tmp_path / "e.png")
    _png(tmp_path / "e.png")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["MAC", "spike (AC)", "neuron", "elementwise", "SRAM"]
    # a mapped graph's network-on-chip energy is part of the total: it gets its own bar, and the shares count it
    prof.noc_energy_uj, prof.energy_estimate_uj = 2.3, 10.0
    prof.layers["a"].noc_energy_uj = 2.3
    fig = plots.energy_breakdown(prof)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][-1] == "NoC"
    shares = [t.get_text() for t in fig.axes[0].texts]
    assert shares == ["30%", "15%", "2%", "0%", "30%", "23%"]
    assert "NoC" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]


def test_save_rejects_unknown_suffix(tmp_path):
    from talon.errors import TalonError

    with pytest.raises(TalonError, match="png"):
        plots.save_figure(plots.firing_rates({"a": 0.5}), tmp_path / "x.txt")


def test_viz_never_imports_torch_or_pyplot():
    code = (
        "import sys; sys.path.insert(0, 'tests/viz'); from viz_graphs import build_branchy; "
        "from talon.viz import plots, html; g = build_branchy(); html.render_html(g); plots.memory_breakdown(g); "
        "print(sorted(m for m in ('torch', 'snntorch', 'matplotlib.pyplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
