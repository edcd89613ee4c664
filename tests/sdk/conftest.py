"""Fixtures for the sdk tests; the graph builders live in sdk_graphs.py (importable by test modules)."""

import pytest

from sdk_graphs import build_hybrid, build_mlp


@pytest.fixture
def hybrid():
    return build_hybrid()


@pytest.fixture
def mlp():
    return build_mlp()
