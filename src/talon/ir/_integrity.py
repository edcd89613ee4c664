"""Integrity of .t1c files: the sealed index in the HDF5 user block, array digests, heap sanity checks.

HDF5 leaves the first `userblock_size` bytes of a file to the application (h5py and the existing SDK's
reader skip them). TALON writes there, after the HDF5 library has closed the file:

    [0:8)    magic b"T1CINDX1"
    [8:40)   SHA-256 over bytes [40:user block end) and every byte after the user block except the
             array data ranges listed in the index
    [40:48)  user block size (uint64 LE)       [48:56)  index length L (uint64 LE)
    [56:56+L) index: UTF-8 JSON {"arrays": {hdf5 path: [offset, nbytes, dtype, shape, xxh3-64 hex]}}

So every byte of the file is covered before HDF5 parses any of it: HDF5 structures, strings and
scalars by the SHA-256 (checked first, so a damaged header or string heap can never reach the HDF5
library, which may loop on some), and each array's bytes by its own xxh3 digest, checked as it is
read. The index also lets the reader copy array bytes straight from the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from talon.errors import TalonFormatError

MAGIC = b"T1CINDX1"
HEADER = 56
_MIN_BLOCK = 512


def array_digest(arr: np.ndarray) -> str:
    """xxh3-64 of the array's C-order bytes: order-sensitive and faster than reading the data."""
    return xxhash.xxh3_64_hexdigest(memoryview(np.require(arr, requirements="C")).cast("B"))


def user_block_size(n_arrays: int, path_bytes: int) -> int:
    """A power of two (HDF5's rule) large enough for the index of `n_arrays` arrays."""
    need = HEADER + path_bytes + 160 * n_arrays + 64
    size = _MIN_BLOCK
    while size < need:
        size *= 2
    return size


def _covered(view: memoryview, block: int, ranges: list[tuple[int, int]]) -> Any:
    h = hashlib.sha256()
    h.update(view[40:block])
    pos = block
    for offset, nbytes in ranges:
        h.update(view[pos:offset])
        pos = offset + nbytes
    h.update(view[pos:])
    return h.digest()


class ArraySink:
    """Copies arrays into the contiguous ranges HDF5 allocated for them, once HDF5 has closed the file.

    The writer hands each array over as HDF5 allocates its space (no fill values, so HDF5 never
    writes there). `entries` starts copying them all on a worker thread and computes their digests
    here meanwhile; `finish` waits for the copies. That way round the two overlap on two cores: a file
    write releases the GIL for its whole length, while xxh3 holds it.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talon-t1c-write")
        self.jobs: list[tuple[str, int, np.ndarray]] = []
        self.copied: Any = None

    def put(self, name: str, offset: int, arr: np.ndarray) -> None:
        self.jobs.append((name, offset, arr))

    def entries(self) -> dict[str, list]:
        """Start the copies; the index entries {hdf5 path: [offset, nbytes, dtype, shape, digest]}."""
        self.copied = submit(self.pool, self._copy_all)
        return {name: [offset, arr.nbytes, arr.dtype.str, list(arr.shape), array_digest(arr)] for name, offset, arr in self.jobs}

    def finish(self) -> None:
        """Wait for the copies `entries` started; raises what they raised (a full disk, say)."""
        if self.copied is not None:
            self.copied.result()

    def _copy_all(self) -> None:
        if not self.jobs:
            return
        # Reserving the blocks first makes the copies below about a third faster on ext4 than
        # filling the holes HDF5 left (no delayed allocation per write).
        start = min(job[1] for job in self.jobs)
        end = max(job[1] + job[2].nbytes for job in self.jobs)
        try:
            os.posix_fallocate(self.fd, start, end - start)
        except (OSError, AttributeError):
            pass  # no fallocate (file system, or macOS/Windows): the writes allocate as they go
        for _, offset, arr in self.jobs:
            _pwrite_all(self.fd, memoryview(arr).cast("B"), offset)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        os.close(self.fd)

    def __enter__(self) -> "ArraySink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _pwrite_all(fd: int, data: Any, offset: int) -> None:
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            done = os.pwrite(fd, view, offset)
        else:  # Windows
            os.lseek(fd, offset, os.SEEK_SET)
            done = os.write(fd, view)
        view, offset = view[done:], offset + done


def submit(pool: ThreadPoolExecutor, fn: Any, *args: Any) -> Any:
    """pool.submit, or the call made here and now where the pool cannot take it (at interpreter
    shutdown, e.g. a model saved from an atexit handler); either way the result is `.result()`."""
    try:
        return pool.submit(fn, *args)
    except RuntimeError:
        pass
    try:
        return _Done(fn(*args))
    except Exception as exc:  # raised by .result(), as a future would
        return _Done(error=exc)


class _Done:
    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def seal(path: Path, block: int, entries: dict[str, list], chunked: list[str] = ()) -> None:
    """Write the index (the arrays' `entries`, from ArraySink) and its SHA-256 into the user block.

    `chunked` names compressed datasets: their chunks carry HDF5's Fletcher-32 checksums, so they are
    left out of the SHA-256 (index entries without a digest), which lets a damaged chunk be reported
    by node and field when it is read instead of as an anonymous file checksum failure.
    """
    entries = dict(entries)
    if chunked:
        import h5py

        with h5py.File(path, "r") as h:
            for name in chunked:
                dsid = h[name].id
                for i in range(dsid.get_num_chunks()):
                    info = dsid.get_chunk_info(i)
                    entries[f"{name}#{i}"] = [info.byte_offset, info.size, None, None, None]
    index = json.dumps({"arrays": entries}, separators=(",", ":")).encode("utf-8")
    if HEADER + len(index) > block:
        raise TalonFormatError(f"{path.name}: index of {len(index)} bytes does not fit the {block}-byte user block")
    fd = os.open(path, os.O_RDWR)
    try:
        _pwrite_all(fd, MAGIC, 0)
        _pwrite_all(fd, struct.pack("<QQ", block, len(index)) + index, 40)
        with mmap.mmap(fd, 0) as mm:
            ranges = sorted((e[0], e[1]) for e in entries.values())
            mm[8:40] = _covered(memoryview(mm), block, ranges)
    finally:
        os.close(fd)


def verify(path: Path) -> dict | None:
    """Check the sealed index of `path`; return {hdf5 path: entry} or None when the file has no index.

    Raises TalonFormatError when the index or anything it covers does not match.
    """
    name = path.name
    with open(path, "rb") as f:
        if f.read(8) != MAGIC:
            return None
        size = path.stat().st_size
        if size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                block, length = struct.unpack("<QQ", mm[40:HEADER])
                if block < _MIN_BLOCK or block & (block - 1) or block > size or HEADER + length > block:
                    raise ValueError("bad user block header")
                index = json.loads(bytes(mm[HEADER : HEADER + length]).decode("utf-8"))
                entries = index["arrays"]
                if not isinstance(entries, dict) or not all(isinstance(e, list) and len(e) == 5 for e in entries.values()):
                    raise ValueError("malformed array entries")
                ranges = sorted((int(e[0]), int(e[1])) for e in entries.values())
                end = block
                for offset, nbytes in ranges:
                    if offset < end or nbytes < 0 or offset + nbytes > size:
                        raise ValueError("array ranges overlap or fall outside the file")
                    end = offset + nbytes
                ok = _covered(view, block, ranges) == bytes(mm[8:40])
            except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError, struct.error) as exc:
                raise TalonFormatError(f"{name}: damaged TALON index ({exc})") from None
            finally:
                view.release()
    if not ok:
        raise TalonFormatError(f"{name}: checksum mismatch: the file was modified or corrupted after it was written")
    return entries


def _read_at(file: Any, view: memoryview, pos: int) -> int:
    file.seek(pos)
    return file.readinto(view) or 0


def check_global_heaps(path: Path) -> None:
    """Reject malformed HDF5 global heap collections before h5py reads strings from them.

    Used for files without a TALON index (the existing SDK's): HDF5 does not checksum these heaps and
    can loop forever on a damaged object size. Walks every collection and checks each object fits.
    """
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(b"GCOL")
            while pos != -1:
                if pos + 16 <= size and mm[pos + 4] == 1 and mm[pos + 5 : pos + 8] == b"\0\0\0":
                    (coll,) = struct.unpack_from("<Q", mm, pos + 8)
                    if coll < 16 or pos + coll > size:
                        raise TalonFormatError(f"{path.name}: corrupt HDF5 string heap at byte {pos}")
                    p, end = pos + 16, pos + coll
                    while p + 16 <= end:
                        idx, _, _, objsize = struct.unpack_from("<HHIQ", mm, p)
                        if idx == 0:
                            break  # free space closes the collection
                        if objsize > end - p - 16:
                            raise TalonFormatError(f"{path.name}: corrupt HDF5 string heap object at byte {p}")
                        p += 16 + (objsize + 7) // 8 * 8
                pos = mm.find(b"GCOL", pos + 4)


def read_array(file: Any, entry: list, fail: Any, check: bool = True) -> np.ndarray:
    """Copy one indexed array straight from the open file and check its digest (or leave that to
    the caller, `check=False`, who must compare `array_digest` with the entry before using it)."""
    offset, nbytes, dtype, shape, digest = entry
    if digest is None:
        raise fail("index entry of a chunk used as an array")
    try:
        dims, dt = tuple(int(d) for d in shape), np.dtype(str(dtype))
        # checked before allocating: verify() bounded nbytes by the file size, not the declared shape
        if dt.kind not in "biuf" or min(dims, default=0) < 0 or math.prod(dims) * dt.itemsize != nbytes:
            raise fail("index entry does not match its array")
        arr = np.empty(dims, dtype=dt)
    except (TypeError, ValueError, OverflowError) as exc:
        raise fail(f"index entry has a bad dtype or shape ({exc})") from None
    view, pos = memoryview(arr).cast("B"), offset
    while view:  # one read(2) returns at most ~2 GiB on Linux
        done = os.preadv(file.fileno(), [view], pos) if hasattr(os, "preadv") else _read_at(file, view, pos)
        if not done:
            raise fail("array data is truncated")
        view, pos = view[done:], pos + done
    if check and array_digest(arr) != digest:
        raise fail("array data fails its checksum: the file is corrupted")
    return arr
