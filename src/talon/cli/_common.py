"""Shared machinery of the `talon` command line: error policy, --json output, consoles, graph loading.

Imports only the standard library and click at module level: every other import happens inside the
function that needs it, so `talon analyze` and `talon lint` never import torch and start fast.

Exit codes (every command):
    0  success
    1  the command ran and its check failed (lint --strict with errors, validate on an invalid graph,
       compare on differing graphs, hash --verify on a mismatch, ...)
    2  error: bad usage, unreadable file, a TalonError from the library, ... One line on stderr;
       the traceback only with -v/--verbose.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import click

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


@dataclass
class _State:
    verbose: bool = False
    quiet: bool = False


STATE = _State()


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        STATE.verbose = True
    return value


verbose_option = click.option(
    "-v", "--verbose", is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
    help="Show the full traceback when something fails.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document (stable schema, see docs/cli.md) instead of text.")


def command_options(fn: Callable) -> Callable:
    """Options every command takes (-v)."""
    return verbose_option(fn)


# -- output -----------------------------------------------------------------------------------------------

def console(stderr: bool = False):
    """A rich Console on stdout (or stderr). Wide and plain when not writing to a terminal."""
    from rich.console import Console

    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=stderr, highlight=False, width=max(c.width, 140), soft_wrap=True)
    return c


def esc(text: Any) -> str:
    """User text (node names, paths) made safe inside rich markup."""
    from rich.markup import escape

    return escape(str(text))


def emit_json(command: str, payload: dict) -> None:
    """Print `payload` as the JSON document of `command`: {"schema": "talon.<command>/1", ...payload}
    (talon.report.document; non-finite numbers become null, talon._json's policy)."""
    from talon.report import document_text

    click.echo(document_text(command, payload))


def shape_str(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def shapes_str(shapes: Any) -> str:
    if shapes is None:
        return "?"
    if not shapes:
        return "-"
    return " ".join(shape_str(s) for s in shapes)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"


# -- inputs -----------------------------------------------------------------------------------------------

graph_argument = click.argument("graph_path", metavar="MODEL.t1c", type=click.Path(dir_okay=False, path_type=str))


def load_graph(path: str):
    """Read a .t1c file (TalonFormatError, with the file named, on any problem)."""
    from talon.ir import read

    return read(path)


def write_graph(path: str, graph: Any) -> None:
    from talon.ir import write

    write(path, graph)


def plot_option(help_text: str = "Save a plot of the result to PATH (PNG, SVG or PDF).") -> Callable:
    return click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=str), default=None, help=help_text)


def save_figure(fig: Any, path: str) -> str:
    """Save a matplotlib figure made by talon.viz.plots and close it."""
    from talon.viz.plots import save_figure as _save

    return _save(fig, path)


# -- errors -----------------------------------------------------------------------------------------------

def error_line(exc: BaseException) -> str:
    """One clear line for an exception: the library's own message, prefixed by its kind when that helps."""
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else ""
    if len(msg) > 1:
        text += " ..."
    try:
        from talon.errors import TalonError
    except Exception:  # pragma: no cover
        TalonError = ()  # type: ignore
    if isinstance(exc, TalonError):
        return text or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        name = getattr(exc, "filename", None)
        return f"no such file: {name}" if name else (text or "file not found")
    if isinstance(exc, OSError):
        return f"{exc.strerror or text}: {exc.filename}" if getattr(exc, "filename", None) else (text or type(exc).__name__)
    if isinstance(exc, ImportError) and getattr(exc, "name", None):
        return f"missing dependency {exc.name!r}: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def report_error(exc: BaseException) -> int:
    """Print `exc` as one line on stderr (and its traceback with -v); return the exit code."""
    if STATE.verbose:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    hint = ""
    if not STATE.verbose and not _expected(exc):
        hint = " (run with -v for the traceback)"
    click.echo(f"talon: error: {error_line(exc)}{hint}", err=True)
    return EXIT_ERROR


def _expected(exc: BaseException) -> bool:
    """Errors that are the user's input, not a bug: their message is the whole story."""
    try:
        from talon.errors import TalonError
    except Exception:  # pragma: no cover
        return False
    return isinstance(exc, (TalonError, click.ClickException, OSError))


class CheckFailed(Exception):
    """Raised by a command whose check failed (exit 1); the message, if any, was already printed."""

    def __init__(self, message: str = ""):
        super().__init__(message)
