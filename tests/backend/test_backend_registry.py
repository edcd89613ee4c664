"""Backend registry, base class and capabilities."""

from __future__ import annotations

import subprocess
import sys

import pytest

from talon.backend import Backend, Capabilities, get_backend, list_backends, register_backend
from talon.backend import registry as reg
from talon.errors import BackendError, TalonError


def test_cpu_is_registered_and_shared():
    assert "cpu" in list_backends()
    cpu = get_backend("cpu")
    assert cpu is get_backend("cpu")
    assert cpu.name == "cpu"
    caps = cpu.capabilities
    assert caps.simulate and caps.profile and caps.compile and caps.energy_presets
    assert caps.modes == ("float", "fixed") and not caps.hardware


def test_unknown_backend_names_the_choices():
    with pytest.raises(BackendError, match="unknown backend 'nope'.*cpu"):
        get_backend("nope")
    assert issubclass(BackendError, TalonError)


class _Toy(Backend):
    name = "toy"
    capabilities = Capabilities(simulate=True, modes=("float",))

    def simulate(self, graph, inputs=None, n_steps=None, **kw):
        return "ran"


@pytest.fixture
def clean_registry():
    saved_reg, saved_inst = dict(reg._REGISTRY), dict(reg._INSTANCES)
    yield
    reg._REGISTRY.clear()
    reg._REGISTRY.update(saved_reg)
    reg._INSTANCES.clear()
    reg._INSTANCES.update(saved_inst)


def test_register_a_new_backend_class(clean_registry):
    register_backend("toy", _Toy)
    assert list_backends()[-1] == "toy"
    toy = get_backend("toy")
    assert toy.simulate(None) == "ran"
    with pytest.raises(BackendError, match="does not support profile"):
        toy.profile(None)
    with pytest.raises(BackendError, match="does not support compile"):
        toy.compile(None)
    with pytest.raises(BackendError, match="no numeric mode 'fixed'"):
        toy.check_mode("fixed")
    with pytest.raises(BackendError, match="already registered"):
        register_backend("toy", "talon.backend.cpu:CPUBackend")
    register_backend("toy", "talon.backend.cpu:CPUBackend", replace=True)
    assert get_backend("toy").name == "cpu"


def test_lazy_registration_and_errors(clean_registry):
    register_backend("fpga_stub", f"{__name__}:_Toy")
    assert get_backend("fpga_stub").simulate(None) == "ran"
    register_backend("broken", "talon.no_such_module:X")
    with pytest.raises(BackendError, match="could not be loaded"):
        get_backend("broken")
    register_backend("notabackend", "talon.errors:TalonError")
    with pytest.raises(BackendError, match="not a talon.backend.Backend"):
        get_backend("notabackend")
    for bad in (object, 3, "no_colon"):
        with pytest.raises(BackendError):
            register_backend("x", bad)
    with pytest.raises(BackendError):
        register_backend("", _Toy)


def test_importing_talon_backend_does_not_import_torch():
    code = "import sys, talon.backend; talon.backend.list_backends(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_backends_that_can():
    from talon.backend.registry import backends_that_can

    assert "cpu" in backends_that_can("simulate") and "fpga" not in backends_that_can("simulate")
    assert {"cpu", "fpga"} <= set(backends_that_can("compile"))
