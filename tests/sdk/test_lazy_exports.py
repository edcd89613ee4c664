"""talon.sdk resolves its public names lazily: each one is the object its module defines."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import talon.sdk as sdk


def test_every_public_name_resolves_to_its_module_object():
    for name in sdk.__all__:
        home = importlib.import_module(f"talon.sdk.{sdk._HOME[name]}")
        expected = home if sdk._HOME[name] == name else getattr(home, name)
        assert getattr(sdk, name) is expected, name
    namespace: dict = {}
    exec("from talon.sdk import *", namespace)
    assert set(sdk.__all__) <= set(namespace)


def test_the_type_checking_imports_name_every_public_name():
    """The TYPE_CHECKING block (what type checkers and the import-cycle check see) matches __all__ and _HOME."""
    tree = ast.parse(Path(sdk.__file__).read_text())
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("talon.sdk"):
            for alias in node.names:
                imported[alias.name] = alias.name if node.module == "talon.sdk" else node.module.rsplit(".", 1)[1]
    assert imported == sdk._HOME
    assert set(sdk.__all__) == set(sdk._HOME)


def test_unknown_name_is_an_attribute_error():
    try:
        sdk.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("talon.sdk.no_such_thing resolved")


def test_analyze_graph_leaves_the_other_modules_unimported():
    code = "import sys; from talon.sdk import analyze_graph; print(sorted(m for m in sys.modules if m.startswith('talon.sdk.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for module in ("talon.sdk.stamp", "talon.sdk.compare", "talon.sdk.convert", "talon.sdk.query"):
        assert module not in out, out
