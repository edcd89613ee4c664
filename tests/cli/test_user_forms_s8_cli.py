"""The `talon` CLI on files a user makes (audit s8): an snnTorch CSNN exported to .t1c, a hardware
description written by hand as JSON, the model as a NIR file written by the `nir` package itself. Every
command's --json output is parsed and checked against the Python API on the same file, and misuse gets
exit 2 with one line naming the thing at fault.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from talon import ir, sdk
import talon.mapping as tm

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nn = torch.nn


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The user's CSNN as model.t1c, and a hand-written hardware JSON (floats for ints, fields left out)."""
    from talon.bridge import export_to_ir

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.5, init_hidden=True),
                        nn.Flatten(), nn.Linear(4 * 5 * 5, 6), snn.Leaky(beta=0.5, init_hidden=True, output=True))
    d = tmp_path_factory.mktemp("s8cli")
    ir.write(d / "model.t1c", export_to_ir(net, torch.rand(1, 1, 12, 12)))
    (d / "hw.json").write_text('{"mesh": [3.0, 3.0], "neurons_per_core": 64.0, "weight_bits": 4,\n'
                               ' "energy_per_hop": 2e-12, "max_fan_in": 200}\n')
    return d


def _doc(out):
    return json.loads(out)


def test_analyze_profile_lint_hash_json_match_the_api(run_cli, files):
    path = files / "model.t1c"
    code, out, _ = run_cli("analyze", path, "--json")
    st = sdk.analyze_graph(path)
    t = _doc(out)["totals"]
    assert code == 0 and (t["params"], t["macs"], t["synapses"], t["neurons"], t["param_bytes"]) == (
        st.total_params, st.total_macs, st.total_synapses, st.num_neurons, st.total_bytes)
    assert t["neurons"] == 100 + 6 and t["synapses"] == 4 * 10 * 10 * 9 + 100 * 6
    code, out, _ = run_cli("profile", path, "--json", "--activation-bytes", "2")
    p = sdk.profile_graph(path, activation_bytes=2)
    m = _doc(out)["memory"]
    assert code == 0 and (m["weights"], m["activations"], m["state"], m["total"]) == (
        p.weight_memory, p.activation_memory, p.state_memory, p.total_memory)
    assert _doc(out)["ops"] == {"macs": p.mac_ops, "spike_ops": p.spike_ops, "spike_events": p.spike_events}
    code, out, _ = run_cli("lint", path, "--json")
    assert code == 0 and [i["code"] for i in _doc(out)["issues"]] == [i.code for i in sdk.lint_graph(path).issues]
    code, out, _ = run_cli("hash", path)
    assert code == 0 and out.split()[0] == sdk.fingerprint_graph(path)


def test_map_json_with_a_hand_written_hardware_file_matches_the_api(run_cli, files, tmp_path):
    path = files / "model.t1c"
    code, out, err = run_cli("map", path, "--hardware", files / "hw.json", "--algorithm", "greedy", "--rate", "0.25",
                             "--json", "-o", tmp_path / "mapped.t1c")
    assert code == 0, err
    doc = _doc(out)
    hw = tm.HardwareSpec.from_dict(json.loads((files / "hw.json").read_text()))
    assert doc["hardware"] == hw.to_dict() and hw.weight_memory_bytes_per_core == tm.HardwareSpec().weight_memory_bytes_per_core
    res = tm.map_graph(path, hw, "greedy", default_rate=0.25)
    assert doc["layers"] == res.layers == ["input", "2", "5"]
    assert {k: doc["metrics"][k] for k in res.metrics} == pytest.approx(res.metrics)
    assert [c["neurons"] for c in doc["cores"]] == res.cores["neurons"].tolist()
    assert [c["weight_bytes"] for c in doc["cores"]] == res.cores["weight_bytes"].tolist()
    # weights at 4 bits: conv's 9 synapses per neuron of '2', the dense layer's 100 per neuron of '5'
    assert sum(c["weight_bytes"] for c in doc["cores"]) >= (3600 + 600) * 4 // 8
    assert max(c["fan_in"] for c in doc["cores"]) <= 200
    stored = tm.MappingResult.from_graph(ir.read(tmp_path / "mapped.t1c"))
    assert stored.metrics == pytest.approx(res.metrics)
    # the energy of the mapped file prices its NoC at the file's energy_per_hop
    code, out, err = run_cli("energy", tmp_path / "mapped.t1c", "--steps", "3", "--json")
    assert code == 0, err
    e = _doc(out)
    from talon.backend import get_backend

    prof = get_backend("cpu").profile(ir.read(tmp_path / "mapped.t1c"), n_steps=3)
    assert e["energy_uj"]["noc"] == pytest.approx(prof.noc_energy_uj) and prof.noc_energy_uj == pytest.approx(prof.noc_packet_hops * 2e-12 * 1e6)


@pytest.mark.parametrize(
    "text, match",
    [('{"mesh": [2.5, 2]}', r"hw.json: HardwareSpec.mesh\[0\] must be an integer, got 2.5"),
     ('{"mesh": "4x4"}', r"hw.json: HardwareSpec.mesh must be \(rows, cols\).*\[rows, cols\]"),
     ('{"mesh": [2, 2], "rows": 2}', r"hw.json: unknown HardwareSpec fields \['rows'\].*the mesh is one field"),
     ('{"neurons_per_core": "lots"}', "hw.json: HardwareSpec.neurons_per_core must be an integer")],
)
def test_hardware_file_mistakes_are_one_line_naming_file_and_field(run_cli, files, tmp_path, text, match):
    (tmp_path / "hw.json").write_text(text)
    code, out, err = run_cli("map", files / "model.t1c", "--hardware", tmp_path / "hw.json")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert __import__("re").search(match, err), err


@pytest.mark.filterwarnings("ignore:the NIR graph does not say")
def test_a_nir_file_written_by_nir_works_where_a_t1c_is_expected(run_cli, tmp_path):
    nir = pytest.importorskip("nir")
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    g = nir.NIRGraph(
        nodes={"in": nir.Input(input_type=np.array([3])), "fc": nir.Affine(weight=w, bias=np.zeros(4, np.float32)),
               "lif": nir.LIF(tau=np.full(4, 2e-3), r=np.full(4, 2e-3 / 1e-4), v_leak=np.zeros(4), v_threshold=np.ones(4)),
               "out": nir.Output(output_type=np.array([4]))},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])
    nir.write(tmp_path / "user.nir", g)
    code, out, _ = run_cli("analyze", tmp_path / "user.nir", "--json")
    assert code == 0 and _doc(out)["totals"]["synapses"] == 12 and _doc(out)["totals"]["neurons"] == 4
    code, out, _ = run_cli("map", tmp_path / "user.nir", "--mesh", "1x1", "--neurons-per-core", "7", "--json")
    assert code == 0 and _doc(out)["metrics"]["neurons"] == 7  # 3 input elements + 4 neurons: exactly full
    code, _, err = run_cli("map", tmp_path / "user.nir", "--mesh", "1x1", "--neurons-per-core", "6")
    errors = [line for line in err.splitlines() if line.startswith("talon: error")]  # beside the dt warning
    assert code == 2 and len(errors) == 1 and "over by 1" in errors[0]
    # the same graph's .t1c bytes under a .nir name: said so, not a NIR parser's complaint
    ir.write(tmp_path / "copy.t1c", ir.read(tmp_path / "user.nir"))
    (tmp_path / "copy.nir").write_bytes((tmp_path / "copy.t1c").read_bytes())
    code, _, err = run_cli("lint", tmp_path / "copy.nir")
    assert code == 2 and "name it .t1c" in err and err.count("talon: error") == 1
    code, out, _ = run_cli("compare", tmp_path / "user.nir", tmp_path / "copy.t1c", "--json")
    assert code == 0 and _doc(out)["identical"]
