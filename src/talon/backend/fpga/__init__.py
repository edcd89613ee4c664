"""The `fpga` backend: an HLS C++ project from the quantised graph, proven bit-exact by C simulation.

    fpga = get_backend("fpga")
    prj = fpga.compile(graph, "out/prj", part="zynq7020")       # or "zu9eg"
    res = fpga.csim(prj, inputs, n_steps=100)                     # g++ + the generated testbench
    rep = fpga.verify(graph, inputs, n_steps=100)                 # == cpu simulate(mode="fixed")?

docs/fpga.md describes the project, the kernels, the estimates and their model.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.backend.base import Backend, Capabilities, load_graph
from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.csim import CSimResult, find_ap_types, find_compiler, run_csim
from talon.backend.fpga.estimate import Estimates, estimate_descriptor
from talon.backend.fpga.hls import MANIFEST, SUPPORTED, FPGAProject, generate
from talon.backend.fpga.parts import PARTS, PartPreset, resolve_part
from talon.backend.fpga.plan_options import check_no_plan_options
from talon.errors import BackendError
from talon.ir import spike_inputs

__all__ = [
    "CSimResult", "Estimates", "FPGABackend", "FPGAProject", "PARTS", "PartPreset", "VerifyResult",
    "find_ap_types", "find_compiler", "ir_to_hls4ml_config", "ir_to_torch_ann",
]  # fmt: skip


def ir_to_hls4ml_config(*args: Any, **kw: Any) -> Any:
    """See talon.backend.fpga.hls4ml_config.ir_to_hls4ml_config."""
    from talon.backend.fpga.hls4ml_config import ir_to_hls4ml_config as f

    return f(*args, **kw)


def ir_to_torch_ann(*args: Any, **kw: Any) -> Any:
    """See talon.backend.fpga.hls4ml_config.ir_to_torch_ann."""
    from talon.backend.fpga.hls4ml_config import ir_to_torch_ann as f

    return f(*args, **kw)


@dataclass
class VerifyResult:
    """Comparison of the C simulation with `get_backend("cpu").simulate(..., mode="fixed")`.
    ok: every compared tensor is bit-identical; mismatches[kind/name]: positions that differ."""

    ok: bool
    n_steps: int
    batch_size: int
    compared: list[str]
    mismatches: dict[str, int]
    csim: CSimResult = field(repr=False)
    simulation: Any = field(repr=False)
    project: str = ""

    def summary(self) -> str:
        head = f"fpga verify: {'BIT-EXACT' if self.ok else 'MISMATCH'} over {self.n_steps} steps x {self.batch_size} samples, {len(self.compared)} tensors"
        lines = [head] + [f"  {k}: {v} positions differ" for k, v in self.mismatches.items() if v]
        return "\n".join(lines)

    __str__ = summary


def _is_project_dir(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) and os.path.isfile(os.path.join(os.fspath(x), MANIFEST))


class FPGABackend(Backend):
    """HLS C++ project generation, g++ C simulation and bit-exact verification (docs/fpga.md)."""

    name = "fpga"
    capabilities = Capabilities(
        simulate=False,
        compile=True,
        modes=("fixed",),
        hardware=False,
        primitives=frozenset(SUPPORTED),
        description="Vitis/Vivado HLS C++ project from the quantised graph; g++ C simulation bit-exact with cpu mode='fixed'",
    )

    def descriptor(self, graph: Any, *, fixed_config: Any = None, calibration_inputs: Any = None, n_steps: int | None = None,
                   calibration: Any = None) -> HardwareDescriptor:  # fmt: skip
        """The hardware descriptor the project is generated from (cpu backend's `compile`, which takes a
        kept `calibration` from `get_backend("cpu").calibrate` in place of a calibration run)."""
        if isinstance(graph, HardwareDescriptor):
            check_no_plan_options(fixed_config=fixed_config, calibration_inputs=calibration_inputs, n_steps=n_steps, calibration=calibration)
            return graph
        from talon.backend.registry import get_backend

        return get_backend("cpu").compile(load_graph(graph), fixed_config=fixed_config, calibration_inputs=calibration_inputs,
                                          n_steps=n_steps, calibration=calibration)  # fmt: skip

    def compile(
        self,
        graph: Any,
        out_dir: str | os.PathLike | None = None,
        part: str | PartPreset | None = "zynq7020",
        *,
        top: str = "talon_top",
        reuse_factor: int | str = "auto",
        clock_mhz: float | None = None,
        fixed_config: Any = None,
        calibration_inputs: Any = None,
        n_steps: int | None = None,
        calibration: Any = None,
    ) -> FPGAProject:
        """Write the HLS project of `graph` (Graph, .t1c path or HardwareDescriptor) into `out_dir`.

        The graph is quantised by the cpu backend's plan (docs/fixed_point.md section 5), calibrated on
        `calibration_inputs` (default: the default stimulus) for `n_steps` steps, or on a kept
        `calibration` (`get_backend("cpu").calibrate(graph, data)`: no calibration run, the same project
        as calibrating on that data here). part: "zynq7020" (default), "zu9eg" or a part string of either."""
        if out_dir is None:
            raise BackendError("fpga compile needs out_dir (the folder to write the HLS project into)")
        desc = self.descriptor(graph, fixed_config=fixed_config, calibration_inputs=calibration_inputs, n_steps=n_steps, calibration=calibration)
        return generate(desc, out_dir, part=part, top=top, reuse_factor=reuse_factor, clock_mhz=clock_mhz)

    def estimate(self, graph: Any, part: str | PartPreset | None = "zynq7020", *, reuse_factor: int | str = "auto",
                 clock_mhz: float | None = None, **kw: Any) -> Estimates:  # fmt: skip
        """Latency and resource ESTIMATES (model in docs/fpga.md) without writing a project."""
        if isinstance(graph, FPGAProject):
            return graph.estimates
        return estimate_descriptor(self.descriptor(graph, **kw), resolve_part(part), reuse_factor=reuse_factor, clock_mhz=clock_mhz)

    def csim(
        self,
        project_or_graph: Any,
        inputs: Any = None,
        n_steps: int | None = None,
        *,
        use_ap_types: bool | str = "auto",
        fixed_config: Any = None,
        work_dir: str | os.PathLike | None = None,
        part: str | PartPreset | None = "zynq7020",
        calibration: Any = None,
    ) -> CSimResult:
        """Compile the project's C++ with g++ and run its testbench on `inputs` (see
        talon.backend.stimulus; default: the default stimulus) for `n_steps` steps.

        project_or_graph: an FPGAProject, a project folder, or a Graph/.t1c path/HardwareDescriptor (then a
        project calibrated on these inputs, or on a kept `calibration`, is generated in `work_dir`,
        default a temporary folder).
        use_ap_types: "auto" (use the ap_types headers when found), True (require them), False."""
        if isinstance(project_or_graph, FPGAProject):
            path = project_or_graph.path
        elif _is_project_dir(project_or_graph):
            path = os.fspath(project_or_graph)
        else:
            path = None
        if path is not None:
            check_no_plan_options(fixed_config=fixed_config, calibration=calibration)
            import json

            with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
                ports = json.load(f)["inputs"]
            shapes = {p["name"]: tuple(p["shape"]) for p in ports}
            seqs, T = _sequences(inputs, shapes, n_steps)
            return run_csim(path, seqs, T, use_ap_types=use_ap_types)
        if isinstance(project_or_graph, HardwareDescriptor):  # already planned: the inputs are only run
            desc = self.descriptor(project_or_graph, fixed_config=fixed_config, calibration=calibration)
        elif calibration is not None:  # the kept calibration's plan; the inputs are only run
            desc = self.descriptor(project_or_graph, fixed_config=fixed_config, calibration=calibration)
        else:
            desc = self.descriptor(project_or_graph, fixed_config=fixed_config, calibration_inputs=inputs, n_steps=n_steps)
        shapes = {n["name"]: tuple(n["output_shape"]) for n in desc.meta["nodes"] if n["type"] == "Input"}
        spiking = [n["name"] for n in desc.meta["nodes"] if n["type"] == "Input" and n["params"].get("spikes")]
        seqs, T = _sequences(inputs, shapes, n_steps, spiking)
        if work_dir is not None:
            prj = generate(desc, work_dir, part=part)
            return run_csim(prj.path, seqs, T, use_ap_types=use_ap_types)
        with tempfile.TemporaryDirectory(prefix="talon-fpga-") as tmp:
            prj = generate(desc, tmp, part=part)
            return run_csim(prj.path, seqs, T, use_ap_types=use_ap_types)

    def verify(
        self,
        graph: Any,
        inputs: Any = None,
        n_steps: int | None = None,
        *,
        fixed_config: Any = None,
        use_ap_types: bool | str = "auto",
        work_dir: str | os.PathLike | None = None,
        part: str | PartPreset | None = "zynq7020",
        calibration: Any = None,
    ) -> VerifyResult:
        """Run `graph` (n_steps: default the length of a (T, B, ...) input sequence, else 100) with `get_backend("cpu").simulate(..., mode="fixed", record=True)` and with the C
        simulation of the project generated from that same plan; compare every spike, membrane and output
        bit for bit. `calibration`: a kept Calibration for both (see `compile`)."""
        from talon.backend.compile import build_descriptor
        from talon.backend.registry import get_backend

        g = load_graph(graph)
        shapes = {n: tuple(g.nodes[n].shape) for n in g.input_names}
        if n_steps is None:  # the length of a sequence input, else 100
            n_steps = None if _sequences_len(inputs, shapes) else 100
        sim = get_backend("cpu").simulate(g, inputs, n_steps, mode="fixed", record=True, fixed_config=fixed_config, compare=False,
                                        calibration=calibration)  # fmt: skip
        desc = build_descriptor(g, sim.fixed_point)
        seqs, T = _sequences(inputs, shapes, sim.timesteps_run, spike_inputs(g))

        def run(folder: str) -> CSimResult:
            prj = generate(desc, folder, part=part)
            return run_csim(prj.path, seqs, T, use_ap_types=use_ap_types)

        if work_dir is not None:
            cs = run(os.fspath(work_dir))
        else:
            with tempfile.TemporaryDirectory(prefix="talon-fpga-") as tmp:
                cs = run(tmp)
        mism: dict[str, int] = {}
        compared = []
        pairs = [("spikes", sim.spikes), ("membranes", sim.membranes), ("outputs", sim.outputs)]
        for kind, ref in pairs:
            for name, want in ref.items():
                key = f"{kind}/{name}"
                if name not in getattr(cs, kind):
                    mism[key] = -1
                    continue
                got = cs.value(kind, name)
                w = want.detach().cpu().numpy().astype(np.float64) if hasattr(want, "detach") else np.asarray(want, np.float64)
                compared.append(key)
                mism[key] = int(np.count_nonzero(got != w)) if got.shape == w.shape else -1
        # taps the simulator did not record are still reported (not compared)
        ok = bool(compared) and all(v == 0 for v in mism.values())
        return VerifyResult(ok, cs.n_steps, cs.batch_size, compared, mism, cs, sim, cs.project if work_dir is not None else "")


def _sequences(inputs: Any, shapes: dict[str, tuple[int, ...]], n_steps: int | None, spiking: Any = ()) -> tuple[dict[str, np.ndarray], int]:
    """{input: float64 (T, B, *S)} from anything `simulate` accepts, materialised step by step (`spiking`:
    the Inputs that declare spikes, whose default stimulus is rate-coded as in `simulate`)."""
    from talon.backend.stimulus import make_stimulus

    stim = make_stimulus(inputs, shapes, n_steps, spike_inputs=spiking)
    out = {}
    for name in shapes:
        x = stim.sequence(name)
        out[name] = x.detach().cpu().numpy().astype(np.float64) if hasattr(x, "detach") else np.asarray(x, np.float64)
    return out, stim.n_steps


def _sequences_len(inputs: Any, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether `inputs` holds a (T, B, *S) sequence (so that its length sets the number of steps)."""
    from talon.backend.stimulus import make_stimulus

    if inputs is None:
        return False
    return bool(make_stimulus(inputs, shapes, None).sequences)
