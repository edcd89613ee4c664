"""Shared machinery of the `talon` command line: error policy, --json output, consoles, graph loading.

Imports only the standard library and click at module level: every other import happens inside the
function that needs it, so `talon analyze` and `talon lint` never import torch and start fast.

Exit codes (every command):
    0  success
    1  the command ran and its check failed (lint --strict with errors, validate on an invalid graph,
       compare on differing graphs, hash --verify on a mismatch, profile --budget over budget, ...)
    2  error: bad usage, unreadable file, a TalonError from the library, ... One line on stderr;
       the traceback only with -v/--verbose.

Python warnings raised while a command runs are shown as one line each on stderr, `talon: warning:
<message>` (show_warning). Library messages keep their text, except Python-API advice that has a
command-line equivalent (cli_wording: "mode='float'" becomes "--mode float", ...).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import click

EXIT_FAILED = 1
EXIT_ERROR = 2


@dataclass
class _State:
    verbose: bool = False
    command: str = ""  # the command being run ("simulate", "convert fold-batchnorm", ...), for error wording


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
    """A rich Console on stdout (or stderr). Wide and plain when not writing to a terminal. Text given
    to its print is made safe_text first: names read from a model never reach the terminal as control
    characters (table cells go through esc, which does the same)."""
    from rich.console import Console

    class SafeConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            super().print(*(safe_lines(o) if isinstance(o, str) else o for o in objects), **kwargs)

    # emoji=False: a node named "a:smile:b" is shown as it is, not with an emoji in it (and rich's emoji
    # table, ~3 ms to import, stays unloaded)
    c = SafeConsole(stderr=stderr, highlight=False, emoji=False)
    if not c.is_terminal:
        c = SafeConsole(stderr=stderr, highlight=False, emoji=False, width=max(c.width, 140), soft_wrap=True)
    return c


def esc(text: Any) -> str:
    """User text (node names, paths) made safe inside rich markup and on the terminal (safe_text)."""
    from rich.markup import escape

    return escape(safe_text(text))


RICH_TABLE_ROWS = 2000  # larger tables are printed as plain aligned text: rich lays out ~1 ms per row


def print_table(c: Any, title: str, columns: list[str], rows: list[list[str]], right: tuple[str, ...] = ()) -> None:
    """A table of user text (cells are raw strings: escaped here) on console `c`: a rich Table, or for
    more than RICH_TABLE_ROWS rows the same columns as plain aligned text (linear, fast on 100,000 rows)."""
    if len(rows) <= RICH_TABLE_ROWS:
        from rich.table import Table

        t = Table(title=esc(title))
        for col in columns:
            t.add_column(col, justify="right" if col in right else "left")
        for row in rows:
            t.add_row(*(esc(x) for x in row))
        c.print(t)
        return
    cells = [[safe_text(x) for x in row] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]

    def line(row: list[str]) -> str:
        return "  ".join(x.rjust(w) if col in right else x.ljust(w) for x, w, col in zip(row, widths, columns)).rstrip()

    out = [safe_text(title), line(columns), line(["-" * w for w in widths]), *map(line, cells)]
    c.file.write("\n".join(out) + "\n")
    c.file.flush()


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

class InputFile(click.Path):
    """An input file option or argument: when the path exists it must be a regular file (a FIFO, device
    or socket would block the command or feed it endless data), and no output of the command may replace
    it (talon.ir._atomic.protect_input). `exists=True` also requires it to exist."""

    def __init__(self, exists: bool = False) -> None:
        super().__init__(exists=exists, dir_okay=False, path_type=str)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import os
        import stat

        path = super().convert(value, param, ctx)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return path  # missing: the reader says so, naming the file
        if not stat.S_ISREG(mode):
            from talon.ir._atomic import file_kind

            self.fail(f"{path!r} is {file_kind(mode)}, not a regular file: give the path of a model or data file", param, ctx)
        from talon.ir._atomic import protect_input

        protect_input(path)
        return path


graph_argument = click.argument("graph_path", metavar="MODEL.t1c", type=InputFile())

MAX_STEPS = 10_000_000  # --steps above this is refused: a typo (1e12) would otherwise run for days
STEPS = click.IntRange(1, MAX_STEPS)
MAX_SEED = 2**63 - 1  # numpy's and torch's generators both take seeds in [0, 2**63)
SEED = click.IntRange(0, MAX_SEED)


def safe_text(text: Any) -> str:
    """User text (node names, paths, metadata) made safe to print on a terminal: control characters
    (ANSI escapes, carriage returns, ...) and other non-printable characters become their repr-style
    escapes (\\x1b, \\r, \\u202e), so a hostile name cannot move the cursor, recolour or rewrite
    what the terminal shows. Printable text, non-ASCII letters included, is unchanged."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)


def safe_lines(text: str) -> str:
    """safe_text for a message of several lines: its line breaks stay line breaks (a summary prints as
    lines), every other control character is escaped."""
    return "\n".join(safe_text(line) for line in text.split("\n"))


def load_graph(path: str):
    """Read a .t1c file (TalonFormatError, with the file named, on any problem)."""
    from talon.ir import read

    return read(path)


def write_graph(path: str, graph: Any) -> None:
    from talon.ir import write

    write(path, graph)


def plot_option(help_text: str = "Save a plot of the result to PATH (PNG, SVG or PDF).") -> Callable:
    return click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=str), default=None, help=help_text)


PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", "")  # no suffix: PNG (talon.viz.plots.save_figure)


def prepare_output(path: str | None, option: str, suffixes: tuple[str, ...] | None = None) -> str | None:
    """Check an output file option before any work is done: its suffix (when `suffixes` is given) and its
    folder, created when missing (the policy of every file-writing option: --plot, --save-outputs, ...).
    Returns the path unchanged; a path that cannot be written is a one-line error naming the option."""
    import os

    from talon.errors import TalonUsageError

    if path is None:
        return None
    if suffixes is not None and os.path.splitext(path)[1].lower() not in suffixes:
        raise TalonUsageError(f"{option} {path}: use a file name ending in {', '.join(x for x in suffixes if x)}")
    if os.path.isdir(path):
        raise TalonUsageError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise TalonUsageError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise TalonUsageError(f"{option} {path}: cannot create the folder {folder} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK):
        raise TalonUsageError(f"{option} {path}: the folder {folder} is not writable")
    from talon.errors import TalonFormatError
    from talon.ir._atomic import check_target

    try:  # a device, FIFO or the command's own input: refused before any work is done
        check_target(path)
    except TalonFormatError as exc:
        raise TalonUsageError(f"{option} {exc}") from None
    return path


def prepare_plot(path: str | None, option: str = "--plot") -> str | None:
    """prepare_output for a plot file (.png, .svg, .pdf, .jpg)."""
    return prepare_output(path, option, PLOT_SUFFIXES)


# -- option types -------------------------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
               "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """Bytes from "1000", "1e6", "1.5KB", "64KiB", "1MB", "2 GiB" (KB/MB/GB powers of 1000, KiB/MiB/GiB of
    1024; case-insensitive). ValueError unless it is a positive whole number of bytes."""
    import math
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: use bytes (1000, 1e6) or a unit: KB, MB, GB (x1000) or KiB, MiB, GiB (x1024)")
    value = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise ValueError(f"{text!r} is not a positive whole number of bytes")
    if value > 2**60:
        raise ValueError(f"{text!r} is more memory than any machine has (over 1 EiB)")
    return int(value)


class ByteSize(click.ParamType):
    """A click parameter of bytes, written as parse_size accepts."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                self.fail(f"{value} is not a positive number of bytes", param, ctx)
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


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
    line = error_line(exc)
    if _expected(exc):
        line = cli_wording(line, STATE.command)
    click.echo(safe_text(f"talon: error: {line}{hint}"), err=True)
    return EXIT_ERROR


def cli_wording(message: str, command: str = "") -> str:
    """A library message with its Python-API advice said as the command line's options.

    The library (talon.backend, talon.sdk) words its advice for Python callers ("simulate it with
    mode='float'"); on the command line the same advice is an option or a command. Only the phrases below
    are rewritten; everything else is shown as the library wrote it."""
    import re

    runs = command.split(" ")[0] in ("simulate", "energy")
    float_mode = "--mode float" if runs else "'talon simulate --mode float'"
    rules = (
        (r"simulate (it )?with mode='float'", lambda m: f"simulate {m.group(1) or ''}with {float_mode}"),
        (r"\(sdk fold_batchnorm\)", lambda m: "('talon convert fold-batchnorm')"),
        (r"holds (\d+) steps but n_steps=(\d+)", lambda m: f"holds {m.group(1)} steps but --steps is {m.group(2)} (give --steps {m.group(1)} or fewer)"),
    )
    if command.split(" ")[0] == "convert":  # the NIR reader's timestep advice: its option is --dt
        rules += (
            (r"\bpass dt= in", lambda m: "give --dt in"),
            (r"\be\.g\. dt=", lambda m: "e.g. --dt "),
            (r"\bpass dt=([0-9.e+-]*[0-9])", lambda m: f"give --dt {m.group(1)}"),
            (r"approximate_resets=True \(talon convert --approximate-resets\)", lambda m: "--approximate-resets"),
        )
    elif command:  # other commands read a .nir with the default dt: the timestep is set by converting it first
        rules += (
            (r"\bso pass dt= in that unit \(e\.g\. dt=([^ ]+) ",
             lambda m: f"so convert the file first with the timestep in that unit, 'talon convert MODEL.nir -o MODEL.t1c --dt DT' (e.g. --dt {m.group(1)} "),
            (r"\bpass dt=([0-9.e+-]*[0-9])",
             lambda m: f"convert the file first with that timestep, 'talon convert MODEL.nir -o MODEL.t1c --dt {m.group(1)}'"),
        )
    for pattern, repl in rules:
        message = re.sub(pattern, repl, message)
    return message


_TRANSFORM_ADVICE = (
    (r"\(quantize_weights\)", "('talon convert quantize')"),
    (r"convert_to_spiking\(graph, nodes=\[\.\.\.\]\)", "'talon convert spiking --node NAME'"),
    (r"\bfold_batchnorm can remove", "'talon convert fold-batchnorm' can remove"),
    (r"\(remove_dropout\)", "('talon convert remove-dropout')"),
)


def cli_advice(text: str) -> str:
    """talon.sdk.profile's recommendations name the Python transforms; on the command line, the commands."""
    import re

    for pattern, repl in _TRANSFORM_ADVICE:
        text = re.sub(pattern, repl, text)
    return text


# -- warnings ---------------------------------------------------------------------------------------------

def warning_line(message: Warning | str) -> str:
    """The one line a Python warning is shown as on the command line."""
    text = " ".join(str(message).split())
    return safe_text(f"talon: warning: {cli_wording(text, STATE.command)}")


def show_warning(message: Warning | str, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """warnings.showwarning for the CLI: `talon: warning: <message>`, one line on stderr (with -v, the
    warning's category and where it was raised follow on the same line)."""
    text = warning_line(message)
    if STATE.verbose:
        text += f" ({category.__name__} at {filename}:{lineno})"
    click.echo(text, err=True)


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
