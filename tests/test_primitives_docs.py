"""docs/primitives.md's code blocks run, in order, in one namespace (as a reader pastes them): a user
neuron gets float and fixed-point simulation, cost, bounds, lint and a bit-exact FPGA kernel through
registrations alone."""

from talon.ir import node as node_module

from doc_blocks import run_blocks


def test_primitives_doc_code_blocks_run(tmp_path, monkeypatch):
    from talon.backend.cpu.fixed_registry import unregister_fixed_rule
    from talon.backend.fpga.emitters import unregister_emitter
    from talon.bridge import modules
    from talon.sdk import _bounds

    monkeypatch.chdir(tmp_path)
    try:
        count, ns = run_blocks("primitives.md")
        assert count >= 4
        sim = ns["sim"]
        assert sim.mode == "fixed" and sim.fixed_point.nodes["n"].kind == "neuron" and sum(sim.spike_counts.values()) > 0
        assert "NEURON_NEVER_FIRES" not in ns["lint_graph"](ns["g"]).codes
        assert ns["report"] is None or ns["report"].ok, ns["report"]  # None: no C++ compiler here
    finally:
        modules.RUNTIME_BUILDERS.pop("Counter", None)
        _bounds._RULES.pop("Counter", None)
        unregister_fixed_rule("Counter")
        unregister_emitter("Counter")
        node_module._REGISTRY.pop("Counter", None)
