"""Fixtures for the mapping tests; builders live in mapping_helpers.py (importable by test modules)."""

import pytest

from mapping_helpers import hw_small


@pytest.fixture
def small_hw():
    return hw_small()
