"""EVT3 as cameras write it (docs.prophesee.ai, EVT 3.0): TIME_HIGH words as the time's bits 12..23 change,
vectorised events, the 24-bit time's wrap. The words are written here from the specification, not by the
codec under test; expelliarmus reads the TIME_HIGH step 4096 µs late, so talon.io decodes EVT3 itself."""

import struct

import numpy as np
import pytest

from talon import io
from talon.errors import TalonError
from io_events import random_events


def word(kind: int, value: int) -> bytes:
    return struct.pack("<H", (kind << 12) | (value & 0xFFF))


def evt3_file(path, words) -> str:
    with open(path, "wb") as f:
        f.write(b"% evt 3.0\n% format EVT3;height=16;width=64\n% geometry 64x16\n% end\n" + b"".join(words))
    return str(path)


def test_time_high_step_as_cameras_write_it(tmp_path):
    # t = 4000, then the high part steps to 1 and the low part to 10: t = 4096 + 10
    path = evt3_file(tmp_path / "cam.raw", [word(0x8, 0), word(0x0, 2), word(0x6, 4000), word(0x2, 1), word(0x8, 1), word(0x6, 10), word(0x2, 1)])
    assert io.read_events(path).events["t"].tolist() == [4000, 4106]


def test_vectors_wrap_and_chunks(tmp_path):
    words = [word(0x8, 0), word(0x6, 100), word(0x0, 5), word(0x3, 10 | 1 << 11), word(0x4, 0b101), word(0x5, 0b1), word(0x2, 3),
             word(0x8, 0xFFF), word(0x6, 5), word(0x2, 7 | 1 << 11),
             word(0x8, 0x000), word(0x6, 9), word(0x0, 6), word(0x2, 8 | 1 << 11), word(0xA, 3), word(0x4, 0b10)]
    path = evt3_file(tmp_path / "vec.raw", words)
    expect = [(10, 5, 100, 1), (12, 5, 100, 1), (22, 5, 100, 1), (3, 5, 100, 0),
              (7, 5, (0xFFF << 12) + 5, 1), (8, 6, (1 << 24) + 9, 1), (31, 6, (1 << 24) + 9, 1)]
    rec = io.read_events(path)
    assert [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in rec.events] == expect
    assert rec.sensor_size == (64, 16, 2)
    for size in (1, 3, 5):
        chunks = list(io.iter_events(path, chunk_size=size))
        assert np.concatenate(chunks).tolist() == rec.events.tolist() and max(len(c) for c in chunks) <= size


@pytest.mark.parametrize("t_max", [100_000, 10**9, 10**10])  # 10**10 µs: past 2**32 µs, 600 wraps of TIME_HIGH
def test_written_evt3_states_every_time_high(tmp_path, t_max):
    ev = random_events(4000, 2048, 2048, seed=3, t_max=t_max)
    path = tmp_path / "w.raw"
    io.write_events(path, ev, format="evt3")
    assert np.array_equal(io.read_events(path).events, ev)
    # the payload as a camera's: a TIME_HIGH word for every 4096 µs period an event falls in
    data = open(path, "rb").read()
    words = np.frombuffer(data[data.index(b"% end\n") + 6:], "<u2")
    highs = set(((words[words >> 12 == 0x8] & 0xFFF)).tolist())
    assert set(((ev["t"] >> 12) & 0xFFF).tolist()) <= highs


def test_evt3_beyond_what_fillers_can_hold_is_refused(tmp_path):
    ev = io.make_events(x=[1, 2], y=[1, 1], t=[2**60, 2**60 + 5], p=[1, 0])
    with pytest.raises(TalonError, match="filler TIME_HIGH words.*hdf5"):
        io.write_events(tmp_path / "h.raw", ev, format="evt3")
    assert list(tmp_path.iterdir()) == []


def test_evt3_written_by_expelliarmus_reads_with_its_times(tmp_path):
    # expelliarmus (and talon.io before) wrote no TIME_HIGH steps: a falling TIME_LOW meant +4096 µs
    from expelliarmus import Wizard

    ev = random_events(3000, 64, 48, seed=5, t_max=60_000)
    arr = np.empty(len(ev), dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.uint8)])
    for k in ("t", "x", "y", "p"):
        arr[k] = ev[k]
    path = str(tmp_path / "old.raw")
    Wizard(encoding="evt3").save(path, arr)
    assert np.array_equal(io.read_events(path).events, ev)
    for size in (7, 100):
        assert np.array_equal(np.concatenate(list(io.iter_events(path, chunk_size=size))), ev)
