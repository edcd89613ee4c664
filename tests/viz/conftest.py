import pytest

from viz_graphs import build_branchy


@pytest.fixture
def branchy():
    return build_branchy()


@pytest.fixture
def branchy_mapping(branchy):
    from talon.mapping import HardwareSpec, map_graph

    return map_graph(branchy, HardwareSpec(mesh=(3, 3), neurons_per_core=64))
