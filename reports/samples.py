"""What the model said where its outputs could not be read: a few invalid test outputs per trial,
from the samples files trials keep with ``log_samples`` (``OUT/samples/<trial_id>.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

from peftbench.files import read_text
from peftbench.harness.trial import samples_path
from peftbench.reports.tables import Table

SHOWN = 3  # invalid outputs shown per trial; the file has them all


def invalid_outputs_table(records: list[dict], out_dir: str | Path) -> Table | None:
    """One row per invalid output shown (a few per trial with any), linking each trial's samples file;
    None when no ok trial had invalid outputs."""
    rows, unlogged = [], []
    for r in records:
        if r["status"] != "ok" or not (r.get("test_metrics") or {}).get("invalid"):
            continue
        path = samples_path(Path(out_dir), r["trial_id"])
        if not path.is_file():
            unlogged.append(r["trial_id"])
            continue
        rel = path.relative_to(out_dir).as_posix()
        lines = read_text(path, kind="record").splitlines()
        invalid = [s for s in map(json.loads, lines) if s.get("invalid")]
        rows += [[r["trial_id"], r["task"], repr(s["output"]), repr(s["target"]), rel] for s in invalid[:SHOWN]]
    if not rows and not unlogged:
        return None
    notes = [f"At most {SHOWN} invalid test outputs per trial; every test row with its input, target, output "
             "and scores is in the trial's samples file."]
    if unlogged:
        notes.append(f"{len(unlogged)} trials with invalid outputs kept no samples (e.g. {unlogged[0]}): "
                     "log_samples: true in the spec keeps them.")
    return Table("invalid-outputs", "Invalid outputs", ["trial", "task", "output", "target", "samples file"],
                 rows, notes)
