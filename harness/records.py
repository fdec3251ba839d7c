"""Result records: one JSON file per trial, written atomically, read back without torch."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

SCHEMA = "peftbench.result/1"
KEYS = (  # every record has these
    "schema", "trial_id", "status", "error", "model", "method", "method_options", "task",
    "learning_rate", "seed", "batch_size", "epochs", "val_metrics", "best_epoch", "val_score",
    "test_metrics", "test_score", "trainable_params", "total_params", "trainable_pct",
    "peak_memory_bytes", "memory_measured_by", "time_per_epoch_s", "provenance",
)
# Written by this version, absent from older records of the same schema; readers default them.
OPTIONAL_KEYS = ("config", "train_size", "wall_time_s", "finished_at", "workers", "micro_batch_size",
                 "accumulation_steps", "budget", "batch_chosen_by")
STATUSES = ("ok", "failed")


def record_path(out_dir: str | Path, trial_id: str) -> Path:
    return Path(out_dir) / "results" / f"{trial_id}.json"


def validate(record: dict) -> dict:
    """Check a record has the schema's keys and a known status; return it unchanged."""
    if record.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} record: schema={record.get('schema')!r}")
    missing = [k for k in KEYS if k not in record]
    if missing:
        raise ValueError(f"record {record.get('trial_id')!r} lacks keys: {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"record {record['trial_id']!r}: unknown status {record['status']!r}")
    return record


def write_record(out_dir: str | Path, record: dict) -> Path:
    """Write atomically (temp file + rename), so a killed trial never leaves half a record."""
    path = record_path(out_dir, validate(record)["trial_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_record(path: str | Path) -> dict:
    with open(path) as f:
        return validate(json.load(f))


class RecordError(ValueError):
    """A file under ``results/`` that is not a readable record; the message names the file."""


def read_records(out_dir: str | Path, *, on_bad: Callable[[Path, str], None] | None = None) -> list[dict]:
    """Every record under ``out_dir/results``, sorted by trial id.

    A file that is not a record (truncated JSON, another schema, missing keys) raises
    ``RecordError`` naming it; with ``on_bad``, ``on_bad(path, reason)`` is called instead and the
    file is left out, so a report can set it aside and say so.
    """
    records = []
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        try:
            records.append(read_record(path))
        except json.JSONDecodeError as exc:
            reason = f"not JSON (line {exc.lineno})"
        except (ValueError, OSError) as exc:  # a failed validate(), undecodable bytes, unreadable file
            reason = str(exc)
        except (AttributeError, TypeError):  # valid JSON, but an array or a scalar
            reason = "not a JSON object"
        else:
            continue
        if on_bad is None:
            raise RecordError(f"{path}: {reason}")
        on_bad(path, reason)
    return records
