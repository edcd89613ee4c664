"""A self-contained HTML view of a TALON graph: works offline, no external scripts, styles or fonts.

    export_html(graph, "model.html", mapping=result, simulation=sim)

The page holds the graph as JSON and ~200 lines of hand-written vanilla JavaScript (nothing vendored,
nothing fetched). The layout is computed here in Python: a node's column is its topological depth
(the longest path from an input, recurrent edges left out), its row its order within that column.
Nodes are coloured by kind; clicking one shows its fields, shapes, parameter counts, cost, weight
statistics and a heatmap of its weight matrix. With a talon.mapping result the mesh of cores is drawn,
coloured by neuron use; clicking a core lists the layers it holds and clicking a layer lights up its
cores. With a backend SimulationResult each spiking layer shows its firing rate. The overview lists the
graph's metadata (dt, num_steps, exporter, its stamp, any other entries), the file it was read from with
its format version, and the talon version that drew the page. Keys: + and - zoom, 0 returns to the
readable size, f fits the whole graph, the arrow keys pan.
"""

from __future__ import annotations

import base64
import hashlib
import html as _html
import math
import os
import re
from collections import deque
from typing import Any

import numpy as np

from talon._json import dumps, jsonable
from talon.errors import TalonError
from talon.ir import Graph
from talon.ir.graph import back_edges
from talon.sdk.cost import cost_entry
from talon.viz.layout import snake

KIND_COLOURS = {
    "io": "#9aa5b1",
    "synaptic": "#4e79a7",
    "neuron": "#e15759",
    "activation": "#f28e2b",
    "pooling": "#59a14f",
    "norm": "#b07aa1",
    "structure": "#76b7b2",
    "graph": "#edc948",
    "other": "#bab0ac",
}
# Built-in primitives live one family per module of talon.ir.primitives (ARCHITECTURE.md); a node's
# kind is its family's. Neurons and synaptic layers are recognised from the class flags and the cost
# table first, so user primitives registered elsewhere are coloured by what they are.
_FAMILY_KINDS = {
    "io": "io", "linear": "synaptic", "conv": "synaptic", "neurons": "neuron", "activations": "activation",
    "pooling": "pooling", "norm": "norm", "structure": "structure",
}
_PRIMITIVES_PACKAGE = "talon.ir.primitives."
HEATMAP_MAX = 64  # heatmaps are block-averaged down to at most this many rows and columns
NODE_W, NODE_H, GAP_X, GAP_Y = 150, 46, 70, 26


def node_kind(node: Any) -> str:
    """The colour group of a node: graph, neuron (stateful or spiking), synaptic (the cost table lists
    weight tensors for its type), else the family module its class is defined in, else other."""
    if isinstance(node, Graph):
        return "graph"
    if getattr(node, "stateful", False) or getattr(node, "spiking", False):
        return "neuron"
    entry = cost_entry(node.type_name)
    if entry is not None and entry.weight_fields:
        return "synaptic"
    module = type(node).__module__
    if module.startswith(_PRIMITIVES_PACKAGE):
        return _FAMILY_KINDS.get(module[len(_PRIMITIVES_PACKAGE):], "other")
    return "other"


def layout(graph: Any) -> dict[str, tuple[int, int]]:
    """{node: (column, row)}: column = longest path from the inputs once the edges that close a cycle
    (found depth-first from the Input nodes, in edge order) are set aside, so a recurrent loop reads
    left to right with one edge going back; row = order within the column (graph insertion order)."""
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s_, d in graph.edges:
        if s_ in succ and d in succ:
            succ[s_].append(d)
    roots = [n for n, node in graph.nodes.items() if node.type_name == "Input"] + list(graph.nodes)
    back = back_edges(succ, roots)
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    indeg = {n: 0 for n in graph.nodes}
    for s_, d in graph.edges:
        if s_ in succ and d in succ and (s_, d) not in back:
            preds[d].append(s_)
            indeg[d] += 1
    level = {n: 0 for n in graph.nodes}
    ready = deque(n for n in graph.nodes if indeg[n] == 0)
    while ready:  # Kahn's algorithm on the acyclic remainder
        v = ready.popleft()
        for w in succ[v]:
            if (v, w) in back:
                continue
            level[w] = max(level[w], level[v] + 1)
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    columns: dict[int, list[str]] = {}
    for name in graph.nodes:  # insertion order within a column
        columns.setdefault(level[name], []).append(name)
    return {n: (lv, row) for lv, names in columns.items() for row, n in enumerate(names)}


def _downsample(a: np.ndarray, limit: int = HEATMAP_MAX) -> np.ndarray:
    """Block-average a 2-D array to at most limit x limit."""
    rows, cols = a.shape
    fr, fc = max(1, math.ceil(rows / limit)), max(1, math.ceil(cols / limit))
    if fr == 1 and fc == 1:
        return a
    pr, pc = (-rows) % fr, (-cols) % fc
    padded = np.pad(a, ((0, pr), (0, pc)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    with np.errstate(all="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def _heatmap(node: Any) -> dict[str, Any] | None:
    w = getattr(node, "weight", None)
    if w is None:
        w = getattr(node, "pointwise_weight", None)
    if not isinstance(w, np.ndarray) or w.size == 0 or w.dtype.kind not in "fiu":
        return None
    m = w.reshape(w.shape[0], -1) if w.ndim >= 2 else w.reshape(1, -1)
    small = _downsample(m.astype(np.float64))
    finite = small[np.isfinite(small)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    return {
        "shape": list(w.shape),
        "rows": int(small.shape[0]),
        "cols": int(small.shape[1]),
        "scale": scale or 1.0,
        "values": [[(round(float(v), 5) if np.isfinite(v) else None) for v in row] for row in small],
        "downsampled": bool(small.shape != m.shape),
    }


def _stats(a: np.ndarray) -> dict[str, Any]:
    f = a.astype(np.float64)
    fin = f[np.isfinite(f)]
    st = (lambda fn: float(fn(fin)) if fin.size else None)  # noqa: E731
    return {"dtype": str(a.dtype), "shape": list(a.shape), "size": int(a.size), "min": st(np.min), "max": st(np.max), "mean": st(np.mean), "std": st(np.std), "nonzero": int(np.count_nonzero(a))}


#: metadata rows shown at most, and characters of one value (the rest is cut with an ellipsis)
META_ROWS, META_CHARS = 60, 300
#: metadata drawn elsewhere (the mesh panel), not listed
_META_SKIP = ("talon_mapping",)


def graph_meta(graph: Any, source: str | os.PathLike | None = None) -> list[list[Any]]:
    """[[key, value], ...]: dt, then the graph's metadata (nested entries as dotted keys, arrays by dtype
    and shape, long text cut), then the source file and its format version, then the talon that drew it."""
    from talon import __version__

    rows: list[list[Any]] = [["dt", _meta_value(graph.dt)]]
    flat: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat.append((prefix, value))

    for key, value in graph.metadata.items():
        if key not in _META_SKIP:
            walk(str(key), value)
    first = [k for k in ("num_steps", "exporter") if k in dict(flat)]
    flat.sort(key=lambda kv: (kv[0] not in first, first.index(kv[0]) if kv[0] in first else 0))
    rows += [[_meta_text(k), _meta_value(v)] for k, v in flat[:META_ROWS]]
    if len(flat) > META_ROWS:
        rows.append(["\u2026", f"{len(flat) - META_ROWS} more metadata entries"])
    if source is not None:
        from talon.ir.format import read_version

        rows.append(["source", _meta_text(os.fspath(source))])
        try:
            rows.append(["format version", read_version(source)])
        except TalonError:
            pass
    rows.append(["drawn by", f"talon {__version__}"])
    return rows


def _meta_text(text: str) -> str:
    text = _printable(str(text))
    return text if len(text) <= META_CHARS else text[:META_CHARS] + "\u2026"


def _meta_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {tuple(value.shape)}" if value.size > 8 else _meta_text(str(value.tolist()))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else str(value)
    return _meta_text(str(value))


def graph_data(graph: Any, *, mapping: Any = None, simulation: Any = None, title: str | None = None, source: str | os.PathLike | None = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data (the layout included)."""
    costs: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    try:
        from talon.sdk import analyze_graph

        stats = analyze_graph(graph)
        for n, s in stats.layers.items():
            c = s.cost
            costs[n] = {"params": c.params, "param_bytes": c.param_bytes, "macs": c.macs, "flops": c.flops, "neurons": c.neurons, "state_elements": c.state_elements, "activation_elements": c.activation_elements}
            shapes[n] = {"inputs": [list(x) for x in s.input_shapes], "outputs": [list(x) for x in s.output_shapes]}
    except Exception:  # noqa: BLE001 - shapes and costs are optional for a graph that does not validate
        pass
    pos = layout(graph)
    placed = snake(pos, w=NODE_W, h=NODE_H, gx=GAP_X, gy=GAP_Y)
    rates = dict(getattr(simulation, "firing_rates", {}) or {})
    agreement = dict(getattr(simulation, "agreement", None) or {})
    nodes = []
    for name, node in graph.nodes.items():
        col, row = pos[name]
        xy = placed["pos"][name]
        fields, arrays = {}, {}
        for fname, value in (node.field_values().items() if hasattr(node, "field_values") else []):
            if fname == "metadata" or value is None:
                continue
            if isinstance(value, np.ndarray):
                arrays[fname] = _stats(value)
            else:
                fields[fname] = jsonable(value)
        entry = {
            "name": name, "type": node.type_name, "kind": node_kind(node), "col": col, "row": row, "x": xy["x"], "y": xy["y"], "band": xy["band"],
            "stateful": bool(node.stateful), "spiking": bool(getattr(node, "spiking", False)),
            "fields": fields, "arrays": arrays, "cost": costs.get(name), "shapes": shapes.get(name),
            "params": int(sum(a["size"] for a in arrays.values())), "heatmap": _heatmap(node),
            "inputs": graph.predecessors(name), "outputs": graph.successors(name),
        }
        if name in rates:
            entry["firing_rate"] = float(rates[name])
        if name in agreement:
            entry["agreement"] = float(agreement[name])
        nodes.append(entry)
    # an edge that does not go rightwards closes a loop: drawn as a dashed arc
    edges = [{"src": s, "dst": d, "recurrent": bool(s in pos and d in pos and pos[d][0] <= pos[s][0])} for s, d in graph.edges]
    data: dict[str, Any] = {
        "title": title or "TALON graph",
        "dt": graph.dt,
        "meta": graph_meta(graph, source),
        "nodes": nodes,
        "edges": edges,
        "colours": KIND_COLOURS,
        "box": {"w": NODE_W, "h": NODE_H, "gx": GAP_X, "gy": GAP_Y},
        "size": {"w": placed["w"], "h": placed["h"]},
        "errors": validation_errors(graph),
        "totals": {"nodes": len(graph.nodes), "edges": len(graph.edges), "params": int(sum(n["params"] for n in nodes))},
        "mapping": _mapping_data(mapping) if mapping is not None else None,
    }
    m = data["mapping"]
    if m is not None:  # a synaptic node's weights live on the cores of the neurons it feeds
        m["node_cores"] = {}
        for name in graph.nodes:
            if name in m["layer_cores"]:
                m["node_cores"][name] = {"cores": sorted(set(m["layer_cores"][name])), "via": []}
                continue
            via = [d for d in graph.successors(name) if d in m["layer_cores"]]
            if via:
                m["node_cores"][name] = {"cores": sorted({c for d in via for c in m["layer_cores"][d]}), "via": via}
    return data


def validation_errors(graph: Any) -> list[str]:
    """The graph's validation error (Graph.validate stops at the first), shown as a banner; [] if valid."""
    try:
        graph.validate()
    except TalonError as exc:  # GraphValidationError, or a shape rule that refuses the node's input
        return [f"{type(exc).__name__}: {exc}"]
    return []


def _mapping_data(mapping: Any) -> dict[str, Any]:
    hw = mapping.hardware
    c = mapping.cores
    rows, cols = hw.mesh
    per_core_layers: dict[int, list[dict[str, Any]]] = {}
    layer_cores: dict[str, list[int]] = {}
    for layer, a in mapping.assignments.items():
        for k in range(len(a["core"])):
            core = int(a["core"][k])
            per_core_layers.setdefault(core, []).append({"layer": layer, "start": int(a["start"][k]), "stop": int(a["stop"][k])})
            layer_cores.setdefault(layer, []).append(core)
    neuron_use, memory_use = mapping.neuron_utilisation, mapping.memory_utilisation
    cores = []
    for i in range(len(c["row"])):
        cores.append({
            "core": i, "row": int(c["row"][i]), "col": int(c["col"][i]), "neurons": int(c["neurons"][i]),
            "weight_bytes": int(c["weight_bytes"][i]), "synapses": int(c["synapses"][i]), "fan_in": int(c["fan_in"][i]), "fan_out": int(c["fan_out"][i]),
            "neuron_use": float(neuron_use[i]), "memory_use": float(memory_use[i]),
            "layers": per_core_layers.get(i, []),
        })
    return {"rows": rows, "cols": cols, "hardware": jsonable(hw.to_dict()), "cores": cores, "layer_cores": layer_cores,
            "metrics": jsonable(mapping.metrics), "algorithm": mapping.algorithm}


def render_html(graph: Any, *, mapping: Any = None, simulation: Any = None, title: str | None = None, source: str | os.PathLike | None = None) -> str:
    """The page as a string (see export_html).

    The template is filled in one pass (a placeholder inside a filled-in value is never filled again),
    each value escaped for where it goes: the title as HTML text, the data as JSON inside a <script>
    element with `<`, `>`, `&` and U+2028/9 written as \\u escapes (no `</script>` or `<!--` can end or
    break it), the page's own script and style verbatim. The Content-Security-Policy lets only the page's
    own script run (by its hash), so markup smuggled into the page anyway would stay inert.
    """
    data = graph_data(graph, mapping=mapping, simulation=simulation, title=title, source=source)
    data["title"] = _printable(str(data["title"]))
    values = {
        "TITLE": _html.escape(data["title"], quote=True),
        "DATA": script_json(data),
        "SCRIPT": _SCRIPT,
        "STYLE": _STYLE,
        "SCRIPT_HASH": _script_hash(),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _TEMPLATE)


_PLACEHOLDER = re.compile(r"__(TITLE|DATA|SCRIPT|STYLE|SCRIPT_HASH)__")
_JSON_IN_SCRIPT = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value: Any) -> str:
    """`value` as JSON safe inside an HTML <script> element: the characters that could close the element
    or open a comment are \\u escapes (inside JSON strings, the only place they can occur)."""
    return dumps(value, separators=(",", ":")).translate(_JSON_IN_SCRIPT)


def _printable(text: str) -> str:
    """Text that encodes as UTF-8: a file name's undecodable bytes (surrogate escapes) become \\x.. escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _script_hash() -> str:
    return base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")


def export_html(graph: Any, path: str | os.PathLike, *, mapping: Any = None, simulation: Any = None, title: str | None = None) -> str:
    """Write the self-contained page for `graph` (a Graph or .t1c path) to `path`; returns the path.

    mapping: a talon.mapping.MappingResult (default: the one stored in the graph's metadata, if any).
    simulation: a backend SimulationResult whose firing rates are shown per layer.
    The page is written atomically (talon.ir.atomic_write: never through a symlink, never over a device,
    a folder or the model being read).
    """
    from talon.ir import Graph
    from talon.ir._atomic import atomic_write_text

    g, mapping = _graph_and_mapping(graph, mapping)
    text = render_html(g, mapping=mapping, simulation=simulation, title=title, source=None if isinstance(graph, Graph) else graph)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sources = [] if isinstance(graph, Graph) else [graph]
    atomic_write_text(path, text, inputs=sources)
    return path


_STYLE = """
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d232a;background:#f6f7f9}
header{padding:10px 16px;background:#1d232a;color:#fff;display:flex;gap:18px;align-items:baseline}header h1{font-size:16px;margin:0}
header span{opacity:.75}body{display:flex;flex-direction:column;height:100vh}main{display:flex;flex:1;min-height:0}#canvas{flex:1;overflow:hidden;position:relative;background:#fff;min-width:0}
#side{width:400px;overflow:auto;border-left:1px solid #d8dde3;padding:12px 14px;background:#fbfcfd}
#graph{width:100%;height:100%;display:block;cursor:grab;touch-action:none}#graph.drag{cursor:grabbing}
.tools{position:absolute;bottom:10px;right:10px;display:flex;gap:4px;align-items:center;background:rgba(255,255,255,.9);padding:3px;border-radius:6px;border:1px solid #d8dde3}
.tools button{font:12px system-ui,sans-serif;padding:2px 8px;cursor:pointer}.tools span{font-size:11px;color:#52606d;min-width:38px;text-align:right}
#banner{background:#c62828;color:#fff;padding:8px 16px;font-size:13px}#banner span{margin-left:6px}svg text{pointer-events:none}.node rect{stroke:#1d232a;stroke-width:0;rx:7;cursor:pointer}.node:hover rect{stroke-width:1.5}
.node.selected rect{stroke-width:3;stroke:#111}.node text{fill:#fff;font-size:13px}.node text.t{font-size:12px;opacity:.9}
.edge{fill:none;stroke:#7b8794;stroke-width:1.4}.edge.rec{stroke-dasharray:5 4;stroke:#c9485b}.edge.hi{stroke:#111;stroke-width:2.4}
table{border-collapse:collapse;width:100%;margin:4px 0 10px}td,th{padding:2px 6px;border-bottom:1px solid #e3e7eb;text-align:left;vertical-align:top}
th{font-weight:600;background:#eef1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}h2{font-size:15px;margin:4px 0 6px}
h3{font-size:13px;margin:12px 0 4px;color:#3e4c59}.legend{display:flex;flex-wrap:wrap;gap:6px 12px;margin:6px 0 10px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:4px;vertical-align:-1px}.muted{color:#7b8794}
.meshwrap{overflow:auto;max-height:70vh}#mesh{display:grid;gap:3px;margin:6px 0;font-size:10px}#mesh.dense{gap:1px}#mesh.dense .core{min-height:14px;border-radius:2px;border-width:1px;padding:0}.core{border-radius:4px;min-height:34px;font-size:inherit;padding:2px;text-align:center;cursor:pointer;border:2px solid transparent;overflow:hidden;min-width:0}
.core.on{border-color:#111}.core.idle{background:#e9edf1;color:#9aa5b1}canvas.heat{image-rendering:pixelated;border:1px solid #d8dde3;max-width:100%}
"""

_SCRIPT = r"""
(function(){
const D=JSON.parse(document.getElementById('talon-data').textContent);
const NS='http://www.w3.org/2000/svg', B=D.box, byName={};
D.nodes.forEach(n=>byName[n.name]=n);
const side=document.getElementById('side');
function el(tag,attrs,parent,text){const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;if(parent)parent.appendChild(e);return e;}
function h(tag,text,parent,cls){const e=document.createElement(tag);if(text!==undefined&&text!==null)e.textContent=text;if(cls)e.className=cls;if(parent)parent.appendChild(e);return e;}
function fmt(v){if(v===null||v===undefined)return '-';if(typeof v==='number'){if(Number.isInteger(v))return v.toLocaleString('en-US');const a=Math.abs(v);return (a!==0&&(a<1e-3||a>=1e5))?v.toExponential(3):v.toPrecision(4).replace(/\.?0+$/,'');}if(Array.isArray(v))return '('+v.map(fmt).join(', ')+')';if(typeof v==='object')return JSON.stringify(v);return String(v);}
function shp(list){return (list&&list.length)?list.map(s=>'('+s.join(', ')+')').join(' '):'-';}
function table(rows,parent,head){const t=h('table',null,parent);if(head){const tr=h('tr',null,t);head.forEach(x=>h('th',x,tr));}rows.forEach(r=>{const tr=h('tr',null,t);r.forEach((c,i)=>{const td=h('td',fmt(c),tr);if(i>0&&typeof c==='number')td.className='n';});});return t;}
// graph: drawn at the positions computed in Python, in an SVG whose viewBox is the zoom and pan
const canvas=document.getElementById('canvas'), W=D.size.w, H=D.size.h;
if(D.errors&&D.errors.length){const b=h('div',null,null);b.id='banner';b.setAttribute('role','alert');h('b','This graph does not validate: ',b);D.errors.forEach(t=>h('span',t,b));document.body.insertBefore(b,document.querySelector('main'));}
const svg=el('svg',{id:'graph',preserveAspectRatio:'xMinYMin meet'},canvas);
el('defs',{},svg).innerHTML='<marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#7b8794"/></marker>';
function xy(n){return [n.x,n.y];}
const edgeEls=[];
D.edges.forEach(e=>{const a=byName[e.src],b=byName[e.dst];if(!a||!b)return;const [ax,ay]=xy(a),[bx,by]=xy(b);let d;
 if(e.recurrent){const x1=ax+B.w/2,y1=ay,x2=bx+B.w/2,y2=by,top=Math.min(y1,y2)-18-8*Math.abs(a.col-b.col);d=`M${x1},${y1}C${x1},${top} ${x2},${top} ${x2},${y2}`;}
 else if(a.band!==b.band){// leaves the band on its turning side, runs down beside it, enters the next band from above
  const r=a.band%2===0,x1=r?ax+B.w:ax,y1=ay+B.h/2,out=r?x1+B.gx/2:x1-B.gx/2,x2=bx+B.w/2,y2=by,top=y2-B.gy/2-8;d=`M${x1},${y1}L${out},${y1}L${out},${top}L${x2},${top}L${x2},${y2}`;}
 else{const r=bx>=ax,x1=r?ax+B.w:ax,y1=ay+B.h/2,x2=r?bx:bx+B.w,y2=by+B.h/2,m=(x1+x2)/2;d=`M${x1},${y1}C${m},${y1} ${m},${y2} ${x2},${y2}`;}
 const p=el('path',{d:d,class:'edge'+(e.recurrent?' rec':''),'marker-end':'url(#arr)'},svg);p.dataset.src=e.src;p.dataset.dst=e.dst;edgeEls.push(p);});
// a label is cut (with an ellipsis) to the width of its box, measured in the page's own font
function fitText(t,text,maxW){t.textContent=text;if(t.getComputedTextLength()<=maxW)return;let lo=0,hi=text.length;while(lo<hi){const k=(lo+hi+1)>>1;t.textContent=text.slice(0,k)+'\u2026';if(t.getComputedTextLength()<=maxW)lo=k;else hi=k-1;}t.textContent=text.slice(0,lo)+'\u2026';}
const nodeEls={};
D.nodes.forEach((n,i)=>{const [x,y]=xy(n);const g=el('g',{class:'node',transform:`translate(${x},${y})`,tabindex:0},svg);g.dataset.name=n.name;g.setAttribute('id','node-'+i);
 el('rect',{width:B.w,height:B.h,fill:D.colours[n.kind]||'#888'},g);el('title',{},g,n.name+' ('+n.type+')');
 fitText(el('text',{x:9,y:19,class:'l'},g),n.name,B.w-18);
 let sub=n.type;if(n.shapes&&n.shapes.outputs.length)sub+=' '+shp(n.shapes.outputs);if(n.firing_rate!==undefined)sub+=' r='+n.firing_rate.toFixed(3);
 fitText(el('text',{x:9,y:37,class:'t'},g),sub,B.w-18);
 g.addEventListener('click',ev=>{if(dragged){ev.stopPropagation();return;}select(n.name);});g.addEventListener('keydown',ev=>{if(ev.key==='Enter')select(n.name);});nodeEls[n.name]=g;});
// zoom (wheel, at the pointer) and pan (drag); the first view never shrinks boxes below a readable size
const MIN_START=0.85;let view={x:0,y:0,s:1},dragged=false;
function show(){const cw=canvas.clientWidth||800,ch=canvas.clientHeight||600;svg.setAttribute('viewBox',`${view.x} ${view.y} ${cw/view.s} ${ch/view.s}`);zl.textContent=Math.round(100*view.s)+'%';}
function zoomAt(f,px,py){const s=Math.max(0.05,Math.min(8,view.s*f));view.x+=px/view.s-px/s;view.y+=py/view.s-py/s;view.s=s;show();}
function fit(){const cw=canvas.clientWidth||800,ch=canvas.clientHeight||600;view.s=Math.min(cw/W,ch/H,2);view.x=-(cw/view.s-W)/2;view.y=-(ch/view.s-H)/2;show();}
function start(){const cw=canvas.clientWidth||800,ch=canvas.clientHeight||600;view.s=Math.max(MIN_START,Math.min(1,cw/W,ch/H));view.x=0;view.y=0;show();}
const bar=h('div',null,canvas,'tools');const zl=h('span','',null);
[['fit','fit the whole graph in view',fit],['\u2212','zoom out',()=>zoomAt(1/1.25,canvas.clientWidth/2,canvas.clientHeight/2)],['+','zoom in',()=>zoomAt(1.25,canvas.clientWidth/2,canvas.clientHeight/2)],['1:1','readable size',start]].forEach(([t,tip,f])=>{const b=h('button',t,bar);b.title=tip;b.type='button';b.addEventListener('click',f);});
bar.appendChild(zl);bar.querySelector('button').id='fit';bar.title='keys: + and - zoom, 0 readable size, f fit, arrows pan';
svg.addEventListener('wheel',ev=>{ev.preventDefault();const r=svg.getBoundingClientRect();zoomAt(Math.exp(-ev.deltaY*0.0015),ev.clientX-r.left,ev.clientY-r.top);},{passive:false});
let drag=null;
svg.addEventListener('pointerdown',ev=>{if(ev.button!==0)return;drag={x:ev.clientX,y:ev.clientY,vx:view.x,vy:view.y};dragged=false;});
window.addEventListener('pointermove',ev=>{if(!drag)return;const dx=ev.clientX-drag.x,dy=ev.clientY-drag.y;if(Math.abs(dx)+Math.abs(dy)>4){dragged=true;svg.classList.add('drag');}if(dragged){view.x=drag.vx-dx/view.s;view.y=drag.vy-dy/view.s;show();}});
window.addEventListener('pointerup',()=>{drag=null;svg.classList.remove('drag');setTimeout(()=>{dragged=false;},0);});
window.addEventListener('resize',show);
// keys: + / - zoom at the centre, 0 the readable size, f fit, arrows pan a fifth of the view; not while
// typing, not with Ctrl/Cmd/Alt (the browser's own zoom), not inside the side panel (it scrolls)
const KEYS={'+':()=>zoomAt(1.25,canvas.clientWidth/2,canvas.clientHeight/2),'=':()=>zoomAt(1.25,canvas.clientWidth/2,canvas.clientHeight/2),
 '-':()=>zoomAt(1/1.25,canvas.clientWidth/2,canvas.clientHeight/2),'_':()=>zoomAt(1/1.25,canvas.clientWidth/2,canvas.clientHeight/2),'0':start,'f':fit,
 ArrowLeft:()=>pan(-1,0),ArrowRight:()=>pan(1,0),ArrowUp:()=>pan(0,-1),ArrowDown:()=>pan(0,1)};
function pan(dx,dy){const cw=canvas.clientWidth||800,ch=canvas.clientHeight||600;view.x+=dx*0.2*cw/view.s;view.y+=dy*0.2*ch/view.s;show();}
window.addEventListener('keydown',ev=>{const f=KEYS[ev.key],t=ev.target;if(!f||ev.ctrlKey||ev.metaKey||ev.altKey)return;
 if(t&&t.closest&&(t.closest('#side')||t.closest('input,textarea,select,[contenteditable]')))return;ev.preventDefault();f();});
start();
// the header sums up the metadata; the overview lists it
const MD={};(D.meta||[]).forEach(([k,v])=>MD[k]=v);
const hs=h('span',['num_steps','dt','exporter','drawn by'].filter(k=>k in MD).map(k=>(k==='drawn by'?'':k+' ')+fmt(MD[k])).join(' \u00b7 '),document.querySelector('header'));hs.id='meta-summary';
// side panel
function overview(){side.innerHTML='';h('h2',D.title,side);h('div',`${D.totals.nodes} nodes, ${D.totals.edges} edges, ${D.totals.params.toLocaleString('en-US')} parameters, dt ${D.dt}`,side,'muted');
 const lg=h('div',null,side,'legend');Object.keys(D.colours).forEach(k=>{if(!D.nodes.some(n=>n.kind===k))return;const s=h('span',null,lg);const i=h('i',null,s);i.style.background=D.colours[k];s.appendChild(document.createTextNode(k));});
 h('div','Click a node for its fields, shapes and weights; dashed red edges close a recurrent loop (one step of delay). Keys: + and \u2212 zoom, 0 readable size, f fit, arrows pan.',side,'muted');
 if(D.meta&&D.meta.length){h('h3','Graph',side);table(D.meta,side).id='meta';}meshPanel(null);
 h('h3','Nodes',side);table(D.nodes.map(n=>[n.name,n.type,n.params]),side,['name','type','params']);}
function reveal(n){const cw=canvas.clientWidth||800,ch=canvas.clientHeight||600,vw=cw/view.s,vh=ch/view.s;
 if(n.x<view.x||n.y<view.y||n.x+B.w>view.x+vw||n.y+B.h>view.y+vh){view.x=n.x+B.w/2-vw/2;view.y=n.y+B.h/2-vh/2;show();}}
function select(name){const n=byName[name];if(!n)return;Object.values(nodeEls).forEach(g=>g.classList.remove('selected'));nodeEls[name].classList.add('selected');reveal(n);
 edgeEls.forEach(p=>p.classList.toggle('hi',p.dataset.src===name||p.dataset.dst===name));side.innerHTML='';
 const back=h('a','\u2190 overview',side);back.href='#';back.addEventListener('click',ev=>{ev.preventDefault();Object.values(nodeEls).forEach(g=>g.classList.remove('selected'));edgeEls.forEach(p=>p.classList.remove('hi'));overview();});
 const title=h('h2',n.name,side);title.id='panel-title';h('div',n.type+(n.stateful?' \u00b7 stateful':'')+(n.spiking?' \u00b7 spiking':''),side,'muted');
 const info=[['inputs',n.inputs.join(', ')||'-'],['outputs',n.outputs.join(', ')||'-'],['input shapes',n.shapes?shp(n.shapes.inputs):'?'],['output shapes',n.shapes?shp(n.shapes.outputs):'?'],['parameters',n.params]];
 if(n.firing_rate!==undefined)info.push(['firing rate',n.firing_rate]);if(n.agreement!==undefined)info.push(['fixed/float agreement',n.agreement]);table(info,side);
 const fk=Object.keys(n.fields);if(fk.length){h('h3','Fields',side);table(fk.map(k=>[k,n.fields[k]]),side);}
 if(n.cost){h('h3','Cost per sample per step',side);table(Object.keys(n.cost).map(k=>[k,n.cost[k]]),side);}
 const ak=Object.keys(n.arrays);if(ak.length){h('h3','Arrays',side);table(ak.map(k=>{const a=n.arrays[k];return [k,a.dtype+' ('+a.shape.join(', ')+')',a.min,a.max,a.mean,a.std];}),side,['array','dtype shape','min','max','mean','std']);}
 if(n.heatmap)heat(n.heatmap);meshPanel(name);}
function colour(v,s){if(v===null)return [230,230,230];const t=Math.max(-1,Math.min(1,v/s));const a=Math.abs(t);return t>=0?[255-a*(255-178),255-a*(255-24),255-a*(255-43)]:[255-a*(255-33),255-a*(255-102),255-a*(255-172)];}
function heat(m){h('h3','Weights '+(m.downsampled?`(block-averaged from (${m.shape.join(', ')}) to ${m.rows}\u00d7${m.cols})`:'('+m.shape.join(', ')+')'),side);
 const c=h('canvas',null,side,'heat');c.id='heatmap';const px=Math.max(2,Math.min(10,Math.floor(360/Math.max(m.rows,m.cols))));c.width=m.cols*px;c.height=m.rows*px;const ctx=c.getContext('2d');
 for(let i=0;i<m.rows;i++)for(let j=0;j<m.cols;j++){const [r,g,b]=colour(m.values[i][j],m.scale);ctx.fillStyle=`rgb(${r|0},${g|0},${b|0})`;ctx.fillRect(j*px,i*px,px,px);}
 h('div',`rows: outputs, columns: inputs; blue \u2212${fmt(m.scale)} \u2026 white 0 \u2026 red +${fmt(m.scale)}`,side,'muted');}
function meshPanel(layer){const M=D.mapping;if(!M)return;h('h3',`Mapping: ${M.rows}\u00d7${M.cols} mesh, ${M.metrics.cores_used} core(s) used (${M.algorithm})`,side);
 const wrap=h('div',null,side,'meshwrap');const grid=h('div',null,wrap);grid.id='mesh';
 // values are written only while a cell can hold them at a legible size; a big mesh is a heatmap with a tooltip per core
 const text=M.cols<=4?'full':(M.cols<=8?'pct':'none');if(text==='none')grid.classList.add('dense');grid.style.gridTemplateColumns=`repeat(${M.cols},minmax(${text==='none'?14:0}px,1fr))`;const at={};M.cores.forEach(c=>at[c.row+','+c.col]=c);
 const nc=layer?M.node_cores[layer]:null;const lit=new Set(nc?nc.cores:[]);
 const info=h('div',layer?(nc?(nc.via.length?`${layer}: weights on the ${lit.size} core(s) of ${nc.via.join(', ')}`:`${layer}: on ${lit.size} core(s)`):`${layer}: not on a core`):'Click a core for the layers it holds.',side,'muted');
 for(let r=0;r<M.rows;r++)for(let c=0;c<M.cols;c++){const core=at[r+','+c];const d=h('div',null,grid,'core');d.dataset.row=r;d.dataset.col=c;
  if(!core){d.classList.add('idle');d.title=`(${r}, ${c}): idle`;if(text==='full')d.textContent=`${r},${c}`;continue;}const u=core.neuron_use;const [R,G,Bc]=[255-u*200,255-u*120,255-u*40];d.style.background=`rgb(${R|0},${G|0},${Bc|0})`;d.style.color=u>0.6?'#fff':'#1d232a';
  if(text==='full')d.textContent=`${r},${c} \u00b7 ${Math.round(100*u)}%`;else if(text==='pct')d.textContent=`${Math.round(100*u)}%`;if(lit.has(core.core))d.classList.add('on');
  d.title=`core ${core.core} at (${r}, ${c}): ${Math.round(100*u)}% of its neurons, `+(core.layers.map(l=>l.layer).join(', ')||'no layer');
  d.addEventListener('click',()=>{info.textContent=`core ${core.core} at (${r}, ${c}): ${core.neurons} neurons (${Math.round(100*core.neuron_use)}%), ${core.weight_bytes.toLocaleString('en-US')} weight bytes (${Math.round(100*core.memory_use)}%), fan-in ${core.fan_in}, fan-out ${core.fan_out}; `+core.layers.map(l=>`${l.layer}[${l.start}:${l.stop}]`).join(', ');});}
 table([['cores used',M.metrics.cores_used],['packet hops / step',M.metrics.packet_hops_per_step],['max link load',M.metrics.max_link_load],['max neuron use',Math.round(100*M.metrics.max_neuron_utilisation)+'%'],['max memory use',Math.round(100*M.metrics.max_memory_utilisation)+'%']],side);}
overview();window.talonSelect=select;
// "#select=NAME" in the URL opens a node, through a real click event (used by links and headless tests)
const m=/^#select=([^&]+)/.exec(location.hash);if(m){const g=nodeEls[decodeURIComponent(m[1])];if(g)g.dispatchEvent(new MouseEvent('click',{bubbles:true}));}
// "#measure" in the URL: the page writes what a person sees (on-screen boxes and font sizes, in CSS px) into
// data-measure on <body>, for the headless tests; nothing is written otherwise
function box(e){const r=e.getBoundingClientRect();return [r.left,r.top,r.width,r.height];}
if(/(^#|&)measure(&|$)/.test(location.hash)){const ms={scale:view.s,canvas:box(canvas),nodes:[],cells:[]};
 D.nodes.forEach(n=>{const g=nodeEls[n.name];ms.nodes.push({name:n.name,box:box(g.querySelector('rect')),labels:[...g.querySelectorAll('text')].map(t=>({box:box(t),font:parseFloat(getComputedStyle(t).fontSize)*t.getScreenCTM().a,text:t.textContent}))});});
 document.querySelectorAll('#mesh .core').forEach(c=>ms.cells.push({box:box(c),font:parseFloat(getComputedStyle(c).fontSize),text:c.textContent,fits:c.scrollWidth<=c.clientWidth&&c.scrollHeight<=c.clientHeight,title:c.title}));
 document.body.dataset.measure=JSON.stringify(ms);}
document.body.dataset.ready='1';
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-__SCRIPT_HASH__'; style-src 'unsafe-inline'; img-src data:">
<title>__TITLE__</title><style>__STYLE__</style></head>
<body><header><h1>__TITLE__</h1><span>TALON graph view (offline)</span></header>
<main><div id="canvas"></div><aside id="side"></aside></main>
<script type="application/json" id="talon-data">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""


class GraphView:
    """The interactive view of a graph inline in Jupyter (`talon.viz.show(graph)`): the same page as
    export_html, in a sandboxed iframe (`srcdoc`, scripts allowed, no same-origin access to the notebook),
    so its own Content-Security-Policy and escaping hold there too."""

    def __init__(self, page: str, height: int = 640) -> None:
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        return (f'<iframe sandbox="allow-scripts" style="width:100%;height:{int(self.height)}px;border:1px solid #ccc" '
                f'srcdoc="{_html.escape(self.page, quote=True)}"></iframe>')


def show(graph: Any, *, mapping: Any = None, simulation: Any = None, title: str | None = None, height: int = 640) -> GraphView:
    """The interactive graph view to display inline in a notebook (a Graph or .t1c path)."""
    g, mapping = _graph_and_mapping(graph, mapping)
    return GraphView(render_html(g, mapping=mapping, simulation=simulation, title=title, source=None if isinstance(graph, Graph) else graph), height)


def _graph_and_mapping(graph: Any, mapping: Any) -> tuple[Any, Any]:
    """The Graph (read from a path), and the mapping to show: the given one, else the one stored in the
    graph's metadata, if any."""
    from talon.ir import Graph, read

    g = graph if isinstance(graph, Graph) else read(graph)
    if mapping is None and "talon_mapping" in g.metadata:
        try:
            from talon.mapping import MappingResult

            mapping = MappingResult.from_graph(g)
        except Exception:  # noqa: BLE001 - a page without the mesh beats no page
            mapping = None
    return g, mapping
