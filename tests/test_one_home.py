"""One home per primitive (ARCHITECTURE.md): no list of primitive type names outside a registry.

Every concern that depends on the primitive type is a registry keyed by type, and traits come from the
node class. So a literal collection (tuple, list, set, dict) naming two or more registered primitive
types may appear only as the arguments of a registration call, as the loop of a `for` that registers,
or in the few modules listed below with the reason they own such a list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import talon.ir as ir

SRC = Path(__file__).resolve().parents[1] / "src"

ALLOWED = {
    "talon.ir.primitives": "the package's export list (__all__)",
    # NIR's own class names (type(n).__name__ of nir objects: "Input", "Conv2d", "LIF", ...) coincide with
    # TALON's type names; these modules compare against those. The rest of talon.ir.nir* is scanned.
    "talon.ir.nir_import": "NIR class names of the nodes it reads",
    "talon.ir.nir_layers": "NIR class names of the nested graphs it reads",
    "talon.ir.nir_neurons": "NIR class names, beside each TALON neuron in its registration table",
    "talon.ir.nir_units": "NIR class names of the neurons whose time constants it rescales",
    "talon.ir.nir_fit": "NIR class names of the nodes whose parameters are per element, or dense weights",
    "talon.sdk.convert": "the transforms' own scope: which layers each rewrites, with the weight layout of each written out",
    "talon.sdk.lint": "the canonical node names TALON gives Input and Output nodes",
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _registers(node: ast.AST) -> bool:
    """A call whose function's name starts with `register` (register_cost, register_fixed_rule, ...)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name.startswith(("register", "refuse")) or name == "reg":  # a refusal is a registration too
                return True
    return False


def type_name_lists(path: Path, types: set[str]) -> list[tuple[int, list[str]]]:
    """(line, type names) of every literal collection naming two or more primitive types outside a registration."""
    tree = ast.parse(path.read_text(), str(path))
    parents: dict | None = None  # built on the first candidate: most files name no two types together
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None] + node.values
        else:
            continue
        names = [e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in types]
        if len(names) < 2:
            continue
        if parents is None:
            parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        child, ok = node, False
        while child in parents and not ok:
            parent = parents[child]
            ok = (isinstance(parent, ast.Call) and _registers(parent)) or (
                isinstance(parent, ast.For) and child is parent.iter and any(_registers(b) for b in parent.body))
            child = parent
        if not ok:
            found.append((node.lineno, names))
    return found


def test_no_type_name_list_outside_a_registry():
    types = set(ir.list_primitives()) - {"Graph"}
    offenders = []
    for path in sorted((SRC / "talon").rglob("*.py")):
        module = _module(path)
        if any(module == m or module.startswith(m + "_") or module.startswith(m + ".") for m in ALLOWED):
            continue
        offenders += [f"{module}:{line}: {names}" for line, names in type_name_lists(path, types)]
    assert offenders == [], "lists of primitive type names outside a registry (make them traits or registrations):\n" + "\n".join(offenders)


def test_the_scan_finds_a_list_and_accepts_registrations(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('NEURONS = ("LIF", "IF")\nfor _t in ("LIF", "IF"):\n    register_cost(_t, None)\nregister_x(("LIF", "CubaLIF"))\n'
                   'if t in ("Affine", "Linear"):\n    pass\n')
    assert type_name_lists(src, {"LIF", "IF", "CubaLIF", "Affine", "Linear"}) == [(1, ["LIF", "IF"]), (5, ["Affine", "Linear"])]
