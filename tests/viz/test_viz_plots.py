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


def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _tick_overlaps(fig, ax) -> list:
    """Pairs of neighbouring x tick labels whose text runs into each other. Upright labels: their boxes
    overlap. Slanted ones (parallel, anchored at their ticks): the gap between neighbouring baselines,
    tick spacing x sin(angle), is less than a line of text."""
    import math

    r = _renderer(fig)
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    out = []
    for i, (a, b) in enumerate(zip(labels, labels[1:])):
        angle = math.radians(a.get_rotation())
        if angle == 0:
            hit = a.get_window_extent(r).overlaps(b.get_window_extent(r))
        else:
            dx = abs(ax.transData.transform((b.get_position()[0], 0))[0] - ax.transData.transform((a.get_position()[0], 0))[0])
            hit = dx * math.sin(angle) < a.get_fontsize() * fig.dpi / 72
        if hit:
            out.append((i, i + 1))
    return out


def _bars_clear_the_frame(fig, ax) -> None:
    """The tallest bar ends well below the top of the frame, its annotation and the legend inside the frame
    without touching any bar."""
    r = _renderer(fig)
    frame = ax.get_window_extent(r)
    bars = [p.get_window_extent(r) for p in ax.patches if p.get_height() > 0]
    for b in bars:
        assert b.y1 < frame.y1 - 0.08 * frame.height
    for t in ax.texts:
        assert t.get_window_extent(r).y1 < frame.y1 - 2
    legend = ax.get_legend()
    if legend is not None:
        box = legend.get_window_extent(r)
        assert not any(box.overlaps(b) for b in bars)


def test_energy_breakdown_is_readable():
    """Long layer names and a NoC bar: no two tick labels overlap, no bar or share touches the frame, every
    axis names its unit."""
    from types import SimpleNamespace as NS

    for n in (4, 9):  # few long names (upright labels used to run together) and many
        names = [f"encoder_block{i}_conv_leaky" for i in range(n)]
        layers = {x: NS(name=x, mac_energy_uj=1.0 + i, spike_energy_uj=0.5, neuron_energy_uj=0.1, elementwise_energy_uj=0.0, sram_energy_uj=2.0, noc_energy_uj=0.3) for i, x in enumerate(names)}
        prof = NS(mac_energy_uj=45.0, spike_energy_uj=4.5, neuron_energy_uj=0.9, elementwise_energy_uj=0.0, sram_energy_uj=18.0, noc_energy_uj=2.7,
                  energy_estimate_uj=71.1, layers=layers, energy_preset="45nm_cmos", mode="float", timesteps=10, total_latency_us=3.0)
        fig = plots.energy_breakdown(prof)
        for ax in fig.axes[:2]:
            assert _tick_overlaps(fig, ax) == []
            _bars_clear_the_frame(fig, ax)
            assert "µJ" in ax.get_ylabel() and ax.get_xlabel()
        assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == names


def test_every_axis_has_a_unit_and_weights_are_not_per_sample(branchy, branchy_mapping):
    fig = plots.memory_breakdown(branchy)
    assert "bytes" in fig.axes[0].get_ylabel() and "bytes" in fig.axes[1].get_ylabel()
    assert all(ax.get_xlabel() for ax in fig.axes[:2])
    assert "weights per model" in fig._suptitle.get_text()
    for ax in fig.axes[:2]:
        _bars_clear_the_frame(fig, ax)
    fig = plots.firing_rates({"a": 0.2, "b": 0.9})
    assert fig.axes[0].get_xlabel() == "layer" and "step" in fig.axes[0].get_ylabel()
    fig = plots.spike_raster({"lif": np.ones((3, 1, 2), bool)})
    assert "dt" in fig.axes[0].get_xlabel() and "neuron index" in fig.axes[0].get_ylabel()
    fig = plots.core_utilisation(branchy_mapping)
    assert all("core" in ax.get_xlabel() and "core" in ax.get_ylabel() for ax in fig.axes if ax.get_xlabel())


def test_accuracy_and_confusion_plots(tmp_path):
    from talon.errors import TalonError
    from talon.viz.accuracy import accuracy_by_step
    from talon.viz.confusion import confusion_matrix

    fig = accuracy_by_step({"float": [0.25, 0.5, 0.75], "fixed": [0.25, 0.5, 0.5]})
    ax = fig.axes[0]
    assert [list(ln.get_ydata()) for ln in ax.get_lines()] == [[25.0, 50.0, 75.0], [25.0, 50.0, 50.0]]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3] and ax.get_ylabel() == "accuracy (%)"
    plots.save_figure(fig, tmp_path / "acc.png")
    _png(tmp_path / "acc.png")
    with pytest.raises(TalonError, match="non-empty"):
        accuracy_by_step([])
    fig = confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["3", "1", "0", "4"]
    assert fig.axes[0].get_xlabel() == "predicted class"
