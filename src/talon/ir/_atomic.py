"""Atomic file replacement shared by every writer of model files (.t1c, .nir).

A model is written to a temporary file in the target's folder and renamed over the target, so a reader
(or a crash of this process) only ever sees the old file or the complete new one.

Two costs of renaming over a file on Linux are kept off the caller's time, and one guarantee is made
explicit instead of accidental:

* ext4's `auto_da_alloc` starts writing back the new file's delayed-allocation pages inside `rename`
  (10-20 ms per 40 MB on a virtual disk). Reserving the temporary file's blocks before the rename
  (`posix_fallocate`) leaves it nothing to do; the kernel writes the data back in its own time, as it
  does for `numpy.save` or `torch.save`.
* The replaced file's blocks are freed when its last reference goes. The writer holds the old file open
  across the rename and closes it on a short-lived thread, so the caller does not wait for that.
* `durable=True` makes the replacement survive a power cut: the new file is flushed to stable storage
  before the rename (fsync; F_FULLFSYNC on macOS) and the folder after it. ext4's heuristic is neither
  portable nor a guarantee.

Every file TALON writes (models, NIR files, HTML pages, JSON reports, plots, descriptors, FPGA project
files, saved outputs) goes through `atomic_path` / `atomic_write_bytes` / `atomic_write_text`, which also
make writing safe next to files one does not trust (docs/format.md, "Writing outputs safely"):

* the temporary file has a fresh random name, created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, by tempfile.mkstemp): a file or
  symlink planted under a predictable name is never followed or reused;
* a target that exists and is not a regular file (a device such as /dev/null, a FIFO, a socket, a
  folder, or a symlink to one of those) is refused: renaming over it would replace the device node or
  the link instead of writing to it;
* a target that is one of the inputs being read (`inputs=`, or the paths given to `protect_inputs`,
  as the command line does for its model argument) is refused, whatever path (link, hard link) names it;
* temporary files of ours left by a killed write (`.NAME.talon-PID-HOST-XXXXXXXX.tmp`) are removed by the next
  write into the same folder once they are stale: their process is gone (same host) and they have not
  changed for STALE_AFTER_S seconds, or they have not changed for STALE_ANY_S (any host). A live
  writer's temporary file is never touched.
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import stat
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from talon.errors import TalonError, TalonFormatError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


STALE_AFTER_S = 60.0  # a temporary file of a dead process of this host, untouched this long, is removed
STALE_ANY_S = 24 * 3600.0  # any temporary file of ours untouched this long is removed (other hosts)
_TMP_NAME = re.compile(r"^\..*\.talon-(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{8})-[a-z0-9_]{6,}\.tmp$", re.S)
_PROTECTED: contextvars.ContextVar[frozenset] = contextvars.ContextVar("talon_protected_inputs", default=frozenset())


def _host_tag() -> str:
    # socket and tempfile are imported where writing needs them: reading a file (talon analyze, lint)
    # does not, and they cost several ms of start-up (docs/performance.md)
    import socket

    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


@contextmanager
def protect_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Inside the block, every atomic write refuses to replace the files at `paths` (the inputs being
    read), by identity: another name, a symlink or a hard link of the same file is refused as well."""
    ids = {i for i in map(_identity, paths) if i is not None}
    token = _PROTECTED.set(_PROTECTED.get() | frozenset(ids))
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def protect_input(path: str | os.PathLike) -> None:
    """Add `path` to the protected inputs of the current context (until the context's protect_inputs
    block, or the process, ends): the command line calls it for each model it is given."""
    ident = _identity(path)
    if ident is not None:
        _PROTECTED.set(_PROTECTED.get() | {ident})


@contextmanager
def replacing_input(path: str | os.PathLike) -> Iterator[None]:
    """Allow the writes inside the block to replace `path` although it is a protected input (an
    in-place update that is asked for: `talon stamp MODEL.t1c`)."""
    ident = _identity(path)
    token = _PROTECTED.set(_PROTECTED.get() - {ident})
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def check_target(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raise TalonFormatError unless `path` may be replaced by a new file: it does not exist yet, or it is
    a regular file (or a symlink to one) that is not one of `inputs` or the protected inputs."""
    target = os.fspath(path)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(target):
            raise TalonFormatError(f"refusing to write {target!r}: it is a symlink to a missing file; remove it or give another path") from None
        return
    except OSError as exc:
        raise TalonFormatError(f"cannot write {target!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        link = " (through a symlink)" if os.path.islink(target) else ""
        raise TalonFormatError(f"refusing to write {target!r}: it is {file_kind(st.st_mode)}{link}, not a regular file; "
                               f"give the path of a file to create or replace")
    ident = (st.st_dev, st.st_ino)
    if ident in _PROTECTED.get() or ident in {i for i in map(_identity, inputs) if i is not None}:
        raise TalonFormatError(f"refusing to write {target!r}: it is the input file being read; give another output path")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words, from its st_mode ("a FIFO (named pipe)", "a folder", ...)."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _create_temporary(folder: Path, target: Path) -> Path:
    """A new empty file, created exclusively (mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) under a
    random name that says whose it is."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name[:100]}.talon-{os.getpid()}-{_host_tag()}-", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def remove_stale_temporaries(folder: str | os.PathLike[str], *, now: float | None = None) -> list[str]:
    """Remove the temporary files our writers left in `folder` when they were killed (see the module
    docstring for "stale"); returns their paths. Never raises: cleaning is a courtesy."""
    now = time.time() if now is None else now
    host = _host_tag()
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_NAME.match(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            age = now - st.st_mtime
            dead = m.group("host") == host and not _alive(int(m.group("pid")))
            if (dead and age > STALE_AFTER_S) or age > STALE_ANY_S:
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's live process (or cannot tell): keep its file
    return True


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` when the block succeeds.

    On any failure the temporary file is removed, a file already at `path` is left untouched, and
    errors other than TalonError become TalonFormatError naming the path. With `durable`, the data and
    the rename are on stable storage when the block exits. A target that is not a regular file, or is
    one of `inputs` (or a protected input), is refused before anything is written (check_target).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise TalonFormatError(f"cannot write {str(target)!r}: folder {str(folder)!r} {what}")
    inputs = list(inputs)
    check_target(target, inputs)
    remove_stale_temporaries(folder)
    try:
        tmp = str(_create_temporary(folder, target))
    except OSError as exc:  # a read-only folder, say
        raise TalonFormatError(f"cannot write {str(target)!r}: cannot create a file in {str(folder)!r} ({exc})") from None
    try:
        yield Path(tmp)
        check_target(target, inputs)  # the target may have changed while the data was produced
        _set_mode(tmp, target)
        _settle(tmp, durable)
        old = _hold_replaced(target)
        try:
            os.replace(tmp, target)
        finally:
            if old is not None:
                _release(old)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, TalonError) or not isinstance(exc, Exception):
            raise
        raise TalonFormatError(f"cannot write {str(target)!r}: {type(exc).__name__}: {exc}") from exc
    if durable:
        try:
            _fsync_folder(folder)
        except OSError as exc:
            raise TalonFormatError(f"{str(target)!r} was written, but flushing its folder {str(folder)!r} to disk failed "
                                   f"({exc}); the new file may not survive a power cut") from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> str:
    """Write `data` to `path` atomically (atomic_path); returns the path."""
    with atomic_path(path, durable=durable, inputs=inputs) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return os.fspath(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> str:
    """Write `text` as UTF-8 to `path` atomically (atomic_path); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable, inputs=inputs)


def _set_mode(tmp: str, target: Path) -> None:
    """Give the new file the permissions a plain open() would: the replaced file's, else 0666 less the
    umask (mkstemp creates 0600, which would hide a model from colleagues on a shared machine)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        os.chmod(tmp, mode)
    except OSError:
        pass  # a file system without POSIX modes (FAT, some network shares): nothing to set


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would change it for every thread for a moment)
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _settle(tmp: str, durable: bool) -> None:
    """Make the finished temporary file ready to be renamed: on disk (durable), or fully allocated."""
    fd = os.open(tmp, os.O_RDWR)
    try:
        if durable:
            _flush(fd)
            return
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except (OSError, AttributeError):
            pass  # no fallocate (file system, or macOS/Windows): nothing to settle
    finally:
        os.close(fd)


def _hold_replaced(target: Path) -> int | None:
    """A read-only descriptor on the regular file about to be replaced, when closing it later is what
    frees it (POSIX only: Windows refuses to replace an open file)."""
    if os.name != "posix":
        return None
    try:
        st = os.lstat(target)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        return os.open(target, flags)
    except OSError:
        return None  # gone, unreadable, or replaced by something else meanwhile: nothing to hold


# Descriptors a release thread will close, and those it is closing, with the file each one is on. A
# child forked between the two states would otherwise inherit an fd that no thread of its own closes.
_PENDING: dict[int, tuple[int, int]] = {}
_CLOSING: dict[int, tuple[int, int]] = {}
_PENDING_LOCK = threading.Lock()


def _release(fd: int) -> None:
    """Close `fd` on a thread of its own (here and now when no thread can start: interpreter shutdown).
    One short-lived thread per replaced file, not a pool: a pool's idle worker would not survive
    os.fork, and files replaced in the child would never be released. A child forked while a release
    is pending or under way closes that descriptor itself (its copy of the thread does not exist)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return
    with _PENDING_LOCK:
        _PENDING[fd] = (st.st_dev, st.st_ino)
    try:
        threading.Thread(target=_close_pending, args=(fd,), name="talon-release").start()
    except RuntimeError:
        _close_pending(fd)


def _close_pending(fd: int) -> None:
    with _PENDING_LOCK:
        if fd not in _PENDING:
            return
        _CLOSING[fd] = _PENDING.pop(fd)
    try:
        os.close(fd)  # the slow part (freeing the replaced file) runs without the lock
    finally:
        with _PENDING_LOCK:
            _CLOSING.pop(fd, None)


def _close_all_pending_in_child() -> None:
    """In a forked child: close the inherited descriptors of the parent's pending and ongoing releases.
    An fd the parent had already closed may have been reused by then, so only one still on the same
    file is closed."""
    global _PENDING_LOCK
    _PENDING_LOCK = threading.Lock()  # the parent's may have been held by a thread that is not here
    for fd, ident in [*_PENDING.items(), *_CLOSING.items()]:
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == ident:
                os.close(fd)
        except OSError:
            pass
    _PENDING.clear()
    _CLOSING.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_all_pending_in_child)


def _flush(fd: int) -> None:
    """Data to stable storage: fsync, or on macOS F_FULLFSYNC (its fsync stops at the drive's cache)."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass  # not supported by this file system: fsync is the best there is
    os.fsync(fd)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows has no folder handles to flush; NTFS journals the rename itself
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise  # some file systems cannot flush a folder at all: their rename is as durable as it gets
    finally:
        os.close(fd)
