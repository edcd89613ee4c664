"""Fixtures of the backend tests; the graphs live in backend_graphs.py, what the fpga tests share besides
the `fpga` fixture in fpga_helpers.py."""

from __future__ import annotations

import pytest

from talon import ir

from backend_graphs import build_hybrid, build_mlp


@pytest.fixture(scope="session")
def hybrid() -> ir.Graph:
    return build_hybrid()


@pytest.fixture
def mlp() -> ir.Graph:
    return build_mlp()


@pytest.fixture(scope="session")
def cpu():
    from talon.backend import get_backend

    return get_backend("cpu")


@pytest.fixture(scope="session")
def fpga():
    from talon.backend import get_backend

    return get_backend("fpga")
