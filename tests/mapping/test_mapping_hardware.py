"""HardwareSpec: validation, presets, storage, mesh helpers."""

import math

import pytest

from talon.errors import MappingError, TalonError
from talon.mapping import PRESETS, HardwareSpec, HardwareSpecError, preset, smallest_mesh


def test_defaults_and_derived():
    hw = HardwareSpec(mesh=(3, 5))
    assert hw.rows == 3 and hw.cols == 5 and hw.num_cores == 15
    assert hw.position(7) == (1, 2) and hw.core_index(1, 2) == 7
    with pytest.raises(MappingError):
        hw.position(15)
    with pytest.raises(MappingError):
        hw.core_index(3, 0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    hw = preset(name)
    assert hw.name == name
    assert HardwareSpec.from_dict(hw.to_dict()) == hw
    assert name in hw.describe()


def test_preset_override_and_unknown():
    hw = preset("loihi-like", mesh=(2, 2))
    assert hw.mesh == (2, 2) and hw.neurons_per_core == PRESETS["loihi-like"].neurons_per_core
    with pytest.raises(HardwareSpecError, match="unknown hardware preset"):
        preset("nope")


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"mesh": (0, 4)}, "mesh"),
        ({"mesh": (4,)}, "mesh"),
        ({"mesh": "4x4"}, "mesh"),
        ({"mesh": (2000, 2)}, "mesh"),
        ({"mesh": (2.5, 2)}, "mesh"),
        ({"neurons_per_core": 0}, "neurons_per_core"),
        ({"neurons_per_core": -3}, "neurons_per_core"),
        ({"neurons_per_core": True}, "neurons_per_core"),
        ({"neurons_per_core": "many"}, "neurons_per_core"),
        ({"weight_memory_bytes_per_core": -1}, "weight_memory_bytes_per_core"),
        ({"weight_bits": 0}, "weight_bits"),
        ({"weight_bits": 65}, "weight_bits"),
        ({"max_fan_in": 0}, "max_fan_in"),
        ({"max_fan_out": -5}, "max_fan_out"),
        ({"link_bandwidth": 0}, "link_bandwidth"),
        ({"link_bandwidth": math.nan}, "link_bandwidth"),
        ({"energy_per_hop": -1e-12}, "energy_per_hop"),
        ({"energy_per_hop": math.inf}, "energy_per_hop"),
        ({"latency_per_hop": None}, "latency_per_hop"),
        ({"link_time_per_packet": -1e-9}, "link_time_per_packet"),
        ({"link_time_per_packet": math.nan}, "link_time_per_packet"),
        ({"link_time_per_packet": "fast"}, "link_time_per_packet"),
    ],
)
def test_silly_values_are_rejected(kw, field):
    with pytest.raises(HardwareSpecError, match=field) as info:
        HardwareSpec(**kw)
    assert isinstance(info.value, MappingError) and isinstance(info.value, TalonError)


def test_integral_floats_are_accepted():
    hw = HardwareSpec(mesh=(2.0, 3), neurons_per_core=128.0)
    assert hw.mesh == (2, 3) and hw.neurons_per_core == 128 and isinstance(hw.neurons_per_core, int)


def test_dict_round_trip_and_unknown_field():
    hw = HardwareSpec(mesh=(2, 3), max_fan_in=64, link_bandwidth=12.5, name="x")
    d = hw.to_dict()
    assert d["mesh"] == [2, 3] and d["max_fan_out"] is None
    assert HardwareSpec.from_dict(d) == hw
    with pytest.raises(HardwareSpecError, match="unknown"):
        HardwareSpec.from_dict({**d, "colour": "red"})


def test_weight_bytes_round_up_to_a_byte():
    assert HardwareSpec(weight_bits=1).weight_bytes(9) == 2
    assert HardwareSpec(weight_bits=4).weight_bytes(3) == 2
    assert HardwareSpec(weight_bits=8).weight_bytes(5) == 5
    assert list(HardwareSpec(weight_bits=2).weight_bytes([0, 1, 4, 5])) == [0, 1, 1, 2]


@pytest.mark.parametrize("cores, mesh", [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (5, (2, 3)), (8, (2, 4)), (9, (3, 3)), (977, (28, 35))])
def test_smallest_mesh(cores, mesh):
    r, c = smallest_mesh(cores)
    assert (r, c) == mesh
    assert r * c >= cores and r <= c <= 2 * r


def test_link_time_per_packet_defaults_to_the_hop_latency():
    hw = HardwareSpec(latency_per_hop=4e-9)
    assert hw.link_time_per_packet is None and hw.packet_time == 4e-9 and "per packet per link" not in hw.describe()
    fast = HardwareSpec(latency_per_hop=4e-9, link_time_per_packet=1e-9)
    assert fast.packet_time == 1e-9 and "1 ns per packet per link" in fast.describe()
    assert HardwareSpec.from_dict(fast.to_dict()) == fast
    old = {k: v for k, v in hw.to_dict().items() if k != "link_time_per_packet"}  # stored before the field existed
    assert HardwareSpec.from_dict(old) == hw
