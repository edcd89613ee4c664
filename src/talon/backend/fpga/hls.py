"""Generate a Vitis/Vivado HLS C++ project from a HardwareDescriptor (docs/fpga.md).

Everything is derived from the descriptor's integers and formats (the quantised graph), never from a
torch model. Output is deterministic: the same descriptor and options give byte-identical files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga import kernels as K
from talon.backend.fpga.cgen import partition_pragmas, size
from talon.backend.fpga.emitters import NodeCode, ProjectCode, emitter_for, emitter_types
from talon.backend.fpga.estimate import estimate_descriptor
from talon.backend.fpga.names import c_identifiers, c_string
from talon.backend.fpga.parts import PartPreset, resolve_part
from talon.errors import BackendError
from talon.ir._atomic import atomic_write_bytes

__all__ = ["FPGAProject", "MANIFEST", "PROJECT_VERSION", "SUPPORTED", "generate", "partition_pragmas"]

PROJECT_VERSION = 1
MANIFEST = "talon_project.json"
#: the built-in primitive types (one emitter each, talon.backend.fpga.emitters); users add theirs there
SUPPORTED = emitter_types()
#: `static` array declarations in generated code: name and dimensions (what the partition pragmas apply to)
_DECL = re.compile(r"static (?:const )?\w+ (\w+)((?:\[\d+\])+)")


@dataclass
class FPGAProject:
    """A generated HLS project: its folder, the files written (relative paths, sorted), the manifest
    (ports, formats, part, estimates) and the estimates."""

    path: str
    files: list[str]
    manifest: dict[str, Any]
    estimates: Any = None
    descriptor: HardwareDescriptor | None = field(default=None, repr=False)

    @property
    def top(self) -> str:
        return self.manifest["top"]

    def __str__(self) -> str:
        return f"HLS project {self.path} ({len(self.files)} files, top {self.top}, part {self.manifest['part']['part']})"


def generate(desc: HardwareDescriptor, out_dir: str | os.PathLike, *, part: str | PartPreset | None = None, top: str = "talon_top",
             reuse_factor: int | str = "auto", clock_mhz: float | None = None) -> FPGAProject:  # fmt: skip
    """Write the HLS project for `desc` into `out_dir` (created if needed) and return it."""
    preset = resolve_part(part)
    if not (isinstance(top, str) and top.isidentifier() and top.isascii()):
        raise BackendError(f"top function name must be a C identifier, got {top!r}")
    clock = float(clock_mhz) if clock_mhz is not None else preset.clock_mhz
    nodes = desc.nodes
    order = desc.layer_order
    emitters = {n: emitter_for(nodes[n]["type"], n) for n in order}  # every node's, before anything is written
    ids = c_identifiers(order)
    est = estimate_descriptor(desc, preset, reuse_factor=reuse_factor, clock_mhz=clock)
    # The kernels run the estimate's lanes (UNROLL factor); a buffer is partitioned for the widest of its
    # writer and its readers.
    lanes = {x.name: x.lanes for x in est.layers}
    buf_lanes = dict(lanes)
    for n in order:
        for p in nodes[n]["inputs"]:
            buf_lanes[p] = max(buf_lanes[p], lanes[n])

    files: dict[str, str] = {}
    weights_files: list[str] = []
    body: list[str] = []
    state_decl: list[str] = []
    reset_lines: list[str] = []
    prev_bufs: dict[str, int] = {}  # recurrent-loop sources read one step late: name -> elements
    project = ProjectCode()

    # Which output of its source each edge carries (the IR's Graph.edge_output_index rule): a node fed by
    # output k of a multi-output node (ChannelSplit's chunk k) reads that output's buffer b_s<k>_<id>
    # ("b_s..." never equals "b_n_...").
    seen: dict[str, int] = {}
    edge_src: dict[str, list[str]] = {n: [] for n in order}
    for s_, d_ in desc.meta["edges"]:
        k_ = seen.get(s_, 0)
        seen[s_] = k_ + 1
        if d_ in edge_src:
            edge_src[d_].append(f"s{k_}_{ids[s_]}" if emitters[s_].multi_output else ids[s_])

    for n in order:
        nd, em = nodes[n], emitters[n]
        t, kind, i = nd["type"], nd["kind"], ids[n]
        shape = tuple(nd["output_shape"] or ())
        N = size(shape)
        ob, of = nd["out_format"]
        # An input on a recurrent loop's delayed edge reads b_p_<src>: the source's output of the previous
        # step (docs/fixed_point.md section 3, "Recurrent loops"), copied at the end of each step and
        # cleared on reset. "b_p_..." never equals a node buffer "b_n_...".
        late = set(nd.get("delayed_inputs", []))
        ins = [("p_" if k in late else "") + src for k, src in enumerate(edge_src[n])]
        for k in sorted(late):
            src = nd["inputs"][k]
            if src not in prev_bufs:
                prev_bufs[src] = size(nodes[src]["output_shape"])
                pi, pn = ids[src], prev_bufs[src]
                state_decl.append(f"    static int64_t b_p_{pi}[{pn}];  // output of {c_string(src)} at the previous step (recurrent loop)")
                reset_lines.append(f"        for (int k = 0; k < {pn}; ++k) b_p_{pi}[k] = 0;")
                body.extend(partition_pragmas(f"b_p_{pi}", (pn,), buf_lanes[src]))  # banked like b_<src>
        in_shapes = [tuple(s) for s in nd["input_shapes"]]
        code = NodeCode(desc, n, i, [f"b_{x}" for x in ins], lanes[n], project)
        shape_note = f"chunks of {list(in_shapes[0])}" if em.multi_output else f"shape {list(shape)}"  # output_shape is output 0's
        code.body.append(f"    // {c_string(n)}: {t} ({kind}), out Q{ob}.{of}, {shape_note}, {lanes[n]} lanes")
        if not em.multi_output:  # a multi-output node writes one buffer per output instead
            code.body.append(f"    static int64_t {code.buf}[{N}];")
        em.emit(code)
        body.extend(code.body)
        state_decl.extend(code.state)
        reset_lines.extend(code.reset)
        # Partition every array this node declared (buffer, constants, state) for the lanes of its kernels.
        for decl in code.consts + code.body + code.state:
            for var, dims in _DECL.findall(decl):
                shp = tuple(int(x) for x in re.findall(r"\d+", dims))
                body.extend(partition_pragmas(var, shp, buf_lanes[n] if var == code.buf or var.startswith("b_s") else lanes[n]))
        if code.consts:
            rel = f"firmware/weights/{i}.h"
            guard = f"TALON_W_{i.upper()}_H"
            files[rel] = (f"// Constants of node {c_string(n)} ({t}): integers of the quantised graph. Generated by TALON; do not edit.\n"
                          f"#ifndef {guard}\n#define {guard}\n#include <stdint.h>\n\n" + "\n".join(code.consts) + "\n#endif\n")  # fmt: skip
            weights_files.append(rel)
    typedefs, used_kernels = project.typedefs, list(project.kernels)
    ports_in, ports_out, taps_spk, taps_mem = project.ports_in, project.ports_out, project.taps_spk, project.taps_mem

    for src, pn in prev_bufs.items():  # after every node ran: what the loops read at the next step
        body.append(f"    for (int k = 0; k < {pn}; ++k) b_p_{ids[src]}[k] = b_{ids[src]}[k];")
    for p in ports_out:
        body.append(f"    for (int k = 0; k < {size(p['shape'])}; ++k) {p['port']}[k] = {p['buffer']}[k];")
    for p in taps_spk + taps_mem:
        body.append(f"    for (int k = 0; k < {size(p['shape'])}; ++k) {p['port']}[k] = {p['buffer']}[k];")

    params = [f"const {p['type']} {p['port']}[{size(p['shape'])}]" for p in ports_in]
    params += [f"{p['type']} {p['port']}[{size(p['shape'])}]" for p in ports_out + taps_spk + taps_mem]
    params.append("bool reset")
    signature = f"void {top}(\n    " + ",\n    ".join(params) + ")"

    files["firmware/talon_fixed.h"] = K.fixed_header(desc.meta.get("fixed_point_version"))
    files["firmware/talon_types.h"] = K.types_header("\n".join(typedefs) + "\n#ifdef TALON_USE_AP_TYPES\n#define TALON_TO_I64(x) ((int64_t)(x).to_int64())\n#else\n#define TALON_TO_I64(x) ((int64_t)(x))\n#endif")
    for k in used_kernels:
        files[f"firmware/kernels/{k}.h"] = K.kernel_header(k, project.kernels[k])
    files[f"firmware/{top}.h"] = (f"// Top function: advances the network by one timestep. Generated by TALON; do not edit.\n"
                                  f"#ifndef TALON_TOP_H\n#define TALON_TOP_H\n#include <stdint.h>\n#include \"talon_types.h\"\n\n{signature};\n\n#endif\n")  # fmt: skip
    pragmas = ["#pragma HLS INTERFACE s_axilite port=return"]
    pragmas += [f"#pragma HLS INTERFACE bram port={p['port']}" for p in ports_in + ports_out + taps_spk + taps_mem]
    pragmas.append("#pragma HLS INTERFACE s_axilite port=reset")
    top_src = [
        f"// {top}: one timestep of the quantised graph (fixed-point version {desc.meta.get('fixed_point_version')}).",
        "// reset=true clears all state (membranes, currents, recurrent values) before the step (a new sample).",
        "// Generated by TALON; do not edit.",
        f'#include "{top}.h"',
        '#include "talon_fixed.h"',
        *[f'#include "kernels/{k}.h"' for k in used_kernels],
        *[f'#include "{w[len("firmware/"):]}"' for w in weights_files],
        "",
        signature + " {",
        *pragmas,
        *state_decl,
        "    if (reset) {",
        *reset_lines,
        "    }",
        *body,
        "}",
        "",
    ]
    files[f"firmware/{top}.cpp"] = "\n".join(top_src)
    files["tb/talon_tb.cpp"] = _testbench(top, ports_in, ports_out, taps_spk, taps_mem)
    manifest = {
        "format": "talon-hls-project",
        "project_version": PROJECT_VERSION,
        "top": top,
        "part": preset.to_dict(),
        "clock_mhz": clock,
        "fixed_point_version": desc.meta.get("fixed_point_version"),
        "talon_version": desc.meta.get("talon_version"),
        "layer_order": order,
        "identifiers": ids,
        "inputs": ports_in,
        "outputs": ports_out,
        "spikes": taps_spk,
        "membranes": taps_mem,
        "estimates": est.to_dict(),
    }
    files[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    files["descriptor.json"] = desc.to_json() + "\n"
    files["estimates.md"] = est.to_markdown()
    files["build_prj.tcl"] = _tcl(top, preset, clock, sorted(f for f in files if f.startswith("firmware/") and f.endswith(".cpp")))
    files["README.md"] = _readme(top, preset, clock, manifest, est)

    out = os.path.abspath(os.fspath(out_dir))
    for sub in ("kernels", "weights"):  # headers left over from an earlier graph in the same folder
        folder = os.path.join(out, "firmware", sub)
        if os.path.isdir(folder):
            for nm in sorted(os.listdir(folder)):
                if nm.endswith(".h") and f"firmware/{sub}/{nm}" not in files:
                    os.unlink(os.path.join(folder, nm))
    for rel in sorted(files):
        path = os.path.join(out, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = files[rel].encode("utf-8")
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            pass
        atomic_write_bytes(path, data)
    return FPGAProject(out, sorted(files), manifest, est, desc)


def _testbench(top: str, ins, outs, spk, mem) -> str:
    L = [
        f"// C testbench of {top}: reads float64 inputs, quantises them (docs/fixed_point.md, Input), runs T steps",
        "// per sample (reset at t = 0) and writes every output, spike and membrane tap as int64 (T, B, N) files.",
        "// usage: talon_tb DATA_DIR T B   (DATA_DIR/in_<id>.bin: float64 (T, B, *shape), little-endian)",
        "// Generated by TALON; do not edit.",
        "#include <cstdio>\n#include <cstdlib>\n#include <string>\n#include <vector>",
        f'#include "{top}.h"\n#include "talon_fixed.h"\n',
        "static bool read_all(const std::string& path, void* data, size_t bytes) {",
        '    FILE* f = std::fopen(path.c_str(), "rb");',
        "    if (!f) return false;",
        "    size_t got = std::fread(data, 1, bytes, f);",
        "    std::fclose(f);",
        "    return got == bytes;",
        "}",
        "static bool write_all(const std::string& path, const void* data, size_t bytes) {",
        '    FILE* f = std::fopen(path.c_str(), "wb");',
        "    if (!f) return false;",
        "    size_t put = std::fwrite(data, 1, bytes, f);",
        "    return std::fclose(f) == 0 && put == bytes;",
        "}",
        "",
        "int main(int argc, char** argv) {",
        '    if (argc != 4) { std::fprintf(stderr, "usage: %s DATA_DIR T B\\n", argv[0]); return 2; }',
        "    const std::string dir = argv[1];",
        "    const long T = std::atol(argv[2]), B = std::atol(argv[3]);",
        '    if (T < 1 || B < 1) { std::fprintf(stderr, "T and B must be positive\\n"); return 2; }',
    ]
    for p in ins:
        n = size(p["shape"])
        L.append(f"    std::vector<double> x_{p['ident']}((size_t)(T * B * {n}));")
        L.append(f'    if (!read_all(dir + "/{p["port"]}.bin", x_{p["ident"]}.data(), x_{p["ident"]}.size() * sizeof(double))) {{ std::fprintf(stderr, "cannot read {p["port"]}.bin\\n"); return 1; }}')
        L.append(f"    static {p['type']} {p['port']}[{n}];")
    for p in outs + spk + mem:
        n = size(p["shape"])
        L.append(f"    std::vector<long long> r_{p['port']}((size_t)(T * B * {n}));")
        L.append(f"    static {p['type']} {p['port']}[{n}];")
    L.append("    for (long b = 0; b < B; ++b) {")
    L.append("        for (long t = 0; t < T; ++t) {")
    for p in ins:
        n = size(p["shape"])
        bits, frac = p["format"]
        L.append(f"            for (int k = 0; k < {n}; ++k) {p['port']}[k] = talon::quantize_input(x_{p['ident']}[(size_t)((t * B + b) * {n} + k)], {bits}, {frac});")
    args = [p["port"] for p in ins + outs + spk + mem] + ["t == 0"]
    L.append(f"            {top}({', '.join(args)});")
    for p in outs + spk + mem:
        n = size(p["shape"])
        L.append(f"            for (int k = 0; k < {n}; ++k) r_{p['port']}[(size_t)((t * B + b) * {n} + k)] = (long long)TALON_TO_I64({p['port']}[k]);")
    L.append("        }")
    L.append("    }")
    for p in outs + spk + mem:
        L.append(f'    if (!write_all(dir + "/{p["port"]}.out.bin", r_{p["port"]}.data(), r_{p["port"]}.size() * sizeof(long long))) return 1;')
    L.append('    std::printf("talon_tb: %ld steps x %ld samples done\\n", T, B);')
    L.append("    return 0;")
    L.append("}")
    return "\n".join(L) + "\n"


def _tcl(top: str, preset: PartPreset, clock: float, cpp_files: list[str]) -> str:
    period = round(1000.0 / clock, 3)
    lines = [
        f"# Vitis HLS / Vivado HLS script for {top}. Generated by TALON; do not edit.",
        "# usage: vitis_hls -f build_prj.tcl          (or: vivado_hls -f build_prj.tcl)",
        "#   optional: -tclargs csim_data=DIR steps=T batch=B part=<part string> synth=1 cosim=0 export=0",
        f"set part \"{preset.part}\"   ;# preset {preset.key}: {preset.family}",
        "set csim_data \"data\"\nset steps 100\nset batch 1\nset synth 1\nset cosim 0\nset export 0",
        "foreach arg $argv { if {[regexp {^([a-z_]+)=(.*)$} $arg -> k v]} { set $k $v } }",
        f"open_project -reset {top}_prj",
        f"set_top {top}",
    ]
    for f in cpp_files:
        lines.append(f'add_files {f} -cflags "-std=c++14 -DTALON_USE_AP_TYPES -Ifirmware"')
    lines += [
        'add_files -tb tb/talon_tb.cpp -cflags "-std=c++14 -DTALON_USE_AP_TYPES -Ifirmware"',
        "open_solution -reset solution1",
        "set_part $part",
        f"create_clock -period {period} -name default",
        'csim_design -argv "[file normalize $csim_data] $steps $batch"',
        "if {$synth} { csynth_design }",
        'if {$cosim} { cosim_design -argv "[file normalize $csim_data] $steps $batch" }',
        "if {$export} { export_design -format ip_catalog }",
        "exit",
    ]
    return "\n".join(lines) + "\n"


def _readme(top: str, preset: PartPreset, clock: float, manifest: dict, est) -> str:
    ports = "\n".join(f"| `{p['port']}` | {c_string(p['name'])} | {size(p['shape'])} | Q{p['format'][0]}.{p['format'][1]} |"
                      for p in manifest["inputs"] + manifest["outputs"] + manifest["spikes"] + manifest["membranes"])  # fmt: skip
    return f"""# TALON HLS project: `{top}`

Generated by TALON {manifest['talon_version']} from the quantised graph (fixed-point version
{manifest['fixed_point_version']}, docs/fixed_point.md); `descriptor.json` is the exact hardware descriptor
it was generated from. Do not edit the generated files: regenerate them with
`get_backend("fpga").compile(graph, out_dir, part=...)`.

## Layout

- `firmware/{top}.cpp`, `firmware/{top}.h`: the top function; one call advances the network by one
  timestep (`reset=true` clears all state first: membranes, synaptic currents and the previous-step
  values of recurrent loops, i.e. starts a new sample).
- `firmware/kernels/*.h`: one kernel per primitive family used; `firmware/talon_fixed.h`: the rounding and
  saturation rules; `firmware/talon_types.h`: port types (`ap_int<b>` with `-DTALON_USE_AP_TYPES`).
- `firmware/weights/*.h`: weights, biases and neuron constants as integer arrays.
- `tb/talon_tb.cpp`: C testbench: `talon_tb DATA_DIR T B` reads `DATA_DIR/in_<id>.bin` (float64, shape
  (T, B, *shape)) and writes `<port>.out.bin` (int64, (T, B, N)) for every output, spike and membrane port.
- `build_prj.tcl`: the HLS script; `estimates.md`: latency and resource estimates; `talon_project.json`: ports,
  formats, part and estimates (what `csim` reads).

## Build

C simulation without any Xilinx tool (what TALON's `csim`/`verify` do):

    g++ -std=c++14 -O1 -Ifirmware firmware/{top}.cpp tb/talon_tb.cpp -o talon_tb
    ./talon_tb data 100 1

add `-DTALON_USE_AP_TYPES -I<dir holding ap_int.h>` to use the ap_types headers (hls4ml's wheel ships them:
`pip install hls4ml`, then `hls4ml/templates/vivado/ap_types`).

HLS (C simulation, synthesis, optionally co-simulation and IP export), part `{preset.part}` ({preset.family}),
clock {clock:g} MHz:

    vitis_hls -f build_prj.tcl -tclargs csim_data=data steps=100 batch=1 synth=1 cosim=0 export=0

Other part: pass `part=<part string>` or regenerate with `part="zu9eg"` / `part="zynq7020"`.

## Ports (integer words; value = word * 2^-frac)

| port | node | elements | format |
|---|---|---|---|
{ports}

## Estimates (not synthesis results)

{est.to_markdown(heading=False)}
"""
