"""NaN in a parameter that must lie in a range (a time constant > 0, a decay in [0, 1], a variance >= 0) is
refused naming the field: through the Python API, through snnTorch's exporter (beta = NaN), and through reading
a file (the existing SDK's, or a TALON file another tool edited). `np.any(v <= 0)` is False for NaN, so these
used to read and run silently with every membrane NaN."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import talon.ir as ir
from talon.errors import GraphValidationError, PrimitiveError, TalonFormatError

from .test_format import unseal

COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"
NAN = float("nan")


def _with(values, i=1, dtype=np.float64):
    a = np.asarray(values, dtype=dtype).copy()
    a.reshape(-1)[i] = NAN
    return a


# (type, field, valid keyword arguments); the field gets a NaN in one element
CASES = [
    ("LIF", "tau", lambda: dict(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))),
    ("LI", "tau", lambda: dict(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3))),
    ("CubaLIF", "tau_syn", lambda: dict(tau_syn=np.full(3, 2.0), tau_mem=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3),
                                        v_threshold=np.ones(3))),
    ("CubaLIF", "tau_mem", lambda: dict(tau_syn=np.full(3, 2.0), tau_mem=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3),
                                        v_threshold=np.ones(3))),
    ("Alpha", "tau_exc", lambda: dict(tau_exc=np.full(3, 20.0), tau_inh=np.full(3, 5.0), v_threshold=np.ones(3))),
    ("Alpha", "tau_inh", lambda: dict(tau_exc=np.full(3, 20.0), tau_inh=np.full(3, 5.0), v_threshold=np.ones(3))),
    ("ALIF", "voltage_decay", lambda: dict(threshold=np.ones(3), threshold_step=np.ones(3), current_decay=np.full(3, 0.25),
                                           voltage_decay=np.full(3, 0.5), threshold_decay=np.full(3, 0.05),
                                           refractory_decay=np.full(3, 0.2))),
    ("BatchNorm1d", "running_var", lambda: dict(num_features=3, weight=np.ones(3), bias=np.zeros(3), running_mean=np.zeros(3),
                                                running_var=np.ones(3))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("type_name,field,kwargs", CASES, ids=[f"{t}.{f}" for t, f, _ in CASES])
def test_nan_in_a_ranged_field_is_refused_naming_it(type_name, field, kwargs, dtype):
    cls = ir.get_node_class(type_name)
    good = kwargs()
    node = cls(**good)  # the valid form builds
    bad = {**good, field: _with(good[field], dtype=dtype)}
    with pytest.raises(PrimitiveError) as info:
        cls(**bad)
    assert isinstance(info.value, GraphValidationError)
    assert f"{type_name}.{field}" in str(info.value) and "NaN" in str(info.value) and "1 of 3" in str(info.value)
    with pytest.raises(PrimitiveError, match=rf"{type_name}\.{field}.*NaN"):
        node.replace(**{field: _with(good[field], i=0, dtype=dtype)})
    if type_name != "BatchNorm1d":  # a neuron parameter may be one value for every neuron
        with pytest.raises(PrimitiveError, match=rf"{type_name}\.{field}.*NaN at 1 of 1"):
            node.replace(**{field: np.asarray(NAN, dtype=dtype)})


def test_nan_upsample_scale_factor_is_refused_and_a_size_still_decides():
    with pytest.raises(PrimitiveError, match=r"Upsample\.scale_factor.*NaN"):
        ir.Upsample(scale_factor=NAN)
    with pytest.raises(PrimitiveError, match=r"Upsample\.scale_factor"):
        ir.Upsample(scale_factor=-2.0)
    assert ir.Upsample(scale_factor=NAN, size=(4, 4)).size == (4, 4)  # torch ignores scale_factor when size is given


def test_infinite_time_constants_stay_valid():
    # tau = inf: no leak and no input through it; a number, in the range, unlike NaN
    lif = ir.LIF(tau=np.array([np.inf, 5.0]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    assert np.isinf(lif.tau[0])


def test_snntorch_leaky_with_nan_beta_is_refused_naming_tau():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snntorch.export_talonir import export_to_ir

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=NAN, init_hidden=True, output=True))
    with pytest.raises(PrimitiveError, match=r"LIF\.tau.*NaN"):
        export_to_ir(net, torch.zeros(1, 4))


def _read_refuses(p: Path, node: str, field: str) -> None:
    with pytest.raises(TalonFormatError) as info:
        ir.read(p)
    msg = str(info.value)
    assert p.name in msg and f"'{node}'" in msg and field in msg and "NaN" in msg, msg


def test_a_talon_file_edited_to_hold_a_nan_tau_is_refused(tmp_path):
    g = ir.Graph({"input": ir.Input(shape=(3,)), "lif": ir.LIF(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3),
                                                                 v_threshold=np.ones(3)), "output": ir.Output()},
                 [("input", "lif"), ("lif", "output")])
    p = tmp_path / "edited.t1c"
    ir.write(p, g)
    with h5py.File(p, "r+") as f:
        f["graph/nodes/lif/tau"][1] = NAN
    unseal(p)  # another tool that edits the file without knowing TALON's seal: the content is what is checked
    _read_refuses(p, "lif", "tau")


@pytest.mark.skipif(not (COMPAT / "mlp_lif.t1c").is_file(), reason=f"existing-SDK sample files not found at {COMPAT}")
@pytest.mark.parametrize("sample,node,field", [("mlp_lif", "lif1", "tau"), ("norm", "bn1d", "running_var")])
def test_an_sdk_file_with_a_nan_in_a_ranged_field_is_refused(sample, node, field, tmp_path):
    p = tmp_path / f"{sample}.t1c"
    shutil.copy(COMPAT / f"{sample}.t1c", p)
    assert ir.read(p) is not None
    with h5py.File(p, "r+") as f:
        f[f"graph/nodes/{node}/{field}"][2] = NAN
    _read_refuses(p, node, field)
