"""A child process that reads model files for tests that must survive a reader that hangs or crashes.

`ReadWorker.read(path)` returns "graph", "error" (TalonFormatError) or "BAD: ..." (another exception,
a crash of the child, or no answer within the timeout: a hang). The child is started once (spawn) and
restarted after a hang or crash, so a test can send it hundreds of files.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any


def _serve(conn: Any) -> None:
    import warnings

    import talon.ir as ir
    from talon.errors import TalonFormatError

    warnings.simplefilter("ignore")
    conn.send("ready")  # imports done: the parent's per-read timeout starts now
    while True:
        path = conn.recv()
        if path is None:
            return
        try:
            graph = ir.read(path)
            outcome = "graph" if isinstance(graph, ir.Graph) else f"BAD: returned {type(graph).__name__}"
        except TalonFormatError:
            outcome = "error"
        except BaseException as exc:  # noqa: BLE001 - reported, that is the point
            outcome = f"BAD: raised {type(exc).__name__}: {str(exc)[:300]}"
        conn.send(outcome)


class ReadWorker:
    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(300) or self.conn.recv() != "ready":
            raise RuntimeError("the reader process did not start")

    def read(self, path: Any) -> str:
        try:
            self.conn.send(str(path))
            if self.conn.poll(self.timeout):
                return self.conn.recv()
            outcome = f"BAD: read did not finish within {self.timeout:.0f} s (hang)"
        except (EOFError, OSError, BrokenPipeError):
            outcome = f"BAD: reader process died (exit code {self.proc.exitcode})"
        self.close()
        self._start()
        return outcome

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join()
        self.conn.close()
