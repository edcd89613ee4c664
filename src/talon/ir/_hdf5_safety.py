"""Opening untrusted HDF5 model files (.t1c, .nir) safely: one descriptor, no data from outside the file.

HDF5 can take a dataset's bytes from elsewhere: an external link names another file, external storage
(EFL) and virtual datasets read raw bytes from other files, and a filter it does not know makes it
search folders for plugins (shared libraries) to load. A hostile model file could so make the reader
read /etc/passwd into its weights, block on a FIFO, or load code. This module

* opens the path once (`open_file`), refusing anything but a regular file, so that every later check
  and read sees the same bytes even while the path is replaced by a writer;
* walks every link of the file before any dataset is read (`inspect`) and refuses, with
  TalonFormatError, soft, external and user-defined links, objects reachable under two names,
  virtual and external-storage datasets and any filter that is not built in; it returns where the
  datasets keep their raw bytes (for the global heap check, _integrity);
* empties HDF5's plugin search path while a file is read (`no_plugins`).
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import h5py

from talon.errors import TalonFormatError
from talon.ir import _integrity

COMPRESSION_SLACK = 1100  # gzip's best case is ~1:1032: a compressed dataset can declare this many times the file
# HDF5's built-in filters, plus LZF, which h5py registers itself (TALON writes it): deflate, shuffle,
# fletcher32, szip, nbit, scaleoffset, lzf. Anything else would need a plugin.
BUILTIN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}
# Graphs nested in graphs (composite blocks) at most this deep, in .t1c and .nir files alike: shape
# inference and every command walk nested graphs recursively, and a file must not keep them busy.
MAX_GRAPH_DEPTH = 8
# Metadata (dicts, lists) nested at most this deep: read recursively, like nested graphs.
MAX_VALUE_DEPTH = 100
MAX_LINKS = 1_000_000  # far above any model; bounds the walk of a file that claims billions of links
MAX_OBJECT_DEPTH = 1000  # groups inside groups: far deeper than any file TALON writes


class TalonFileNotFoundError(TalonFormatError, FileNotFoundError):
    """The model file's path does not exist."""


def open_file(path: Path) -> BinaryIO:
    """Open `path` read-only once. A FIFO, device or socket is refused without blocking on it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TalonFormatError(f"cannot read {path.name}: {exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TalonFormatError(f"{str(path)!r} is not a regular file (a FIFO, device or socket): refusing to read it as a model")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def opened(path: Path) -> Iterator[tuple[BinaryIO, Any]]:
    """(the open file, its bytes as a read-only mmap) for the duration of the block; plugins off."""
    raw = open_file(path)
    try:
        size = os.fstat(raw.fileno()).st_size
        mm: Any = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            with no_plugins():
                yield raw, mm
        finally:
            if size:
                mm.close()
    finally:
        raw.close()


@contextmanager
def checked_hdf5(path: Path) -> Iterator[tuple[h5py.File, "Census", int]]:
    """(h5py file, census, file size) of an unsealed HDF5 file (.nir), checked as a .t1c is: links,
    datasets, global heaps, declared sizes."""
    def fail(message: str) -> TalonFormatError:
        return TalonFormatError(f"{path.name}: {message}")

    with opened(path) as (raw, mm):
        with hdf5_file(raw, path) as f:
            census = inspect(f, fail)
            _integrity.check_global_heaps(mm, path.name, census.numeric_ranges)
            check_declared_sizes(census, len(mm), fail)
            yield f, census, len(mm)


def check_declared_sizes(census: "Census", size: int, fail: Callable[[str], Exception]) -> None:
    """Refuse datasets that declare more bytes than a file of `size` bytes can hold (compressed ones:
    more than the best compression ratio allows), before anything allocates them."""
    for name, (dsid, _) in census.datasets.items():
        try:
            count = 1
            for d in dsid.shape or ():
                count *= int(d)
            nbytes = count * max(dsid.get_type().get_size(), 1)
            compressed = dsid.get_create_plist().get_nfilters() > 0
        except Exception as exc:
            raise fail(f"cannot inspect dataset {name!r} ({type(exc).__name__}: {exc})") from None
        if nbytes > size + 4096 and nbytes > (size * COMPRESSION_SLACK if compressed else 0):
            raise fail(f"dataset {name!r} declares {nbytes:,} bytes, more than the file can hold ({size:,} bytes)")


@contextmanager
def hdf5_file(raw: BinaryIO, path: Path) -> Iterator[h5py.File]:
    """h5py's view of the already open file `raw`: the same inode, whatever has happened to the path.

    On Linux HDF5 opens /proc/self/fd/N, the open file itself, with its native driver. HDF5 refuses
    that when the path was replaced meanwhile (it checks the file's real path); then, and on other
    systems, it reads through the Python file object (about 10x slower per HDF5 object).
    """
    proc = f"/proc/self/fd/{raw.fileno()}"
    f = None
    if os.path.exists(proc):
        try:
            f = h5py.File(proc, "r")
        except Exception:
            f = None
    try:
        f = f if f is not None else h5py.File(raw, "r")
    except Exception as exc:  # h5py raises OSError for most damage, others for some
        raise TalonFormatError(f"cannot read {path.name} as HDF5 (not a model file, or truncated/corrupt): {exc}") from None
    try:
        yield f
    finally:
        try:
            f.close()
        except Exception:
            pass


_plugin_lock = threading.Lock()
_plugin_users = 0
_plugin_paths: list[bytes] = []


@contextmanager
def no_plugins() -> Iterator[None]:
    """HDF5's plugin search path is empty inside this block (restored after the last reader leaves)."""
    global _plugin_users, _plugin_paths
    with _plugin_lock:
        if _plugin_users == 0:
            _plugin_paths = [h5py.h5pl.get(i) for i in range(h5py.h5pl.size())]
            for _ in _plugin_paths:
                h5py.h5pl.remove(0)
        _plugin_users += 1
    try:
        yield
    finally:
        with _plugin_lock:
            _plugin_users -= 1
            if _plugin_users == 0:
                for p in _plugin_paths:
                    h5py.h5pl.append(p)
                _plugin_paths = []


@dataclass
class Census:
    """What the walk found: datasets by HDF5 path, and where numeric datasets keep their raw bytes."""

    datasets: dict[str, tuple[Any, int]] = field(default_factory=dict)  # path -> (low-level DatasetID, layout)
    numeric_ranges: list[tuple[int, int]] = field(default_factory=list)  # (offset, nbytes), sorted
    # Datasets whose HDF5 type is an enum other than h5py's bool, or a bitfield: h5py hands them over as
    # plain integers, but they hold labels or bit patterns, not numbers (_labels).
    labelled: dict[str, str] = field(default_factory=dict)  # path -> "enum {names}" or "bitfield"


def inspect(file: h5py.File, fail: Callable[[str], Exception]) -> Census:
    """Check every link and dataset of `file` before anything is read from it (see the module doc).

    Group by group, with a stack of our own (HDF5's recursive visit could exhaust the C stack on a
    file of deeply nested groups), at most MAX_OBJECT_DEPTH groups deep and MAX_LINKS links in all.
    """
    census, count = Census(), 0
    try:
        root = h5py.h5g.open(file.id, b"/")
        seen: dict[Any, str] = {h5py.h5o.get_info(root).addr: "/"}
    except Exception as exc:
        raise fail(f"cannot open the root group ({type(exc).__name__}: {exc})") from None
    stack: list[tuple[bytes, Any, int]] = [(b"", root, 0)]
    while stack:
        prefix, gid, depth = stack.pop()
        links: list[tuple[bytes, int, Any]] = []

        def visit(name: bytes, info: Any) -> Any:
            links.append((name, info.type, info.u if info.type == h5py.h5l.TYPE_HARD else None))  # h5py reuses `info`
            return True if count + len(links) > MAX_LINKS else None

        try:
            gid.links.iterate(visit, info=True)
        except Exception as exc:  # damaged link storage: HDF5 raises; the caller reports it as a format error
            raise fail(f"cannot list the objects in {(prefix or b'/').decode('utf-8', 'replace')!r} ({type(exc).__name__}: {exc})") from None
        count += len(links)
        if count > MAX_LINKS:
            raise fail(f"more than {MAX_LINKS:,} links: not a model file")
        for bname, kind, address in links:
            path = prefix + b"/" + bname
            name = path.decode("utf-8", "replace")
            if kind == h5py.h5l.TYPE_EXTERNAL:
                raise fail(f"{name!r} is an external link to another file: refused (a model file must be self-contained)")
            if kind != h5py.h5l.TYPE_HARD:
                raise fail(f"{name!r} is a soft or user-defined link: refused (TALON and the existing SDK write only plain objects)")
            if address in seen:
                raise fail(f"{name!r} and {seen[address]!r} are the same object: refused (a model file holds each object once)")
            seen[address] = name
            try:
                oid = h5py.h5o.open(gid, bname)
            except Exception as exc:
                raise fail(f"cannot open {name!r} ({type(exc).__name__}: {exc})") from None
            if isinstance(oid, h5py.h5g.GroupID):
                if depth + 1 > MAX_OBJECT_DEPTH:
                    raise fail(f"{name!r}: groups nested more than {MAX_OBJECT_DEPTH} deep: not a model file")
                stack.append((path, oid, depth + 1))
            elif isinstance(oid, h5py.h5d.DatasetID):
                _check_dataset(oid, name, fail, census)
    census.numeric_ranges.sort()
    return census


def _check_dataset(dsid: Any, name: str, fail: Callable[[str], Exception], census: Census) -> None:
    try:
        plist = dsid.get_create_plist()
        layout = plist.get_layout()
        if layout == h5py.h5d.VIRTUAL:
            raise fail(f"dataset {name!r} is a virtual dataset, whose data lives in other files: refused")
        if plist.get_external_count() > 0:
            raise fail(f"dataset {name!r} keeps its data in external files: refused (a model file must be self-contained)")
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in BUILTIN_FILTERS:
                raise fail(f"dataset {name!r} uses filter {code}, which is not built into HDF5: refused "
                           f"(allowed: {', '.join(sorted(BUILTIN_FILTERS.values()))}); TALON loads no HDF5 plugins")
        census.datasets[name] = (dsid, layout)
        type_class = dsid.get_type().get_class()
        if type_class in (h5py.h5t.ENUM, h5py.h5t.BITFIELD):
            label = _labels(dsid, type_class)
            if label:
                census.labelled[name] = label
        if type_class not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.ENUM):
            return  # strings: their heap references are the bytes the heap check must not skip
        if layout == h5py.h5d.CONTIGUOUS:
            offset = dsid.get_offset()
            if offset is not None:
                census.numeric_ranges.append((offset, dsid.get_storage_size()))
        elif layout == h5py.h5d.CHUNKED:
            # One pass over the chunk index: get_chunk_info(i) walks it from the start each time, which
            # a file of many tiny chunks would turn into hours.
            dsid.chunk_iter(lambda chunk: census.numeric_ranges.append((chunk.byte_offset, chunk.size)))
    except TalonFormatError:
        raise
    except Exception as exc:
        raise fail(f"cannot inspect dataset {name!r} ({type(exc).__name__}: {exc})") from None


def _labels(dsid: Any, type_class: int) -> str | None:
    """How to name the non-numeric integer type of `dsid` (None for h5py's bool, an enum FALSE/TRUE)."""
    if type_class == h5py.h5t.BITFIELD:
        return "a bitfield"
    members = h5py.check_enum_dtype(dsid.dtype) or {}
    if dsid.dtype.kind == "b":
        return None
    names = ", ".join(sorted(members)[:8]) + (", ..." if len(members) > 8 else "")
    return f"an enum ({names})"
