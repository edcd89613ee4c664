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
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from talon.errors import TalonError, TalonFormatError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` when the block succeeds.

    On any failure the temporary file is removed, a file already at `path` is left untouched, and
    errors other than TalonError become TalonFormatError naming the path. With `durable`, the data and
    the rename are on stable storage when the block exits.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise TalonFormatError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:  # a read-only folder, say
        raise TalonFormatError(f"cannot write {str(target)!r}: cannot create a file in {str(folder)!r} ({exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
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


def _release(fd: int) -> None:
    """Close `fd` on a thread of its own (here and now when no thread can start: interpreter shutdown).
    One short-lived thread per replaced file, not a pool: a pool's idle worker would not survive
    os.fork, and files replaced in the child would never be released."""
    try:
        threading.Thread(target=os.close, args=(fd,), name="talon-release").start()
    except RuntimeError:
        os.close(fd)


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
