import pytest

from io_events import random_events


@pytest.fixture
def events():
    return random_events()
