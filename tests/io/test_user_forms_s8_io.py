"""Event files written the way cameras, vendor tools and other frameworks write them (trust audit, s8).

References: the format specifications written out here word by word (Prophesee EVT 2.0), and the
readers the field uses (expelliarmus, tonic), never talon.io itself.
"""

import numpy as np
import pytest

from atis_files import atis_bytes
from talon import io
from talon.errors import TalonError

METAVISION_HEADER = (
    b"% camera_integrator_name Prophesee\n% date 2024-03-01 10:11:12\n% evt 2.0\n% format EVT2;height=480;width=640\n"
    b"% generation 4.1\n% geometry 640x480\n% integrator_name Prophesee\n% plugin_name hal_plugin_gen41_evk3\n"
    b"% serial_number 00ca0009\n% system_ID 39\n% end\n"
)


def evt2_words(events, *, vendor=True, first_high=None):
    """EVT 2.0 words for `events` (x, y, t, p rows), as the specification lays them out: a TIME_HIGH word
    whenever t >> 6 changes, then CD_ON / CD_OFF; with `vendor`, an EXT_TRIGGER, an OTHERS and a
    CONTINUED word after every event (a camera interleaves them; they hold no CD event)."""
    words = [] if first_high is None else [(0x8 << 28) | first_high]
    last = None
    for x, y, t, p in events:
        if t >> 6 != last:
            words.append((0x8 << 28) | ((t >> 6) & 0x0FFFFFFF))
            last = t >> 6
        words.append(((1 if p else 0) << 28) | ((t & 0x3F) << 22) | (x << 11) | y)
        if vendor:
            words += [(0xA << 28) | ((t & 0x3F) << 22) | (1 << 8) | 1, (0xE << 28) | 0x123, (0xF << 28) | 0xABCDE]
    return np.array(words, "<u4")


def spec_decode_evt2(words):
    """EVT 2.0 word by word: CD events take the last TIME_HIGH (a fall by half the 28-bit range or more is
    the 34-bit time's wrap) with their own 6 low bits; other types carry no CD event."""
    out, high, loops, last_raw = [], 0, 0, None
    for w in (int(v) for v in words):
        typ = w >> 28
        if typ == 0x8:
            raw = w & 0x0FFFFFFF
            if last_raw is not None and last_raw - raw >= 1 << 27:
                loops += 1
            last_raw, high = raw, (loops << 34) + (raw << 6)
        elif typ in (0x0, 0x1):
            out.append(((w >> 11) & 0x7FF, w & 0x7FF, high + ((w >> 22) & 0x3F), typ))
    return out


def rows(events):
    return [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in events]


def camera_events(n=400, seed=3, t0=123_456):
    rng = np.random.default_rng(seed)
    t = t0 + np.sort(rng.integers(0, 300_000, n))
    return [(int(x), int(y), int(tt), int(p)) for x, y, tt, p in zip(rng.integers(0, 640, n), rng.integers(0, 480, n), t, rng.integers(0, 2, n))]


def test_evt2_as_a_camera_writes_it_with_trigger_and_vendor_words(tmp_path):
    from expelliarmus import Wizard

    ev = camera_events()
    words = evt2_words(ev)
    path = tmp_path / "rec.raw"
    path.write_bytes(METAVISION_HEADER + words.tobytes())
    rec = io.read_events(path)
    assert rec.format == "evt2" and rec.sensor_size == (640, 480, 2)
    assert rows(rec.events) == spec_decode_evt2(words) == ev
    ref = Wizard(encoding="evt2").read(str(path))  # the field's reader agrees on this file
    assert [(int(r["x"]), int(r["y"]), int(r["t"]), int(r["p"])) for r in ref] == ev
    chunks = list(io.iter_events(path, chunk_size=37))
    assert max(len(c) for c in chunks) <= 37 and rows(np.concatenate(chunks)) == ev


def test_evt2_time_high_wraps_after_2_to_the_34_microseconds(tmp_path):
    # a recording running across the 34-bit wrap (4.8 h): TIME_HIGH falls from 0x0FFFFFFF to 0
    top = (1 << 34) - 200
    ev = [(1, 2, top, 1), (3, 4, top + 150, 0), (5, 6, (1 << 34) + 10, 1), (7, 8, (1 << 34) + 5000, 0)]
    words = evt2_words([(x, y, t % (1 << 34), p) for x, y, t, p in ev], vendor=False)
    path = tmp_path / "wrap.raw"
    path.write_bytes(b"% evt 2.0\n% end\n" + words.tobytes())
    got = rows(io.read_events(path).events)
    assert got == spec_decode_evt2(words) == ev
    assert rows(np.concatenate(list(io.iter_events(path, chunk_size=1)))) == ev  # the wrap carries across chunks


@pytest.mark.parametrize("end", [b"% end\n", b""], ids=["with_end", "no_end_marker"])
def test_a_payload_whose_first_byte_is_percent_is_not_header(tmp_path, end):
    # the first TIME_HIGH word 0x80000025 is stored as the bytes 25 00 00 80: '%' and three control bytes.
    # expelliarmus' reader loops for ever on such a file; one camera file in 256 starts this way
    ev = [(3, 4, 0x25 << 6 | 5, 1), (5, 6, (0x25 << 6) + 40, 0), (600, 400, 9000, 1)]
    words = evt2_words(ev, vendor=False)
    assert words[0] == 0x80000025
    path = tmp_path / "pct.raw"
    path.write_bytes(b"% evt 2.0\n% geometry 640x480\n" + end + words.tobytes())
    rec = io.read_events(path)
    assert rows(rec.events) == spec_decode_evt2(words) == ev and rec.sensor_size == (640, 480, 2)


def test_evt3_payload_starting_with_percent_and_no_end_marker(tmp_path):
    # EVT3 words: TIME_HIGH 0x025 (bytes 25 80), TIME_LOW 0x005, ADDR_Y 7, ADDR_X 9 with polarity 1
    words = np.array([0x8025, 0x6005, 0x0007, 0x2000 | 1 << 11 | 9], "<u2")
    path = tmp_path / "pct3.raw"
    path.write_bytes(b"% evt 3.0\n% format EVT3;height=720;width=1280\n" + words.tobytes())
    assert rows(io.read_events(path).events) == [(9, 7, (0x025 << 12) + 5, 1)]


def test_header_only_recordings_read_as_empty(tmp_path):
    # a camera left recording on a static scene writes its header and no events
    files = {
        "a.raw": METAVISION_HEADER,
        "b.raw": b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n",
        "c.dat": b"% Data file containing CD events.\n% Version 2\n% Width 304\n% Height 240\n\x0c\x08",
        "d.dat": b"% Data file containing CD events.\n% Version 2\n% Width 304\n% Height 240\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        rec = io.read_events(tmp_path / name)
        assert len(rec) == 0 and rec.events.dtype == io.EVENT_DTYPE, name
        assert list(io.iter_events(tmp_path / name)) == []
    assert io.read_events(tmp_path / "c.dat").sensor_size == (304, 240, 2)


def test_an_empty_file_says_it_is_empty(tmp_path):
    (tmp_path / "rec.raw").write_bytes(b"")
    with pytest.raises(TalonError, match=r"rec\.raw: the file is empty \(0 bytes\)"):
        io.read_events(tmp_path / "rec.raw")


@pytest.mark.parametrize("line", [b"% format EVT21;height=720;width=1280\n", b"% evt 2.1\n"])
def test_evt21_is_refused_not_read_as_evt2(tmp_path, line):
    # EVT 2.1 (64-bit words, vectors of 32 pixels): "format EVT21" once read as EVT2, 2 made-up events per word
    path = tmp_path / "imx636.raw"
    path.write_bytes(b"% camera_integrator_name Prophesee\n" + line + b"% end\n" + np.array([0x1 << 60 | 0xFF], "<u8").tobytes())
    with pytest.raises(TalonError, match=r"imx636\.raw: a Prophesee EVT 2\.1 recording, which talon\.io does not decode"):
        io.read_events(path)


# --- N-MNIST / N-Caltech101 .bin (ATIS 40-bit events), against tonic's reader --------------------------------


def tonic_rows(path):
    import tonic

    ev = tonic.io.read_mnist_file(str(path), dtype=tonic.io.events_struct)
    return [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in ev]


def test_nmnist_bin_reads_as_tonic_reads_it(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    t = np.sort(rng.integers(0, 300_000, n))
    ev = [(int(x), int(y), int(tt), int(p)) for x, y, tt, p in zip(rng.integers(0, 34, n), rng.integers(0, 34, n), t, rng.integers(0, 2, n))]
    ev[0] = (37, 5, 12, 1)  # the file starts with the byte '%': not a Prophesee header
    marked = ev[:100] + [(0, 240, 0, 0)] + ev[100:]  # an overflow marker: later timestamps gain 2^13 µs
    path = tmp_path / "00002.bin"
    path.write_bytes(atis_bytes(marked))
    rec = io.read_events(path)
    assert rec.format == "atis" and rec.sensor_size is None
    want = tonic_rows(path)
    assert rows(rec.events) == want and len(want) == n and want[100][2] == ev[100][2] + 2**13
    assert rows(np.concatenate(list(io.iter_events(path, chunk_size=7)))) == want  # the marker's effect carries across chunks


def test_nmnist_bin_cut_short_is_refused(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(atis_bytes([(1, 2, 3, 1), (4, 5, 6, 0)])[:-2])
    with pytest.raises(TalonError, match=r"cut\.bin: 8 bytes, not a whole number of 5-byte ATIS events .*truncated by 3 bytes"):
        io.read_events(path)


def test_nmnist_folder_as_tonic_extracts_it(tmp_path):
    # tonic.datasets.NMNIST unpacks to NMNIST/Train/<digit>/<id>.bin
    root = tmp_path / "NMNIST" / "Train"
    want = {}
    for digit in (0, 3, 7):
        (root / str(digit)).mkdir(parents=True)
        for k in range(2):
            ev = [(digit + k, 2 * digit, 1000 * (i + 1), i % 2) for i in range(5)]
            path = root / str(digit) / f"{10 * digit + k:05d}.bin"
            path.write_bytes(atis_bytes(ev))
            want[str(path)] = (tonic_rows(path), digit)
    ds = io.EventFolder(root)
    assert ds.classes == ["0", "3", "7"] and len(ds) == 6
    for i, f in enumerate(ds.files):
        events, label = ds[i]
        assert (rows(events), label) == want[f]


# --- AEDAT 3.1 (jAER / cAER; DVS Gesture) ---------------------------------------------------------------------


def aedat31(packets, source="DVS128"):
    """An AEDAT 3.1 file as cAER writes it: the text header, then (type, events, overflow) packets."""
    head = (f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {source}\r\n#Start-Time: 2017-05-03 14:21:59 (TZ+0200)\r\n"
            "#!END-HEADER\r\n").encode()
    body = b""
    for typ, data, overflow in packets:
        size = 8
        n = len(data) // size
        body += np.array([(typ, 1, size, 4, overflow, n, n, n)], dtype=[("a", "<i2"), ("b", "<i2")] + [(c, "<i4") for c in "cdefgh"]).tobytes() + data
    return head + body


def polarity(events, valid=None):
    """8-byte AEDAT 3.1 polarity events: data = x << 17 | y << 2 | p << 1 | valid, then the int32 timestamp."""
    valid = [1] * len(events) if valid is None else valid
    return np.array([((x << 17) | (y << 2) | (p << 1) | v, t) for (x, y, t, p), v in zip(events, valid)], dtype=[("d", "<u4"), ("t", "<i4")]).tobytes()


def test_aedat31_dvs_gesture_file_reads_as_tonic_reads_it(tmp_path):
    import tonic

    rng = np.random.default_rng(8)
    n = 200
    ev = [(int(x), int(y), int(t), int(p)) for x, y, t, p in zip(rng.integers(0, 128, n), rng.integers(0, 128, n), np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 2, n))]
    path = tmp_path / "user01_fluorescent.aedat"
    path.write_bytes(aedat31([(1, polarity(ev[:120]), 0), (1, polarity(ev[120:]), 0)]))
    rec = io.read_events(path)
    assert rec.format == "aedat3" and rec.sensor_size == (128, 128, 2)
    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    a = raw["address"].astype(np.int64)  # decoded as tonic.io.read_dvs_ibm does
    ref = list(zip(((a >> 17) & 0x1FFF).tolist(), ((a >> 2) & 0x1FFF).tolist(), raw["timeStamp"].astype(int).tolist(), ((a >> 1) & 1).tolist()))
    assert rows(rec.events) == ref == ev
    assert rows(np.concatenate(list(io.iter_events(path, chunk_size=50)))) == ev


def test_aedat31_with_special_packets_invalid_events_and_overflow(tmp_path):
    # what tonic's generic reader gets wrong, by the specification: a special-event packet (type 0) is
    # no polarity event, an invalid event (bit 0 clear) is dropped, eventTSOverflow adds 2^31 µs
    ev = [(1, 2, 10, 1), (3, 4, 20, 0), (5, 6, 30, 1)]
    special = np.array([(1 << 1 | 1, 0)], dtype=[("d", "<u4"), ("t", "<i4")]).tobytes()  # a timestamp reset
    path = tmp_path / "davis.aedat"
    path.write_bytes(aedat31([(0, special, 0), (1, polarity(ev, valid=[1, 0, 1]), 0), (1, polarity([(7, 8, 5, 0)]), 2)], source="DAVIS346B"))
    rec = io.read_events(path)
    assert rows(rec.events) == [(1, 2, 10, 1), (5, 6, 30, 1), (7, 8, 2 * 2**31 + 5, 0)] and rec.sensor_size == (346, 260, 2)


def test_aedat31_cut_short_and_aedat2_are_refused_with_the_way_forward(tmp_path):
    data = aedat31([(1, polarity([(1, 2, 10, 1), (3, 4, 20, 0)]), 0)])
    (tmp_path / "cut.aedat").write_bytes(data[:-5])
    with pytest.raises(TalonError, match=r"cut\.aedat: the packet at byte \d+ holds 2 events of 8 bytes, beyond the end of the file"):
        io.read_events(tmp_path / "cut.aedat")
    jaer = b"#!AER-DAT2.0\r\n# This is a raw AE data file created by jAER\r\n" + np.array([(0x0102, 10)], dtype=">u4").tobytes()
    (tmp_path / "jaer.aedat").write_bytes(jaer)
    with pytest.raises(TalonError, match=r"jaer\.aedat: an AEDAT 2\.0 file \(jAER\), whose event addresses are laid out per sensor.*format='hdf5'"):
        io.read_events(tmp_path / "jaer.aedat")


# --- HDF5 as users and tools write it -------------------------------------------------------------------------


@pytest.mark.parametrize("order", [("x", "y", "t", "p"), ("t", "x", "y", "p")])
def test_a_tonic_event_array_saved_with_h5py_reads_back(tmp_path, order):
    import h5py

    rng = np.random.default_rng(2)
    n = 500
    kinds = {"x": np.int16, "y": np.int16, "t": np.int64, "p": bool}
    ev = np.empty(n, dtype=[(k, kinds[k]) for k in order])
    ev["x"], ev["y"], ev["t"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 2, n)
    with h5py.File(tmp_path / "sample.h5", "w") as f:
        f.create_dataset("events", data=ev)  # the way a user saves tonic's array
        f["events"].attrs["width"], f["events"].attrs["height"] = 34, 34
    rec = io.read_events(tmp_path / "sample.h5")
    want = [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in ev]
    assert rows(rec.events) == want and rec.sensor_size == (34, 34, 2)
    assert rows(np.concatenate(list(io.iter_events(tmp_path / "sample.h5", chunk_size=64)))) == want


def test_a_plain_event_table_in_hdf5_is_refused_naming_the_missing_column_order(tmp_path):
    import h5py

    with h5py.File(tmp_path / "table.h5", "w") as f:
        f.create_dataset("events", data=np.array([[10, 1, 2, 1], [20, 3, 4, 0]]))  # t, x, y, p? x, y, t, p?
    with pytest.raises(TalonError, match=r"table\.h5: /events is a plain int64 array of shape \(2, 4\), which does not say which column is x, y, t or p"):
        io.read_events(tmp_path / "table.h5")


def test_minus_one_plus_one_polarities_are_refused_with_the_mapping(tmp_path):
    import h5py

    with h5py.File(tmp_path / "ncars.h5", "w") as f:
        g = f.create_group("events")
        g["x"], g["y"], g["t"], g["p"] = [1, 2], [3, 4], [10, 20], np.array([-1, 1], np.int8)
    with pytest.raises(TalonError, match=r"polarity 'p' holds values \[-1\].*\(-1/\+1 polarities: p = \(p > 0\)\)"):
        io.read_events(tmp_path / "ncars.h5")


# --- framing against tonic.transforms.ToFrame -----------------------------------------------------------------


def test_tonic_n_time_bins_is_reproduced_by_its_window_and_steps_count_every_event():
    import tonic.transforms as T

    rng = np.random.default_rng(1)
    for _ in range(5):
        n = 500
        ev = io.make_events(x=rng.integers(0, 16, n), y=rng.integers(0, 12, n), t=np.sort(rng.integers(1000, 51_337, n)), p=rng.integers(0, 2, n))
        steps = int(rng.integers(2, 13))
        ref = T.ToFrame(sensor_size=(16, 12, 2), n_time_bins=steps)(ev)
        # tonic's bins are (t_last - t_first) // steps wide: the events after the last bin (the last one at least) are left out
        window = (int(ev["t"][-1]) - int(ev["t"][0])) // steps
        np.testing.assert_array_equal(io.events_to_frames(ev, (16, 12), dt=window, steps=steps), ref)
        assert ref.sum() < n and io.events_to_frames(ev, (16, 12), steps=steps).sum() == n  # talon.io's steps-only bins keep every event


# --- DAT as Prophesee's data sets ship it ---------------------------------------------------------------------


def dat_bytes(events, typ=0x0C, size=8):
    """DAT events: uint32 timestamp, then x (bits 0..13), y (bits 14..27), polarity (bits 28..31)."""
    return bytes([typ, size]) + np.array([(t, x | y << 14 | p << 28) for x, y, t, p in events], dtype=[("t", "<u4"), ("w", "<u4")]).tobytes()


def test_ncars_dat_with_2d_event_type_and_no_size_lines(tmp_path):
    # N-CARS ships DAT files with event type 0x00 and a header of "% Date" and "% Version 2" only
    ev = [(5, 7, 100, 1), (119, 99, 250, 0), (0, 0, 251, 1)]
    path = tmp_path / "obj_004396_td.dat"
    path.write_bytes(b"% Date 2016-11-17 15:39:15\n% Version 2\n" + dat_bytes(ev, typ=0x00))
    rec = io.read_events(path)
    assert rec.format == "dat" and rec.sensor_size is None and rows(rec.events) == ev


def test_a_dat_file_of_trigger_events_is_refused_not_read_as_cd(tmp_path):
    path = tmp_path / "triggers.dat"
    path.write_bytes(b"% Data file containing EXT_TRIGGER events.\n% Version 2\n" + dat_bytes([(1, 0, 10, 1)], typ=0x0E))
    with pytest.raises(TalonError, match=r"triggers\.dat: a DAT file of event type 0x0E with 8-byte events; talon\.io reads DAT files of CD events"):
        io.read_events(path)


def test_a_dvs_gesture_cache_folder_says_to_pass_the_tonic_data_set(tmp_path):
    # tonic.datasets.DVSGesture caches ibmGestureTrain/<user>_<lighting>/<label>.npy: labels are file names
    folder = tmp_path / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    np.save(folder / "0.npy", np.array([[1, 2, 1, 0.5]]))
    with pytest.raises(TalonError, match=r"hold no event files .*\.npy files, as tonic's own data sets cache them .*tonic\.datasets\.DVSGesture"):
        io.EventFolder(tmp_path / "ibmGestureTrain")


@pytest.mark.parametrize("fmt", ["evt2", "evt3"])
def test_raw_recordings_under_any_file_name_read(tmp_path, fmt):
    # EVT2/EVT3 are decoded by talon.io itself: the *.raw rule of expelliarmus no longer applies to reading
    ev = [(3, 4, 10, 1), (600, 400, 9000, 0)]
    words = evt2_words(ev, vendor=False) if fmt == "evt2" else np.array([0x8000, 0x600A, 4, 0x2000 | 1 << 11 | 3, 0x8002, 0x6000 | 9000 & 0xFFF, 400, 0x2000 | 600], "<u2")
    path = tmp_path / "cam0_events"
    path.write_bytes(f"% evt {fmt[-1]}.0\n% end\n".encode() + words.tobytes())
    assert rows(io.read_events(path).events) == ev


def test_tonic_time_window_default_leaves_the_partial_last_bin_out():
    import tonic.transforms as T

    rng = np.random.default_rng(4)
    n = 800
    ev = io.make_events(x=rng.integers(0, 8, n), y=rng.integers(0, 6, n), t=np.sort(rng.integers(0, 95_000, n)), p=rng.integers(0, 2, n))
    ours = io.events_to_frames(ev, (8, 6), dt=10_000)
    ref = T.ToFrame(sensor_size=(8, 6, 2), time_window=10_000)(ev)  # tonic's default: include_incomplete=False
    assert ours.shape[0] == ref.shape[0] + 1 and ours.sum() == n
    np.testing.assert_array_equal(ours[:-1], ref)


def test_an_nmnist_folder_unzipped_on_macos_skips_its_resource_forks(tmp_path):
    # a zip made on macOS unpacks with __MACOSX/ and "._<file>" AppleDouble files next to the recordings
    root = tmp_path / "Train"
    (root / "0").mkdir(parents=True)
    (root / "__MACOSX" / "0").mkdir(parents=True)
    (root / "0" / "00002.bin").write_bytes(atis_bytes([(1, 2, 3, 1)]))
    fork = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 16  # 40 bytes: it would decode to 8 made-up events
    (root / "0" / "._00002.bin").write_bytes(fork)
    (root / "__MACOSX" / "0" / "._00002.bin").write_bytes(fork)
    ds = io.EventFolder(root)
    assert ds.classes == ["0"] and [f.rsplit("/", 1)[1] for f in ds.files] == ["00002.bin"]
    assert rows(ds[0][0]) == [(1, 2, 3, 1)]


def test_one_polarity_frames_equal_tonic_merge_polarities_then_to_frame():
    import tonic.transforms as T

    rng = np.random.default_rng(1)
    n = 500
    ev = io.make_events(x=rng.integers(0, 16, n), y=rng.integers(0, 12, n), t=np.sort(rng.integers(0, 50_000, n)), p=rng.integers(0, 2, n))
    ref = T.ToFrame(sensor_size=(16, 12, 1), time_window=10_000, include_incomplete=True)(T.MergePolarities()(ev))
    np.testing.assert_array_equal(io.events_to_frames(ev, (16, 12), dt=10_000, polarity=False), ref)


# --- numpy .npy, as users save tonic's arrays -----------------------------------------------------------------


def test_a_tonic_array_saved_with_np_save_reads_and_a_plain_table_is_refused(tmp_path):
    # tonic's DVSGesture items have fields x, y, p, t (in that order)
    ev = np.array([(1, 3, False, 5), (2, 4, True, 6), (33, 7, True, 90)], dtype=[("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
    np.save(tmp_path / "sample.npy", ev)
    rec = io.read_events(tmp_path / "sample.npy")
    assert rec.format == "npy" and rows(rec.events) == [(1, 3, 5, 0), (2, 4, 6, 1), (33, 7, 90, 1)]
    assert rows(np.concatenate(list(io.iter_events(tmp_path / "sample.npy", chunk_size=2)))) == rows(rec.events)
    np.save(tmp_path / "0.npy", np.array([[1.0, 3.0, 0.0, 0.005]]))  # DVSGesture's cache: x, y, p, t (ms)
    with pytest.raises(TalonError, match=r"0\.npy: a plain float64 array of shape \(1, 4\), which does not say which column is x, y, t or p.*DVSGesture"):
        io.read_events(tmp_path / "0.npy")


def test_event_utils_xs_ys_ts_ps_layout(tmp_path):
    import h5py

    with h5py.File(tmp_path / "us.h5", "w") as f:
        g = f.create_group("events")
        g["xs"], g["ys"], g["ts"], g["ps"] = [1, 2], [3, 4], np.array([10, 20], np.int64), np.array([0, 1], np.uint8)
    assert rows(io.read_events(tmp_path / "us.h5").events) == [(1, 3, 10, 0), (2, 4, 20, 1)]
    with h5py.File(tmp_path / "sec.h5", "w") as f:  # e2vid writes ts in float seconds
        g = f.create_group("events")
        g["xs"], g["ys"], g["ts"], g["ps"] = [1, 2], [3, 4], np.array([0.0, 1.0]), np.array([0, 1], np.uint8)  # whole seconds: not µs
    with pytest.raises(TalonError, match=r"sec\.h5: /events/ts holds float64 values, the float seconds of event_utils' files"):
        io.read_events(tmp_path / "sec.h5")
