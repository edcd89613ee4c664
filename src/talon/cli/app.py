"""The `talon` click group: registers every command and applies the error policy of talon.cli._common."""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from typing import Any

import click

import talon
from talon.cli import _common
from talon.cli._common import EXIT_ERROR, EXIT_FAILED, CheckFailed, report_error


class TalonGroup(click.Group):
    """A click Group whose `main` turns every failure into one line on stderr and exit code 2.

    CliRunner and the console script both go through `main`, so tests see exactly what users see.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        _common.STATE.verbose = False
        if args is None:
            args = sys.argv[1:]
        args = list(args)
        if any(a in ("-v", "--verbose") for a in args[: args.index("--") if "--" in args else len(args)]):
            _common.STATE.verbose = True
        _common.STATE.command = _command_words(args)
        try:
            # Python warnings (a TalonFormatWarning on reading a file, ...) are one line each on stderr,
            # `talon: warning: <message>`; the filters (-W, PYTHONWARNINGS) still decide which are shown
            with warnings.catch_warnings():
                warnings.showwarning = _common.show_warning
                # in a context of its own: the inputs the command protects from its outputs
                # (talon.ir._atomic.protect_input) are forgotten when it returns
                rv = contextvars.copy_context().run(super().main, args, prog_name or "talon", complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except CheckFailed:
            code = EXIT_FAILED
        except click.exceptions.Abort:
            click.echo("talon: aborted", err=True)
            code = EXIT_ERROR
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message(), err=True)
            code = EXIT_ERROR
        except click.ClickException as exc:
            code = _usage_error(exc)
        except KeyboardInterrupt:
            click.echo("talon: interrupted", err=True)
            code = 130
        except Exception as exc:  # noqa: BLE001 - the policy: one line, exit 2, traceback under -v
            code = report_error(exc)
        if standalone_mode:
            sys.exit(code)
        return code


def _command_words(args: list[str]) -> str:
    """The command (and sub-command) named in `args`: "simulate", "convert fold-batchnorm", or ""."""
    words = [a for a in args if not a.startswith("-")][:2]
    if not words or words[0] not in cli.commands:
        return ""
    group = cli.commands[words[0]]
    if isinstance(group, click.Group) and len(words) > 1 and words[1] in group.commands:
        return " ".join(words)
    return words[0]


def _usage_error(exc: click.ClickException) -> int:
    msg = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    click.echo(f"talon: error: {msg}{where}", err=True)
    return exc.exit_code if exc.exit_code != 1 else EXIT_ERROR


@click.group(cls=TalonGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Show full tracebacks on errors.")
# talon.__version__, the one source of TALON's version (info and stamps report the same)
@click.version_option(version=talon.__version__, prog_name="talon", message="%(prog)s %(version)s")
def cli(verbose: bool) -> None:
    """TALON: carry spiking neural networks from snnTorch to neuromorphic hardware.

    Exit codes: 0 success, 1 a check failed (lint --strict or --warnings-as-errors, validate,
    compare, hash --verify or --check-stamp, trace without a path, verify on a mismatch,
    profile --budget over budget), 2 an error (one line on stderr; add -v for the traceback).
    """
    if verbose:
        _common.STATE.verbose = True


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point.

    The command line is a program, so it chooses a threading policy (docs/performance.md): OpenMP
    workers sleep when idle (OMP_WAIT_POLICY=PASSIVE) unless the user set the variable; busy-waiting
    workers made per-step simulation 10-17x slower on a loaded 2-core machine. Commands import torch
    only after this point, so the setting takes effect; the library itself never sets it. OpenBLAS
    (numpy's and scipy's BLAS) likewise: its idle workers spin for 2**28 TSC cycles (about 0.1 s)
    after starting and after every call before they sleep, which cost `talon analyze` about 100 ms of
    CPU on another core for no work; 2**20 cycles (under 1 ms) keeps them warm between the calls of
    one computation. Commands import numpy only after this point too.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
    return cli.main(args=argv, prog_name="talon")


def _register() -> None:
    from talon.cli import analysis_cmds, convert_cmds, eval_cmds, graph_cmds, map_cmds, run_cmds, sweep_cmds, viz_cmds

    for module in (graph_cmds, analysis_cmds, convert_cmds, run_cmds, map_cmds, viz_cmds, eval_cmds, sweep_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
