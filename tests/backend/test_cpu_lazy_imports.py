"""talon.backend.cpu resolves its public names lazily: its numpy-only modules load without torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["talon.backend.cpu.fixed_plan", "talon.backend.cpu.fixed_rules", "talon.backend.cpu"])
def test_the_fixed_point_plan_does_not_import_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'snntorch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_public_names_resolve_on_use():
    import talon.backend.cpu as cpu
    from talon.backend import get_backend
    from talon.backend.cpu.backend import CPUBackend
    from talon.backend.cpu.fixed import FixedPointConfig, plan_fixed_point
    from talon.backend.cpu.profiler import LatencyModel

    assert cpu.CPUBackend is CPUBackend and cpu.FixedPointConfig is FixedPointConfig
    assert cpu.plan_fixed_point is plan_fixed_point and cpu.LatencyModel is LatencyModel
    assert type(get_backend("cpu")) is CPUBackend and set(cpu.__all__) <= set(dir(cpu))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        cpu.nothing  # noqa: B018
