"""talon.io: event-camera files, spike encoders and framing (layer 1: numpy, h5py, aedat, expelliarmus;
tonic and torch are never imported here).

    from talon import io
    rec = io.read_events("recording.raw")             # EVT2/EVT3/DAT (expelliarmus), AEDAT4 (aedat), event HDF5
    for chunk in io.iter_events("big.h5", chunk_size=1_000_000): ...   # larger than memory
    frames = io.events_to_frames(rec.events, (32, 32, 2), dt=1000)     # (T, 2, H, W) per 1 ms
    spikes = io.rate_encode(image, steps=25)                           # (T, *shape)

Events are tonic's structured array (talon.io.EVENT_DTYPE), so tonic's transforms apply to them. docs/io.md.
"""

from talon.io.datasets import EventFolder
from talon.io.encoders import ENCODINGS, delta_encode, encode, events_to_frames, latency_encode, rate_encode
from talon.io.events import EVENT_DTYPE, EventRecording, as_events, make_events
from talon.io.files import FORMATS, WRITABLE, detect_format, iter_events, read_events, sensor_size, write_events

__all__ = [
    "ENCODINGS",
    "EVENT_DTYPE",
    "EventFolder",
    "EventRecording",
    "FORMATS",
    "WRITABLE",
    "as_events",
    "delta_encode",
    "detect_format",
    "encode",
    "events_to_frames",
    "iter_events",
    "latency_encode",
    "make_events",
    "rate_encode",
    "read_events",
    "sensor_size",
    "write_events",
]
