"""Running sweeps from the tests: a spec written from a few changes, a ``peftbench sweep`` in its own
process (to kill it), the records it left, and the tables of its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from peftbench.harness.records import read_records

PEFTBENCH = [sys.executable, "-m", "peftbench"]


def write_spec(path: Path, **changes) -> Path:
    """A small adapter sweep on sst2 (two learning rates, two seeds), with ``changes`` over it."""
    spec = {"name": path.stem, "model": "tiny-t5", "data": "fixtures", "methods": ["adapter"],
            "tasks": ["sst2"], "learning_rates": [1e-2, 3e-3], "seeds": [0, 1], "epochs": 2,
            "batch_size": 32, "warmup_steps": 2, "max_failures": 2}
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(spec: Path, out: Path, *extra: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """``peftbench sweep`` in a process of its own, output piped, so a test can kill it; ``env``: variables
    to set beside this process's own."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([*PEFTBENCH, "sweep", str(spec), "--out", str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def records_in(out: Path) -> dict[str, dict]:
    """The records under ``out`` by trial id (none yet: empty)."""
    return {r["trial_id"]: r for r in read_records(out)} if (out / "results").exists() else {}


def table_rows(markdown: str, title: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, rows by first cell) of one markdown table; bold marks dropped."""
    section = markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip().strip("*") for c in line.strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("| ")]
    return rows[0], {r[0]: r[1:] for r in rows[1:]}


def sweep_features_first(spec: Path, out: Path, features: Path, tasks, encoder: str, capsys) -> tuple[list, str]:
    """``peftbench sweep spec`` in this process, every grid point ok, and the sweep's feature step checked:
    one cache entry per task of ``tasks``, each printed ready for ``encoder``, its manifest and shards all
    written before the first trial began. The records, and what the sweep printed."""
    from peftbench.cli.main import main
    from peftbench.harness.spec import load_spec

    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    records = read_records(out)
    assert {r["trial_id"] for r in records} == {cfg.trial_id for cfg in load_spec(spec).trials()}
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    manifests = sorted(features.glob("*.json"))
    assert len(manifests) == len(tasks)
    for task in tasks:
        assert f"[features] {task} ({encoder}, fixtures): ready" in printed
    first_start = min(r["finished_at"] - r["wall_time_s"] for r in records)
    for manifest in manifests:
        for path in (manifest, *manifest.with_suffix("").glob("*.safetensors")):  # the manifest and its shards
            assert path.stat().st_mtime < first_start, f"{path.name} written after a trial began"
    return records, printed
