"""A fresh process that writes .t1c files, for the reproducibility tests (tests/ir/test_reproducible.py).

    python tests/ir/_write_worker.py OUT_DIR CASE [CASE ...]   writes OUT_DIR/CASE.t1c for each named case
    python tests/ir/_write_worker.py OUT_DIR --pickles DIR     writes OUT_DIR/X.t1c for each DIR/X.pkl graph
    python tests/ir/_write_worker.py OUT_DIR CASE ... --pickles DIR   both, in one process

Each run also writes OUT_DIR/control.h5, a group with timestamps on: the control that
shows the runs were far enough apart for HDF5's one-second clock to tell them apart.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared graph builders

from tutorial_graphs import affine, build_hybrid, lif  # noqa: E402

from talon import ir  # noqa: E402


def simple_snn(seed: int = 0) -> ir.Graph:
    """The tutorial's SimpleSNN (784-128-10, snn.Leaky(beta=0.9)) as the exporter produces it."""
    rng = np.random.default_rng(seed)
    nodes = {"input": ir.Input(shape=(784,)), "fc1": affine(128, 784, rng), "lif1": lif(128),
             "fc2": affine(10, 128, rng), "lif2": lif(10), "output": ir.Output()}
    g = ir.Graph(nodes, metadata={"exporter": "talon.bridge.to_ir", "num_steps": 25,
                                  "training": {"epochs": 3, "loss": [0.9, 0.5, 0.25], "notes": None, "tags": ("mnist", "lif")}})
    g.chain(*nodes)
    return g


def fixed_point() -> ir.Graph:
    """The pipeline's hardware graph: SpikingAffine layers with 8-bit power-of-two weights, stored as integers."""
    from talon.sdk import convert_to_spiking, quantize_weights

    return quantize_weights(convert_to_spiking(build_hybrid(), 8), 8, power_of_two=True)


def composite() -> ir.Graph:
    """A nested graph (a composite block), a recurrent loop (allow_cycles) and the SDK's optional graph fields."""
    rng = np.random.default_rng(2)
    g = ir.Graph({"input": ir.Input(shape=(784,)), "block": simple_snn(1), "rec": affine(10, 10, rng), "lif": lif(10), "output": ir.Output()},
                 extras={"quantization_config": {"bits": 8, "per_channel": 0}, "target_hardware": "loihi-like"})
    g.chain("input", "block", "lif", "output")
    g.add_edge("lif", "rec")
    g.add_edge("rec", "lif")  # recurrent: the loop is carried by the LIF
    return g


CASES = {"hybrid": build_hybrid, "simple_snn": simple_snn, "fixed_point": fixed_point, "composite": composite}


def main(argv: list[str]) -> None:
    out, args = Path(argv[0]), argv[1:]
    pickles = None
    if "--pickles" in args:
        at = args.index("--pickles")
        pickles, args = Path(args[at + 1]), args[:at] + args[at + 2:]
    for name in args:
        ir.write(out / f"{name}.t1c", CASES[name]())
    for pkl in sorted(pickles.glob("*.pkl")) if pickles is not None else ():
        ir.write(out / f"{pkl.stem}.t1c", pickle.loads(pkl.read_bytes()))
    write_control(out / "control.h5")


def write_control(path: Path) -> None:
    """A file whose group carries HDF5 timestamps (v2 object headers, as .t1c files have)."""
    with h5py.File(path, "w", libver="latest") as f:
        f.create_group("g", track_times=True)


if __name__ == "__main__":
    main(sys.argv[1:])
