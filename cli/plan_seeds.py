"""``peftbench plan-seeds DIR``: the sweep spec that adds, to the sweep in DIR, the seeds its undecided
comparisons need (reports/stats.py), and nothing else; ``peftbench sweep THAT --out DIR --resume`` runs
only its new points (harness/folder.py ``continues`` lets a part of the grid with more seeds resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from peftbench.files import read_json, write_text
from peftbench.harness.folder import SPEC_FILE, continues
from peftbench.harness.records import read_records
from peftbench.harness.spec import parse_spec
from peftbench.methods import method_label
from peftbench.reports import tables
from peftbench.reports.select import BASELINE, baseline_label, summarize

PLAN_FILE = "plan-seeds.yaml"  # where the spec goes without --out: beside the sweep it continues


def undecided(records: list[dict], *, baseline: str, min_effect: float | None) -> list[tables.Comparison]:
    """The report's comparisons against ``baseline`` that its seeds do not decide."""
    summary = summarize([r for r in records if not r.get("mixture")], baseline=baseline)
    label = baseline_label(summary, baseline) if len(summary) else None
    if label is None:
        raise ValueError(f"no {baseline} records to compare with: plan-seeds needs the baseline's")
    return [c for c in tables.comparisons(summary, label, min_effect=min_effect) if not c.verdict.decided]


def seed_list(saved: dict, records: list[dict], count: int) -> list[int]:
    """``count`` seeds: those the folder already ran first (their points are skipped), then new ones."""
    known = sorted(set(saved["seeds"]) | {r["seed"] for r in records})
    fresh = iter(range(max(known, default=-1) + 1, max(known, default=-1) + 1 + count))
    return (known + list(fresh))[:count]


def plan_raw(saved: dict, found: list[tables.Comparison], seeds: list[int]) -> dict:
    """A spec (as YAML gives it) of ``saved``'s settings over the undecided comparisons' methods (and
    the baseline), tasks and train sizes, with ``seeds``."""
    labels = {c.cell["method"] for c in found} | {c.baseline["method"] for c in found}
    tasks = [t for t in saved["tasks"] if t in {c.cell["task"] for c in found}]
    sizes = {None if pd.isna(c.cell["train_size"]) else int(c.cell["train_size"]) for c in found}
    raw = {**saved["settings"], "name": saved["name"], "learning_rates": saved["learning_rates"], "seeds": seeds,
           "methods": [m for m in saved["methods"] if method_label(m["name"], m["options"]) in labels],
           "tasks": tasks, "cpus_per_trial": saved["cpus_per_trial"], "max_failures": saved["max_failures"]}
    raw["methods"] = [{k: v for k, v in m.items() if v is not None} for m in raw["methods"]]
    if saved.get("gpu_memory") is not None:
        raw["gpu_memory"] = saved["gpu_memory"]
    if saved["train_size"] != [None]:
        raw["train_size"] = [s for s in saved["train_size"] if s in sizes]
    for key in ("epochs", "batch_size"):  # a mapping keeps only the planned tasks' (or sizes') entries
        value = saved.get(key)
        if isinstance(value, dict):
            by_size = {int(k): v for k, v in value.items() if k.isdigit()}  # JSON made the sizes strings
            value = {s: by_size[s] for s in sizes if s in by_size} or {k: v for k, v in value.items() if k in tasks}
        if value is not None:
            raw[key] = value
    return raw


def plan(out_dir: str | Path, *, min_effect: float | None = None, max_seeds: int = 10,
         baseline: str = BASELINE) -> tuple[dict | None, list[str]]:
    """(the spec to run, or None when every comparison is decided; lines saying why)."""
    out_dir = Path(out_dir)
    saved = read_json(out_dir / SPEC_FILE, kind="spec")
    records = read_records(out_dir, on_bad=lambda *_: None)  # the report names files that are not records
    found = undecided(records, baseline=baseline, min_effect=min_effect)
    if not found:
        return None, ["every comparison is decided: no seeds to add"]
    wanted = [c.verdict.needed or max_seeds + 1 for c in found]
    count = min(max(wanted), max_seeds)
    lines = [f"{c.cell['method']} vs {c.baseline['method']} on {c.cell['task']}: {c.verdict.have} seeds, "
             + (f"needs {n}" if n <= max_seeds else f"needs more than --max-seeds {max_seeds}: {count} planned")
             for c, n in zip(found, wanted, strict=True)]
    raw = plan_raw(saved, found, seed_list(saved, records, count))
    spec = parse_spec(raw, source="plan-seeds")
    if not continues(saved, json.loads(json.dumps(spec.identity()))):  # never a spec the folder would refuse
        raise ValueError(f"{out_dir}: the planned spec is not a part of the folder's sweep")
    return raw, lines


def run(args) -> list[str]:
    """The command: write the spec and say what it adds and how to run it."""
    raw, lines = plan(args.dir, min_effect=args.min_effect, max_seeds=args.max_seeds, baseline=args.baseline)
    if raw is None:
        return lines
    out = Path(args.out) if args.out else Path(args.dir) / PLAN_FILE
    write_text(out, yaml.safe_dump(raw, sort_keys=False))
    return [*lines, f"wrote {out}: peftbench sweep {out} --out {args.dir} --resume runs only the new seeds"]
