"""Where the bytes of a .t1c file go: user block, superblock, string heap, array data, object headers.

Run:  PYTHONPATH=src python benchmarks/t1c_bytes.py FILE.t1c [FILE.t1c ...]
      PYTHONPATH=src python benchmarks/t1c_bytes.py --demo [--out DIR]

`--demo` writes the end-to-end demo's two graph files first (examples/end_to_end.py's 64-128-10 LIF model,
untrained, through talon.pipeline.run_pipeline: the float graph and the 8-bit hardware graph; needs torch
and snnTorch) and prints their ratio. Untrained weights give the same sizes as trained ones to a few
bytes (only the mapping's JSON, compressed, varies): every stored array keeps its dtype and shape.

`--sdk-floor` also writes, for each file, the smallest file HDF5 makes of the existing SDK's layout alone
(its objects and their values, none of TALON's: no seal beyond a minimal 512-byte user block, no order,
shapes or mirror attributes, no metadata, no added fields or integer-form attributes), with every
space setting TALON uses: a lower bound for any file that SDK can read.

Each file is broken down into the HDF5 user block (TALON's sealed index), the superblock, the global
heap collections (HDF5 keeps every variable-length string there, in collections of at least 4 KiB),
contiguous array data, and the object header of every group and dataset (links, attributes and small
datasets' data live in their headers), grouped by what they hold. docs/format.md quotes the output.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
from pathlib import Path
from typing import Any

import h5py

ROOT = Path(__file__).resolve().parents[1]


def _role(path: str, obj: Any, types: dict[str, str]) -> str:
    """What an object is for: the existing SDK's layout, or one of TALON's additions."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["graph", "metadata"]:
        return "graph metadata (stamp, mapping, exporter)"
    if len(parts) == 4 and parts[:2] == ["graph", "nodes"] and parts[3] != "type":
        from talon.ir.node import get_node_class

        cls = get_node_class(types.get("/".join(parts[:3]), ""))
        spec = cls.field_specs().get(parts[3]) if cls is not None else None
        if spec is not None and spec.extension:
            return "TALON's added fields (reset_mode, Input.spikes, ...)"
        if isinstance(obj, h5py.Dataset) and obj.attrs:
            return "integer-form arrays (dataset + 2 attributes)"
        return "node fields"
    if path in ("/", "/graph"):
        return "root and /graph groups (with TALON's order, shapes, dt, mirror attributes)"
    if len(parts) == 3 and parts[:2] == ["graph", "nodes"]:
        return "node groups (links to their fields)"
    return "type, version, nodes/edges groups and datasets"


def breakdown(path: str | os.PathLike) -> dict[str, Any]:
    """{component: bytes} of one .t1c file, plus the heap's use and the object count."""
    raw = Path(path).read_bytes()
    rows: dict[str, int] = {}
    data = headers = 0
    arrays: list[tuple[int, int]] = []
    counts: dict[str, int] = {}
    with h5py.File(path, "r") as f:
        block = f.id.get_create_plist().get_userblock()
        types = {}
        for name, node in f["graph/nodes"].items():
            if "type" in node:
                types[f"graph/nodes/{name}"] = node["type"][()].decode()

        def visit(name: str, obj: Any) -> None:
            nonlocal data, headers
            total = h5py.h5o.get_info(obj.id).hdr.space.total
            role = _role("/" + name if name != "/" else "/", obj, types)
            rows[role] = rows.get(role, 0) + total
            counts[role] = counts.get(role, 0) + 1
            headers += total
            if isinstance(obj, h5py.Dataset) and obj.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS:
                data += obj.id.get_storage_size()
                arrays.append((obj.id.get_offset(), obj.id.get_storage_size()))

        visit("/", f)
        f.visititems(visit)
    superblock = 48 if raw[block + 8] >= 2 else 0  # versions 2 and 3 with 8-byte addresses
    heaps, heap_free = [], 0
    for m in re.finditer(b"GCOL", raw):
        at = m.start()
        if any(o <= at < o + n for o, n in arrays):
            continue  # array bytes that happen to spell GCOL
        size = struct.unpack_from("<Q", raw, at + 8)[0]
        heaps.append(size)
        pos = at + 16
        while pos + 16 <= at + size:  # objects: index, refcount, reserved, size; index 0 is the free space
            index, size_obj = struct.unpack_from("<H", raw, pos)[0], struct.unpack_from("<Q", raw, pos + 8)[0]
            if index == 0:
                heap_free = heap_free + size_obj
                break
            pos += 16 + (size_obj + 7) // 8 * 8
    out: dict[str, Any] = {"file": len(raw), "user block (sealed index)": block, "superblock": superblock,
                           "global heap collections (strings)": (sum(heaps), len(heaps)), "  of which free": heap_free,
                           "array data (contiguous)": data}
    for role, n in sorted(rows.items(), key=lambda kv: -kv[1]):
        out[f"headers: {role}"] = (n, counts[role])
    out["allocation gaps"] = len(raw) - block - superblock - sum(heaps) - data - headers
    return out


def sdk_floor(path: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write to `out` only the existing SDK's objects of `path`, as tightly as HDF5 allows; its size."""
    import numpy as np

    from talon.ir import _h5space
    from talon.ir.node import get_node_class

    def keep(group: h5py.Group, name: str) -> bool:
        parts = group.name.strip("/").split("/")
        if parts == ["graph"] and name == "metadata":
            return False
        if len(parts) == 3 and parts[:2] == ["graph", "nodes"] and name != "type":
            cls = get_node_class(group["type"][()].decode())
            spec = cls.field_specs().get(name) if cls is not None else None
            return spec is None or not spec.extension
        return True

    def copy(src: h5py.Group, dst: h5py.Group) -> None:
        names = [n for n in src if keep(src, n)]
        for name in names:
            obj = src[name]
            if isinstance(obj, h5py.Group):
                links = [n.encode() for n in obj if keep(obj, n)]
                copy(obj, h5py.Group(h5py.h5g.create(dst.id, name.encode(), gcpl=_h5space.group_plist(links))))
                continue
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_obj_track_times(False)
            if obj.nbytes <= 256:  # as TALON writes: small data in the object header, arrays contiguous
                dcpl.set_layout(h5py.h5d.COMPACT)
            data = np.asarray(obj[()], dtype=obj.dtype)
            h5py.h5d.create(dst.id, name.encode(), obj.id.get_type(), obj.id.get_space(), dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, data)

    with h5py.File(path, "r") as src, _h5space.create_file(out, 512, [n.encode() for n in src]) as dst:
        copy(src, dst)
    return os.path.getsize(out)


def print_breakdowns(paths: list[str]) -> list[dict[str, Any]]:
    tables = [breakdown(p) for p in paths]
    keys: list[str] = []
    for t in tables:
        keys += [k for k in t if k not in keys and k != "file"]
    width = max(map(len, keys)) + 2
    print(" " * width + "".join(f"{Path(p).name:>26}" for p in paths))
    for k in ["file"] + keys:
        print(f"{k:<{width}}" + "".join(f"{_cell(t.get(k, 0)):>26}" for t in tables))
    print("(n): number of HDF5 objects, or of heap collections")
    return tables


def _cell(value: Any) -> str:
    return f"{value[0]:,} ({value[1]})" if isinstance(value, tuple) else f"{value:,}"


def write_demo(out: str) -> tuple[str, str]:
    """The demo's float and 8-bit graph files (examples/end_to_end.py's model and pipeline), untrained."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("end_to_end", ROOT / "examples" / "end_to_end.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    _, float_file, int8_file = demo.write_untrained_files(out)
    return float_file, int8_file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help=".t1c files")
    p.add_argument("--demo", action="store_true", help="write and break down the end-to-end demo's float and 8-bit graph files")
    p.add_argument("--sdk-floor", action="store_true", help="also break down the smallest file of the existing SDK's layout alone, for each file")
    p.add_argument("--out", default=None, help="folder for --demo's files (default: a temporary folder)")
    args = p.parse_args(argv)
    files = list(args.files)
    if args.demo:
        import tempfile

        out = args.out or tempfile.mkdtemp(prefix="t1c-bytes-")
        files = list(write_demo(out)) + files
    if not files:
        p.error("give .t1c files or --demo")
    if args.sdk_floor:
        import tempfile

        floor_dir = tempfile.mkdtemp(prefix="t1c-floor-")
        for f in list(files):
            floor = os.path.join(floor_dir, Path(f).stem + "_sdk_floor.h5")
            sdk_floor(f, floor)
            files.append(floor)
    tables = print_breakdowns(files)
    if args.demo:
        print(f"\n8-bit / float file: {tables[1]['file']:,} / {tables[0]['file']:,} = {tables[1]['file'] / tables[0]['file']:.4f}")
        if args.sdk_floor:
            n = len(tables) // 2
            floor_i8, floor_f = tables[n + 1]["file"], tables[n]["file"]
            print(f"existing SDK's layout alone: 8-bit {floor_i8:,} B = {floor_i8 / tables[0]['file']:.4f} of the float file above, "
                  f"{floor_i8 / floor_f:.4f} of the float graph's own floor ({floor_f:,} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
