"""EventFolder reads tonic's layout; the synthetic gesture set is deterministic and written as real files."""

import numpy as np
import pytest

from talon import io
from talon.errors import TalonError
from talon.io.synthetic import CLASSES, gesture_events, write_gesture_dataset


def test_folder_in_tonic_layout(tmp_path):
    files = write_gesture_dataset(tmp_path, 2, format="evt3", size=16, duration_us=20_000)
    ds = io.EventFolder(tmp_path)
    assert len(ds) == 8 and ds.targets == [0, 0, 1, 1, 2, 2, 3, 3] and ds.files == sorted(files)
    ev, label = ds[3]
    assert label == 1 and ev.dtype == io.EVENT_DTYPE
    np.testing.assert_array_equal(ev, io.read_events(files[3]).events)
    assert ds.sensor_size == (16, 16, 2)  # talon.io writes the sensor size into the EVT3 header
    assert io.EventFolder(tmp_path, transform=lambda e: e[:5])[0][0].shape == (5,)


def test_named_class_folders_get_sorted_indices(tmp_path, events):
    for name in ("wave", "clap"):
        (tmp_path / name).mkdir()
        io.write_events(tmp_path / name / "a.h5", events, sensor_size=(64, 48))
    ds = io.EventFolder(tmp_path)
    assert ds.classes == ["clap", "wave"] and ds.targets == [0, 1] and ds.class_names == {0: "clap", 1: "wave"}
    assert ds.sensor_size == (64, 48, 2)


def test_folder_errors_say_what_to_do(tmp_path, events):
    with pytest.raises(TalonError, match="no such folder"):
        io.EventFolder(tmp_path / "missing")
    with pytest.raises(TalonError, match="no class folders"):
        io.EventFolder(tmp_path)
    io.write_events(tmp_path / "loose.h5", events)
    with pytest.raises(TalonError, match=r"sit directly in the data-set folder; put each in the folder of its class"):
        io.EventFolder(tmp_path)
    (tmp_path / "loose.h5").unlink()
    (tmp_path / "0").mkdir()
    with pytest.raises(TalonError, match="hold no event files"):
        io.EventFolder(tmp_path)


def test_synthetic_gestures_are_deterministic_and_distinct():
    a, b = gesture_events(0, seed=4), gesture_events(0, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a["t"]) >= 0) and a["p"].any() and (~a["p"]).any()
    frames = {c: io.events_to_frames(gesture_events(c, size=16, seed=1), (16, 16), dt=10_000, steps=10, t0=0) for c in range(len(CLASSES))}
    # a bar moving right lights columns left to right over time; one moving left the other way
    cols = lambda f: (f.sum(axis=(1, 2)) * np.arange(16)).sum(axis=1) / np.maximum(f.sum(axis=(1, 2, 3)), 1)  # noqa: E731
    assert cols(frames[0])[-1] > cols(frames[0])[1] and cols(frames[1])[-1] < cols(frames[1])[1]
    with pytest.raises(TalonError, match="no gesture class 7"):
        gesture_events(7)


@pytest.mark.parametrize("names, match", [(("1", "01"), r"\['01', '1'\] name the same class number"), (("²",), None)])
def test_class_folder_names_that_are_not_plain_numbers(tmp_path, names, match):
    from io_events import random_events

    for name in names:
        (tmp_path / name).mkdir()
        io.write_events(tmp_path / name / "a.h5", random_events(20))
    if match:
        with pytest.raises(TalonError, match=match):
            io.EventFolder(tmp_path)
    else:  # not an ASCII number: labelled by its index, as any other name
        assert io.EventFolder(tmp_path).targets == [0]
