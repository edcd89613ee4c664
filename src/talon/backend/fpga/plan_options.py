"""Which fpga backend options choose the fixed-point plan, and the refusal of them where the plan is
already made (a HardwareDescriptor or a generated project): applying them would need a new plan, and
ignoring them would silently generate another project than the one asked for."""

from __future__ import annotations

from typing import Any

from talon.errors import BackendError


def check_no_plan_options(**options: Any) -> None:
    """Refuse any of `options` (fixed_config, calibration_inputs, n_steps, calibration) that is set: the
    thing given is already quantised."""
    given = [k for k, v in options.items() if v is not None]
    if given:
        raise BackendError(
            f"{', '.join(f'{k}=' for k in given)} chooses the fixed-point plan, but a HardwareDescriptor or generated "
            f"project is already quantised (its formats and integers are fixed): pass the Graph or .t1c path instead "
            f"to plan it with these options, or drop them"
        )
