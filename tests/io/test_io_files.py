"""Every format: written (the library's own writer; AEDAT4 by the spec-built test writer), read back event
for event, whole and in chunks; bad files raise TalonError naming the file."""

import os
import re

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aedat4_writer import write_aedat4
from io_events import random_events
from talon import io
from talon.errors import TalonError

WRITERS = {"hdf5": "rec.h5", "evt2": "rec.raw", "evt3": "rec.raw", "dat": "rec.dat"}


def same(a, b):
    assert len(a) == len(b)
    for k in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_round_trip_every_event(tmp_path, events, fmt):
    path = tmp_path / WRITERS[fmt]
    io.write_events(path, events, format=fmt, sensor_size=(64, 48, 2))
    assert io.detect_format(path) == fmt
    rec = io.read_events(path)
    assert rec.format == fmt and rec.events.dtype == io.EVENT_DTYPE and len(rec) == len(events)
    assert rec.duration_us == events["t"][-1] - events["t"][0]
    same(rec.events, events)
    assert rec.sensor_size == (64, 48, 2) and io.sensor_size(path) == (64, 48, 2)  # every format keeps it
    chunks = list(io.iter_events(path, chunk_size=700))
    assert len(chunks) >= 4 and max(len(c) for c in chunks) <= 700 + 12  # expelliarmus: up to 12 more
    same(np.concatenate(chunks), events)


def test_aedat4_read_every_event_whole_and_chunked(tmp_path, events):
    path = tmp_path / "rec.aedat4"
    write_aedat4(path, events, 64, 48, packet_size=333)
    rec = io.read_events(path)
    assert rec.format == "aedat4" and rec.sensor_size == (64, 48, 2)
    same(rec.events, events)
    chunks = list(io.iter_events(path, chunk_size=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 1000]
    same(np.concatenate(chunks), events)


def test_hdf5_as_other_tools_write_it(tmp_path):
    """DSEC-style file: float-free integer columns of other dtypes, a t_offset, no sensor attributes."""
    path = tmp_path / "dsec.h5"
    ev = random_events(500)
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        g["x"], g["y"] = ev["x"].astype(np.uint16), ev["y"].astype(np.uint16)
        g["t"], g["p"] = ev["t"].astype(np.uint32), ev["p"].astype(np.uint8)
        f["t_offset"] = np.int64(1_000_000)
    rec = io.read_events(path)
    assert rec.sensor_size is None
    np.testing.assert_array_equal(rec.events["t"], ev["t"] + 1_000_000)
    for k in ("x", "y", "p"):
        np.testing.assert_array_equal(rec.events[k], ev[k])


def test_events_from_other_libraries_convert(events):
    """expelliarmus' (t, x, y, p uint8) and aedat's (t u8, x, y u2, on) arrays become tonic's dtype."""
    exp = np.zeros(len(events), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    aed = np.zeros(len(events), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    for arr, pol in ((exp, "p"), (aed, "on")):
        for k in ("t", "x", "y"):
            arr[k] = events[k]
        arr[pol] = events["p"]
        same(io.as_events(arr), events)


def test_tonic_transforms_apply_to_our_events(tmp_path, events):
    import tonic.transforms as T

    io.write_events(tmp_path / "r.h5", events)
    ev = io.read_events(tmp_path / "r.h5").events
    down = T.Downsample(spatial_factor=0.5)(ev)
    np.testing.assert_array_equal(down["x"], events["x"] // 2)
    kept = T.Denoise(filter_time=5000)(ev)
    assert kept.dtype == io.EVENT_DTYPE and 0 < len(kept) < len(ev)
    assert np.isin(kept["t"], ev["t"]).all()


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(TalonError, match=r"notes\.txt: not an event file.*evt2, evt3, dat, aedat4, hdf5"):
        io.read_events(path)
    with pytest.raises(TalonError, match="no such file"):
        io.read_events(tmp_path / "missing.raw", format="evt3")
    with pytest.raises(TalonError, match="unknown event format 'mp4'"):
        io.read_events(path, format="mp4")


@pytest.mark.parametrize("fmt", ["evt2", "evt3", "dat"])
def test_truncated_prophesee_file_is_refused(tmp_path, events, fmt):
    path = tmp_path / WRITERS[fmt]
    io.write_events(path, events, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(TalonError, match=rf"{path.name}: the {fmt.upper()} payload is .* truncated"):
        io.read_events(path)


def test_prophesee_suffix_rule(tmp_path, events):
    io.write_events(tmp_path / "r.dat", events, format="dat")
    os.rename(tmp_path / "r.dat", tmp_path / "r.td")
    with pytest.raises(TalonError, match=r"r\.td: expelliarmus reads DAT only from files named \*\.dat"):
        io.read_events(tmp_path / "r.td", format="dat")
    with pytest.raises(TalonError, match="must be named"):
        io.write_events(tmp_path / "x.evt", events, format="evt2")


def test_corrupt_aedat4_and_hdf5(tmp_path, events):
    path = tmp_path / "r.aedat4"
    write_aedat4(path, events, 64, 48)
    data = path.read_bytes()
    (tmp_path / "cut.aedat4").write_bytes(data[: len(data) - 100])
    with pytest.raises(TalonError, match=r"cut\.aedat4: damaged AEDAT4 data"):
        io.read_events(tmp_path / "cut.aedat4")
    (tmp_path / "bad.aedat4").write_bytes(b"#!AER-DAT4.0\r\n" + b"\xff" * 8)
    with pytest.raises(TalonError, match=r"bad\.aedat4: not a readable AEDAT4 file"):
        io.read_events(tmp_path / "bad.aedat4")
    with h5py.File(tmp_path / "nope.h5", "w") as f:
        f["events/x"] = np.zeros(3, np.uint16)
    with pytest.raises(TalonError, match=r"nope\.h5: /events lacks \['y', 't', 'p'\]"):
        io.read_events(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "neg.h5", "w") as f:
        for k, v in (("x", [1, 2]), ("y", [1, 2]), ("t", [5, -1]), ("p", [0, 3])):
            f[f"events/{k}"] = np.asarray(v)
    with pytest.raises(TalonError, match=r"neg\.h5.*negative timestamps"):
        io.read_events(tmp_path / "neg.h5")


def test_bad_events_are_refused_not_clipped(tmp_path, events):
    ev = events.copy()
    with pytest.raises(TalonError, match="polarity 'p' holds values \\[2\\]"):
        io.make_events(ev["x"], ev["y"], ev["t"], np.full(len(ev), 2))
    with pytest.raises(TalonError, match="not sorted"):
        io.write_events(tmp_path / "r.raw", ev[::-1], format="evt3")
    with pytest.raises(TalonError, match="cannot write 'aedat4'.*only decodes"):
        io.write_events(tmp_path / "r.aedat4", ev, format="aedat4")
    with pytest.raises(TalonError, match="missing \\['p'\\]"):
        io.as_events(np.zeros(3, dtype=[("x", "i2"), ("y", "i2"), ("t", "i8")]))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_hdf5_write_is_atomic_and_streams_large_files(tmp_path):
    ev = random_events(200_000, seed=3, t_max=10_000_000)
    path = tmp_path / "big.h5"
    io.write_events(path, ev, sensor_size=(64, 48))
    sizes = [len(c) for c in io.iter_events(path, chunk_size=65_536)]
    assert sizes == [65_536, 65_536, 65_536, 200_000 - 3 * 65_536]
    assert [p.name for p in tmp_path.iterdir()] == ["big.h5"]


def test_import_talon_io_stays_torch_free():
    import subprocess
    import sys

    code = "import sys, talon.io; assert 'torch' not in sys.modules and 'tonic' not in sys.modules, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tonic'))"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metavision_compound_layout_reads_when_uncompressed(tmp_path):
    """Metavision's /CD/events (x u16, y u16, p i16, t i64), here without its ECF codec."""
    ev = random_events(800, seed=9)
    cd = np.zeros(len(ev), dtype=[("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("t", "<i8")])
    for k in ("x", "y", "p", "t"):
        cd[k] = ev[k]
    with h5py.File(tmp_path / "mv.hdf5", "w") as f:
        f.create_dataset("CD/events", data=cd, chunks=(256,))
        f.attrs["geometry"] = "64x48"
    rec = io.read_events(tmp_path / "mv.hdf5")
    same(rec.events, ev)
    assert rec.sensor_size == (64, 48, 2)
    same(np.concatenate(list(io.iter_events(tmp_path / "mv.hdf5", chunk_size=300))), ev)


@pytest.mark.parametrize("fmt, field, value, match", [
    ("evt3", "x", [0, 3000, 5], r"EVT3 holds x, y <= 2047.*x=3000"),
    ("evt2", "x", [0, 3000, 5], r"EVT2 .* event 1 \(t=.*, x=3000.*x, y <= 2047"),
    ("dat", "y", [0, 20000, 5], r"DAT .* event 1 .*y=20000"),
])
def test_writes_the_encoding_cannot_hold_are_refused(tmp_path, fmt, field, value, match):
    ev = np.zeros(3, dtype=io.EVENT_DTYPE)
    ev["t"] = [0, 10, 20]
    ev[field] = value
    with pytest.raises(TalonError, match=match):
        io.write_events(tmp_path / WRITERS[fmt], ev, format=fmt)
    assert not list(tmp_path.iterdir())  # neither the target nor the temporary file is left
    with pytest.raises(TalonError, match="no events"):
        io.write_events(tmp_path / WRITERS[fmt], ev[:0], format=fmt)
    io.write_events(tmp_path / "ok.h5", ev)  # HDF5 holds them
    same(io.read_events(tmp_path / "ok.h5").events, ev)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 300), seed=st.integers(0, 2**16), fmt=st.sampled_from(["hdf5", "evt2", "dat"]))
def test_round_trip_property(tmp_path, n, seed, fmt):
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=io.EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 2**31, n))
    ev["x"], ev["y"] = rng.integers(0, 2048, n), rng.integers(0, 2048, n)
    ev["p"] = rng.integers(0, 2, n).astype(bool)
    path = tmp_path / f"p{seed}_{n}{WRITERS[fmt][3:]}"
    try:
        io.write_events(path, ev, format=fmt)
    except TalonError as exc:  # expelliarmus' EVT2 encoder writes some of these wrong: refused, nothing left behind
        assert fmt == "evt2" and "write EVT3 (format='evt3') or HDF5" in str(exc), exc
        assert not path.exists() and not list(tmp_path.glob(f".{path.name}.*"))
        return
    same(io.read_events(path).events, ev)


def test_evt2_payload_starting_with_a_percent_byte_round_trips(tmp_path):
    # found by the property test above, once taken for an encoder fault: expelliarmus writes this recording
    # correctly, but its first word begins with the byte '%', which expelliarmus' reader (and talon.io's
    # header parser before talon.io.evt2) skipped as a header line; talon.io now ends the header with "% end"
    rng = np.random.default_rng(41)
    n = int(rng.integers(1, 300))
    ev = np.empty(n, dtype=io.EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 2**31, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 2048, n), rng.integers(0, 2048, n), rng.integers(0, 2, n).astype(bool)
    io.write_events(tmp_path / "r.raw", ev, format="evt2")
    same(io.read_events(tmp_path / "r.raw").events, ev)


def test_missing_library_names_the_extra(tmp_path, events, monkeypatch):
    import sys

    io.write_events(tmp_path / "r.dat", events, format="dat")
    monkeypatch.setitem(sys.modules, "expelliarmus", None)  # as if the io extra were not installed
    with pytest.raises(TalonError, match=r"reading DAT needs the 'expelliarmus' package: pip install 't1c-talon\[io\]'"):
        io.read_events(tmp_path / "r.dat")


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("size", [(64, 48), (64, 48, 2), (1280, 720, 2)])
def test_every_format_round_trips_the_sensor_size(tmp_path, events, fmt, size):
    path = tmp_path / WRITERS[fmt]
    io.write_events(path, events, format=fmt, sensor_size=size)
    assert io.read_events(path).sensor_size == (size[0], size[1], 2)
    io.write_events(path, events, format=fmt)  # none given: none stated
    assert io.read_events(path).sensor_size is None


@pytest.mark.parametrize("fmt, lines", [("evt3", ["format EVT3;height=48;width=64", "geometry 64x48"]),
                                        ("evt2", ["format EVT2;height=48;width=64", "geometry 64x48"]), ("dat", ["Width 64", "Height 48"])])
def test_the_prophesee_header_states_the_size_as_metavision_writes_it(tmp_path, events, fmt, lines):
    """docs.prophesee.ai's RAW header example: '% format EVT3;height=720;width=1280' and '% geometry 1280x720'."""
    path = tmp_path / WRITERS[fmt]
    io.write_events(path, events, format=fmt, sensor_size=(64, 48))
    from talon.io.prophesee import header

    found = header(str(path))[0]
    assert all(line in found for line in lines), found


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("size, words", [((32, 48), "event 1 has x=63, outside the sensor_size 32x48"), ((64, 40), "has y=47, outside the sensor_size 64x40"),
                                         ((64, 48, 3), "sensor_size must be (width, height)"), ((64.0, 48), "whole numbers"),
                                         ((0, 48), "whole numbers >= 1"), ("64x48", "sensor_size must be")])
def test_a_sensor_size_events_do_not_fit_is_refused(tmp_path, events, fmt, size, words):
    path = tmp_path / WRITERS[fmt]
    with pytest.raises(TalonError, match=re.escape(words)):
        io.write_events(path, events, format=fmt, sensor_size=size)
    assert not os.listdir(tmp_path)


def test_aedat4_second_stream_reads_its_own_sensor_size(tmp_path, events):
    from aedat4_writer import MAGIC, event_packet, ioheader

    small = events[events["x"] < 32]
    small = small[small["y"] < 16]
    path = tmp_path / "two.aedat4"
    with open(path, "wb") as f:
        f.write(MAGIC + ioheader([(0, 64, 48), (1, 32, 16)]) + event_packet(0, events[:500]) + event_packet(1, small) + event_packet(0, events[500:]))
    rec = io.read_events(path, stream=1)
    same(rec.events, small)
    assert rec.sensor_size == (32, 16, 2) and io.sensor_size(path, stream=1) == (32, 16, 2)
    assert io.read_events(path).sensor_size == (64, 48, 2)
    h5 = tmp_path / "one.h5"
    io.write_events(h5, events)
    with pytest.raises(TalonError, match="stream=1 picks an AEDAT4 event stream.*hdf5"):
        io.read_events(h5, stream=1)


@pytest.mark.parametrize("t, offset", [(np.array([2**63 + 5], np.uint64), None), (np.array([2**62], np.int64), 2**62)])
def test_hdf5_timestamps_beyond_int64_are_refused_not_wrapped(tmp_path, t, offset):
    import h5py

    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        g["x"], g["y"], g["p"], g["t"] = np.array([1], np.uint16), np.array([1], np.uint16), np.array([1], np.uint8), t
        if offset is not None:
            f["t_offset"] = np.int64(offset)
    with pytest.raises(TalonError, match="beyond the int64 microseconds"):
        io.read_events(path)


@pytest.mark.parametrize("t", [np.array([2**63 + 1], np.uint64), np.array([2.0**63]), np.array([1e20])])
def test_event_times_beyond_int64_are_refused_not_wrapped(t):
    with pytest.raises(TalonError, match="beyond the int64 microseconds"):
        io.make_events([1], [1], t, [1])


@pytest.mark.parametrize("fmt, name", [("evt3", "a.raw"), ("evt2", "a.raw"), ("dat", "a.dat"), ("hdf5", "a.h5")])
def test_writing_into_a_missing_folder_says_so(tmp_path, events, fmt, name):
    with pytest.raises(TalonError, match="does not exist"):
        io.write_events(tmp_path / "nodir" / name, events, format=fmt)
