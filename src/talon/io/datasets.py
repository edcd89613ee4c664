"""A labelled folder of event files in tonic's data-set layout: ROOT/<class>/<file>.

As tonic's own data sets (NMNIST's Train/<digit>/, N-Caltech101's <category>/) lay them out: one
sub-folder per class, holding that class's recordings, walked in sorted order. Labels are the folder
names when every name is a whole number (NMNIST's "0".."9"), else the index of the name among the sorted
names (`classes` keeps the names); hidden entries and macOS archive leftovers (`__MACOSX/`, `._*`) are
neither. Items are (events, label) like a tonic data set's, with the
optional `transform` (any tonic transform, or a function of the event array) applied to the events.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from talon.errors import TalonError
from talon.io.files import EVENT_SUFFIXES, read_events, sensor_size


class EventFolder:
    """Event files under `root`, labelled by their class folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, transform: Callable | None = None, *, format: str | None = None):
        self.root = os.fspath(root)
        self.transform = transform
        self.format = format
        if not os.path.isdir(self.root):
            raise TalonError(f"{self.root}: no such folder; an event data set is a folder ROOT/<class>/<file> (docs/io.md)")
        entries = sorted(os.listdir(self.root))
        stray = [e for e in entries if os.path.isfile(os.path.join(self.root, e)) and e.lower().endswith(EVENT_SUFFIXES)]
        if stray:
            raise TalonError(
                f"{self.root}: event files {stray[:3]} sit directly in the data-set folder; put each in the folder of its class "
                f"(ROOT/<class>/<file>, tonic's layout) so it has a label"
            )
        self.classes = [e for e in entries if os.path.isdir(os.path.join(self.root, e)) and not _hidden(e)]
        if not self.classes:
            raise TalonError(f"{self.root}: no class folders; an event data set is a folder ROOT/<class>/<file> (docs/io.md)")
        numeric = all(c.isascii() and c.isdigit() for c in self.classes)
        if numeric and len({int(c) for c in self.classes}) < len(self.classes):
            same = sorted((c for c in self.classes if sum(int(d) == int(c) for d in self.classes) > 1), key=int)
            raise TalonError(f"{self.root}: the class folders {same} name the same class number; merge them or rename one")
        self.files: list[str] = []
        self.targets: list[int] = []
        for index, name in enumerate(self.classes):
            label = int(name) if numeric else index
            for path, dirs, files in os.walk(os.path.join(self.root, name)):
                dirs[:] = sorted(d for d in dirs if not _hidden(d))
                for f in sorted(f for f in files if not _hidden(f)):
                    if f.lower().endswith(EVENT_SUFFIXES):
                        self.files.append(os.path.join(path, f))
                        self.targets.append(label)
        if not self.files:
            raise TalonError(f"{self.root}: the class folders {self.classes[:5]} hold no event files ({', '.join(EVENT_SUFFIXES)}){_npy_hint(self.root)}")
        self.class_names = {(int(c) if numeric else i): c for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        events = read_events(self.files[index], format=self.format).events
        if self.transform is not None:
            events = self.transform(events)
        return events, self.targets[index]

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        """The sensor size the first file states (None when it states none)."""
        return sensor_size(self.files[0], format=self.format)

    def __repr__(self) -> str:
        counts = np.bincount(np.asarray(self.targets) - min(self.targets)).tolist()
        return f"EventFolder({self.root!r}, {len(self)} files, classes {self.classes}, per class {counts})"


def _npy_hint(root: str) -> str:
    """tonic's DVSGesture cache (<user_lighting>/<label>.npy: the label is the file name, not the folder)."""
    for _, _, files in os.walk(root):
        if any(f.endswith(".npy") for f in files):
            return ("; it holds .npy files, as tonic's own data sets cache them (DVSGesture: <user>/<label>.npy): pass the tonic data set "
                    "itself (tonic.datasets.DVSGesture(save_to, train=...)) as the data, or write each recording to its class folder "
                    "with talon.io.write_events")
    return ""


def _hidden(name: str) -> bool:
    """Not a recording nor a class: hidden entries, and what macOS adds to archives it makes (__MACOSX/,
    "._<name>" resource forks, which carry a recording's suffix but hold no events)."""
    return name.startswith(".") or name == "__MACOSX"

