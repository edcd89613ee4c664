"""A test-only AEDAT4 writer, built from the format's public specification (iniVation's DV file format:
the "#!AER-DAT4.0\\r\\n" magic, a size-prefixed FlatBuffers IOHeader with the XML stream description,
then packets of (stream id, size, size-prefixed FlatBuffers EventPacket)); the `aedat` package decodes
only. FlatBuffers tables are laid out by hand (vtable, table, vector), uncompressed.

Schemas (aedat's flatbuffers/*.fbs): Ioheader {compression: int32 = 0; file_data_position: int64 = -1;
description: string}; EventPacket {elements: [Event]} with struct Event {t: int64; x: int16; y: int16;
on: bool} (16 bytes with padding).
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"#!AER-DAT4.0\r\n"


def _description(streams: list[tuple[int, int, int]]) -> str:
    nodes = "".join(
        f'<node name="{sid}"><attr key="compression" type="string">NONE</attr>'
        f'<attr key="originalModuleName" type="string">talon-test</attr><attr key="originalOutputName" type="string">events</attr>'
        f'<attr key="typeIdentifier" type="string">EVTS</attr><node name="info">'
        f'<attr key="sizeX" type="int">{w}</attr><attr key="sizeY" type="int">{h}</attr></node></node>'
        for sid, w, h in streams
    )
    return f'<dv version="2.0"><node name="outInfo">{nodes}</node></dv>'


def ioheader(streams: list[tuple[int, int, int]]) -> bytes:
    """The size-prefixed IOHeader: only `description` set (compression None, file_data_position -1)."""
    text = _description(streams).encode()
    # positions relative to the buffer after the 4-byte size prefix
    vtable = struct.pack("<5H", 10, 8, 0, 0, 4)  # vtable size, table size, field offsets (compression, position, description)
    buf = bytearray(struct.pack("<I", 20)) + b"IOHE" + vtable + b"\0\0"  # root offset -> table at 20
    buf += struct.pack("<iI", 20 - 8, 28 - 24)  # table: soffset to vtable at 8; description at 28
    buf += struct.pack("<I", len(text)) + text + b"\0"
    buf += b"\0" * (-len(buf) % 4)
    return struct.pack("<I", len(buf)) + bytes(buf)


def event_packet(stream_id: int, events: np.ndarray) -> bytes:
    """One packet: stream id, size, and the size-prefixed EventPacket of `events` (fields t, x, y, p)."""
    el = np.zeros(len(events), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    el["t"], el["x"], el["y"], el["on"] = events["t"], events["x"], events["y"], events["p"]
    # positions relative to the whole size-prefixed buffer, so the int64s are 8-byte aligned
    body = bytearray(struct.pack("<I", 16)) + b"EVTS"  # at 4: root offset -> table at 20 (20 - 4)
    body += struct.pack("<3H", 6, 8, 4) + b"\0\0"  # vtable at 12
    body += struct.pack("<iI", 20 - 12, 28 - 24)  # table at 20: soffset; vector at 28
    body += struct.pack("<I", len(el)) + el.tobytes()  # elements start at 32
    payload = struct.pack("<I", len(body)) + bytes(body)
    return struct.pack("<II", stream_id, len(payload)) + payload


def write_aedat4(path, events: np.ndarray, width: int, height: int, packet_size: int = 1000, stream_id: int = 0) -> None:
    packets = [event_packet(stream_id, events[i : i + packet_size]) for i in range(0, len(events), packet_size)]
    with open(path, "wb") as fh:
        fh.write(MAGIC + ioheader([(stream_id, width, height)]) + b"".join(packets))
