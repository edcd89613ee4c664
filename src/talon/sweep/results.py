"""A sweep's output folder: results.json (rewritten atomically as each point finishes), results.csv,
pareto.csv and pareto.png (accuracy against energy), and reading an earlier run back to resume it.

results.json: {"schema": "talon.sweep/2", "settings": {...}, "reference": {...}, "points": [...]}; each
point: {"id", "params", "status" ("ok", "does-not-fit", "error"), "fits", "reason", "metrics": {accuracy,
agreement, energy_uj, latency_us, cores, packet_hops_per_step, ...}, "pricing", "seconds", "seconds_prepare"}
(docs/sweep.md). A point is matched on resuming by its parameters as a mapping (talon.sweep.grid.point_key).
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from talon.errors import TalonError
from talon.ir._atomic import atomic_path

SCHEMA = "talon.sweep/2"
#: settings that change how the work is cut, not a result: a sweep resumed with others is the same sweep
RUN_ONLY = ("data", "batch_size", "shard_size")
CSV_METRICS = ("accuracy", "float_accuracy", "agreement", "energy_uj", "latency_us", "spikes_per_sample", "cores", "packet_hops_per_step")


def write_text(path: str, text: str) -> None:
    """Replace `path` by `text` atomically (talon.ir's writer: a reader sees the old file or the new one)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load(out: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The results.json of an earlier run of the same sweep in `out`, or None; a different sweep is refused."""
    path = os.path.join(out, "results.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise TalonError(f"{path}: cannot read the earlier results ({exc}); remove it or choose another --out") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise TalonError(f"{path}: not a {SCHEMA} results file; remove it or choose another --out")
    old = doc.get("settings", {})
    # the data's path may change (a copy, another working folder): its SHA-256 as encoded says if it is the same
    diff = sorted(k for k in set(old) | set(settings) if k not in RUN_ONLY and old.get(k) != settings.get(k))
    if diff:
        raise TalonError(f"{path} holds a different sweep (it differs in {', '.join(diff)}); choose another --out, or remove it to start again")
    return doc


def pareto_front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured points no other point beats on both accuracy (higher) and energy (lower), by energy."""
    ok = [p for p in points if p["status"] == "ok"]
    front = []
    for p in ok:
        a, e = p["metrics"]["accuracy"], p["metrics"]["energy_uj"]
        if not any(q["metrics"]["accuracy"] >= a and q["metrics"]["energy_uj"] <= e and (q["metrics"]["accuracy"] > a or q["metrics"]["energy_uj"] < e) for q in ok):
            front.append(p)
    return sorted(front, key=lambda p: (p["metrics"]["energy_uj"], -p["metrics"]["accuracy"], p["id"]))


def to_csv(points: list[dict[str, Any]], keys: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", *keys, "status", "fits", *CSV_METRICS, "reason"])
    for p in points:
        m = p.get("metrics") or {}
        w.writerow([p["id"], *(p["params"].get(k, "") for k in keys), p["status"], p["fits"], *(m.get(k, "") for k in CSV_METRICS), p.get("reason") or ""])
    return buf.getvalue()


def write_all(out: str, doc: dict[str, Any], keys: list[str]) -> None:
    """results.json, results.csv and pareto.csv from `doc` (each replaced atomically)."""
    write_text(os.path.join(out, "results.json"), json.dumps(doc, indent=1) + "\n")
    write_text(os.path.join(out, "results.csv"), to_csv(doc["points"], keys))
    write_text(os.path.join(out, "pareto.csv"), to_csv(pareto_front(doc["points"]), keys))


def plot(points: list[dict[str, Any]], path: str) -> str:
    """Accuracy against energy per sample, every measured point, the Pareto front joined; saved to `path`."""
    from talon.viz.plots import save_figure
    import matplotlib.pyplot as plt

    ok = [p for p in points if p["status"] == "ok"]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([p["metrics"]["energy_uj"] for p in ok], [p["metrics"]["accuracy"] for p in ok], s=18, color="0.6", label=f"points ({len(ok)})")
    ax.plot([p["metrics"]["energy_uj"] for p in front], [p["metrics"]["accuracy"] for p in front], "o-", color="C3", label="Pareto front")
    for p in front:
        ax.annotate(p["id"], (p["metrics"]["energy_uj"], p["metrics"]["accuracy"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("energy per sample (µJ)")
    ax.set_ylabel("accuracy (fixed point)")
    ax.set_title(f"sweep: {len(points)} points, {len(points) - len(ok)} without a measurement")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
