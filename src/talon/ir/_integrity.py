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
import queue
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xxhash

from talon.errors import TalonFormatError

MAGIC = b"T1CINDX1"
HEADER = 56
_MIN_BLOCK = 512


def array_digest(arr: np.ndarray) -> str:
    """xxh3-64 of the array's C-order bytes: order-sensitive and faster than reading the data."""
    return xxhash.xxh3_64_hexdigest(memoryview(np.require(arr, requirements="C")).cast("B"))


def user_block_size(index_bytes: int) -> int:
    """The smallest power of two (HDF5's rule: 512 or more) holding the header and an index whose
    entries take at most `index_bytes`."""
    need = HEADER + len(b'{"arrays":{}}') + index_bytes
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
    """Copies arrays into the contiguous ranges HDF5 allocated for them while the writer builds the rest
    of the file's objects.

    The writer hands each array over as HDF5 allocates its space (no fill values, so HDF5 never writes
    there, and it writes its own metadata only when the file is flushed or closed). An array of at least
    EAGER_BYTES goes at once to a copying thread: a file write releases the GIL for its whole length, so
    on two cores it overlaps the building of the HDF5 objects, which holds the GIL. The copier needs the
    GIL between its system calls, and a thread waiting for the GIL gets it only when the holder releases
    it (after the interpreter's 5 ms switch interval at the latest), so the writing thread computes each
    large array's digest as soon as it has queued the array: xxh3 runs without the GIL, and the copier
    takes the array and starts its write meanwhile. Smaller arrays are copied in one batch by `finish`,
    which waits for every copy and returns the index entries; call it before HDF5 closes the file, or
    HDF5's metadata writes wait for the copies (the kernel serialises writes to one file).
    """

    EAGER_BYTES = 1 << 20

    def __init__(self, path: Path) -> None:
        # HDF5 has just created the file with O_TRUNC, after which ext4 (auto_da_alloc) starts writing back
        # every dirty page of the file when a descriptor on it is next closed, if any of them still
        # awaits allocation (HDF5's superblock does). Closing one now flushes that page alone; else the
        # first close after the copies would start the write-back of all the arrays (1.4 ms for 40 MB).
        os.close(os.open(path, os.O_RDONLY))
        self.fd = os.open(path, os.O_RDWR)
        self.jobs: list[tuple[str, int, np.ndarray]] = []
        self._digests: dict[str, str] = {}
        self._small: list[tuple[int, np.ndarray]] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._finished = self._abandoned = False
        self._idle = False  # set by the copier while it waits for work

    def put(self, name: str, offset: int, arr: np.ndarray) -> None:
        self.jobs.append((name, offset, arr))
        if arr.nbytes < self.EAGER_BYTES or not self._start():
            self._small.append((offset, arr))
            return
        reserved = self._idle  # (a hint) the copier is not writing, so reserving does not wait for its write
        if reserved:
            _reserve(self.fd, offset, arr.nbytes)
        self._queue.put(([(offset, arr)], reserved))
        self._digests[name] = array_digest(arr)  # without the GIL: the copier takes the array meanwhile

    def _start(self) -> bool:
        if not self._started:
            self._started = True
            if not spare_cpu():
                return False
            thread = threading.Thread(target=self._run, name="talon-t1c-write", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutdown (a model saved from an atexit handler): copy here
                return False
            self._thread = thread
        return self._thread is not None

    def _run(self) -> None:
        while True:
            self._idle = True
            job = self._queue.get()
            self._idle = False
            if job is None:
                return
            try:
                if self._error is None and not self._abandoned:
                    _copy(self.fd, *job)
            except BaseException as exc:  # raised by finish()
                self._error = exc

    def finish(self) -> dict[str, list]:
        """Copy what is left, wait for every copy; return the index entries
        {hdf5 path: [offset, nbytes, dtype, shape, digest]}. Raises what a copy raised (a full disk, say)."""
        self._finished = True
        small, self._small = self._small, []
        if self._thread is not None:
            if small:
                self._queue.put((small, False))
            entries = self._entries()
            self._stop()
        else:
            _copy(self.fd, small)
            entries = self._entries()
        if self._error is not None:
            raise self._error
        return entries

    def _entries(self) -> dict[str, list]:
        return {name: [offset, arr.nbytes, arr.dtype.str, list(arr.shape), self._digests.get(name) or array_digest(arr)]
                for name, offset, arr in self.jobs}

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self._abandoned = not self._finished  # the write failed: the copies still queued are not needed
        self._stop()
        os.close(self.fd)

    def __enter__(self) -> "ArraySink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def spare_cpu() -> bool:
    """Whether a CPU is likely to be idle for a second thread of this process: the process may run on two
    or more, and fewer tasks are runnable right now than it has (Linux's count in /proc/loadavg, this
    thread included), or, where that count is not available, the load average over the last minute
    leaves at least half a CPU free. Where none is (a machine busy with other jobs), a copying thread only
    adds GIL hand-offs, each a wake-up of a thread the scheduler may run late: measured 1.08-1.31x the
    time of copying on the writing thread at load 2.6-8.5, against 0.80x the previous writer's time at
    load 0.7 (docs/performance.md, ".t1c writes, fourth pass")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return False
    running = _running_tasks()
    if running is not None:
        return running < cpus
    try:
        return os.getloadavg()[0] < cpus - 0.5
    except (AttributeError, OSError):  # Windows: no load average
        return True


def _running_tasks() -> int | None:
    """The number of runnable tasks on the machine now (Linux), or None where it cannot be read."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _copy(fd: int, batch: list[tuple[int, np.ndarray]], reserved: bool = False) -> None:
    if not batch:
        return
    if not reserved:
        start = min(offset for offset, _ in batch)
        _reserve(fd, start, max(offset + arr.nbytes for offset, arr in batch) - start)
    for offset, arr in batch:
        _pwrite_all(fd, memoryview(arr).cast("B"), offset)


def _reserve(fd: int, offset: int, nbytes: int) -> None:
    """Reserve the blocks before the copy: about a third faster on ext4 than filling the holes HDF5
    left (no delayed allocation per write)."""
    try:
        os.posix_fallocate(fd, offset, nbytes)
    except (OSError, AttributeError):
        pass  # no fallocate (file system, or macOS/Windows): the writes allocate as they go


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


def seal(path: Path, block: int, entries: dict[str, list], chunked: Sequence[str] = ()) -> None:
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


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def verify(mm: Any, name: str) -> dict | None:
    """Check the sealed index of the file whose bytes are `mm` (an mmap of the one open descriptor);
    return {hdf5 path: entry}, or None when the file has no seal.

    A file has no seal when it starts with HDF5's own signature (no user block) or when its first 8
    bytes are zero (the documented way to drop a seal). Anything else in front of an HDF5 file is a
    damaged seal, refused: one flipped bit in the magic must not silently drop every checksum.
    Raises TalonFormatError when the index or anything it covers does not match.
    """
    size = len(mm)
    head = bytes(mm[0:8])
    if head != MAGIC:
        if head in (_HDF5_SIGNATURE, bytes(8)) or not _has_user_block(mm):
            return None  # not sealed (or not HDF5 at all, which the HDF5 library reports)
        raise TalonFormatError(f"{name}: damaged TALON seal (the file's first 8 bytes are {head!r}, not {MAGIC!r}); "
                               "if the file was edited on purpose, zero its first 8 bytes to read it without the seal")
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
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError, struct.error, RecursionError) as exc:
        raise TalonFormatError(f"{name}: damaged TALON index ({type(exc).__name__}: {exc})") from None
    finally:
        view.release()
    if not ok:
        raise TalonFormatError(f"{name}: checksum mismatch: the file was modified or corrupted after it was written")
    return entries


def _has_user_block(mm: Any) -> bool:
    """HDF5 looks for its superblock at 0, 512, 1024, 2048, ...: one past 0 means a user block."""
    pos = _MIN_BLOCK
    while pos + 8 <= len(mm):
        if mm[pos : pos + 8] == _HDF5_SIGNATURE:
            return True
        pos *= 2
    return False


HEAP_MAGIC = b"GCOL"  # starts an HDF5 global heap collection
_GCOL_HEADER = 16  # "GCOL", version 1, 3 reserved bytes, 8-byte collection size
_OBJ_HEADER = 16  # heap object: index (2), reference count (2), reserved (4), size (8)


def check_global_heaps(mm: Any, name: str, skip: Sequence[tuple[int, int]] = ()) -> None:
    """Refuse malformed HDF5 global heap collections before HDF5 reads strings from them.

    HDF5 does not checksum these heaps, and its parser loops forever on some damaged object sizes (a
    free-space object of size 0, say). Every collection is walked the way HDF5 walks it, free space
    included; each object must fit and each step moves forward, so the walk is bounded by the file
    size. `skip` lists (offset, nbytes) ranges holding numeric dataset data (sorted): bytes there that
    happen to read "GCOL" are array values, not a heap. A collection checked whole is not searched
    again inside. Used for every file, sealed or not: anyone can recompute a seal.
    """
    size = len(mm)
    start = 0
    for offset, nbytes in sorted(skip) + [(size, 0)]:
        if offset > start:  # search the gap before this range only: array bytes are not even paged in
            start = _check_heaps_in(mm, name, start, offset)
        start = max(start, offset + nbytes)


def _check_heaps_in(mm: Any, name: str, start: int, stop: int) -> int:
    """Check the collections that start in [start, stop); return the first byte not yet covered."""
    size, done = len(mm), start
    pos = mm.find(HEAP_MAGIC, start, min(size, stop + 3))
    while pos != -1:
        nxt = pos + 4
        if pos + _GCOL_HEADER <= size and mm[pos + 4] == 1 and mm[pos + 5 : pos + 8] == b"\0\0\0":
            (coll,) = struct.unpack_from("<Q", mm, pos + 8)
            problem = _collection_problem(mm, pos, coll, size)
            if problem:
                raise TalonFormatError(f"{name}: corrupt HDF5 string heap at byte {pos} ({problem})")
            nxt = pos + coll
        done = max(done, nxt)
        pos = mm.find(HEAP_MAGIC, nxt, min(size, stop + 3)) if nxt < stop else -1
    return done


def _collection_problem(mm: Any, pos: int, coll: int, size: int) -> str | None:
    if coll < _GCOL_HEADER or coll > size - pos:
        return f"collection size {coll} does not fit the file"
    p, end = pos + _GCOL_HEADER, pos + coll
    while p < end:
        if p + _OBJ_HEADER > end:
            break  # too small for an object header: HDF5 counts it as free space
        idx, _, _, objsize = struct.unpack_from("<HHIQ", mm, p)
        if idx == 0:  # free space: its size counts its own header
            if objsize < _OBJ_HEADER or objsize > end - p:
                return f"free-space object at byte {p} has size {objsize}"
            need = objsize
        else:
            if objsize > end - p - _OBJ_HEADER:
                return f"object {idx} at byte {p} has size {objsize}, past the end of its collection"
            need = _OBJ_HEADER + (objsize + 7) // 8 * 8
            if need > end - p:
                return f"object {idx} at byte {p} does not fit its collection"
        p += need
    return None


def _read_at(file: Any, view: memoryview, pos: int) -> int:
    file.seek(pos)
    return file.readinto(view) or 0


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
