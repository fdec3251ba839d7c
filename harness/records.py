"""Result records: one JSON file per trial, its schema in one dataclass, written atomically by one
function, read back without torch.

A trial builds its record (``new_record``) and hands it to whoever holds it at the end: under Ray
Tune it travels with the trial's last result to the driver, which writes it, so records arrive
even when workers share no filesystem; ``peftbench trial`` writes its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from peftbench.files import read_json, write_text
from peftbench.harness.provenance import provenance

SCHEMA = "peftbench.result/1"
STATUSES = ("ok", "failed")


@dataclass(frozen=True, kw_only=True)
class Record:
    """Everything one trial left behind; fields a failed trial never reached stay ``None``."""

    trial_id: str
    status: str  # ok | failed
    error: str | None = None  # "ExceptionType: message" of a failed trial
    config: dict = field(default_factory=dict)  # the whole TrialConfig
    # the grid point and the settings a report groups by, copied from config
    model: str | None = None
    method: str | None = None
    method_options: dict = field(default_factory=dict)
    display_name: str | None = None  # the spec's name for the method in tables and figures
    task: str | None = None  # a mixture trial's: the mixture's name
    mixture: list | None = None  # a mixture trial's member tasks; None for a single task
    learning_rate: float | None = None
    seed: int | None = None
    train_size: int | None = None
    budget: str | None = None
    # what ran, on what
    data_source: str | None = None  # "fixtures" or "hub:<path>/<config>@<revision>" (a mixture: "fixtures" or "task=source; …")
    model_source: str | None = None  # "config:tiny-t5", "hub:<id>@<commit>" or "path:<folder>"
    text_format: dict | None = None  # the inputs' task prefix and the targets' label form
    epochs: int | None = None
    batch_size: int | None = None  # examples per optimizer step, over all workers
    micro_batch_size: int | None = None
    accumulation_steps: int | None = None
    batch_chosen_by: str | None = None  # fixed | measured | estimated
    workers: int | None = None
    precision: dict | None = None  # the arithmetic: fp32 or bf16, and torch's fp32 matmul setting (TF32 or not)
    # results
    # one dict per validation (every epoch, or N steps); a mixture's: member -> its metrics
    val_metrics: list = field(default_factory=list)
    evaluated_at: list = field(default_factory=list)  # {"epoch", "step"} of each validation
    best_epoch: int | None = None
    best_step: int | None = None  # optimizer steps done at the best validation
    val_score: float | None = None  # a mixture's: the mean over members of their scores
    test_metrics: dict | None = None  # a mixture's: member -> its metrics
    test_score: float | None = None
    # a mixture's, per member: data_source, train_examples, sampling_probability, and val_score and
    # test_score at the best validation (the best mean over members); None for a single task
    members: dict | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    trainable_pct: float | None = None
    peak_memory_bytes: int | None = None
    memory_measured_by: str | None = None
    peak_rss_bytes: int | None = None
    modules_file: str | None = None  # the trained parameters, with save_modules (safetensors)  # the process's peak resident size (CPU), secondary
    time_per_epoch_s: float | None = None
    wall_time_s: float | None = None
    finished_at: float | None = None
    provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


# Every record of this schema has these; the others were added later and readers default them.
KEYS = (
    "schema", "trial_id", "status", "error", "model", "method", "method_options", "task",
    "learning_rate", "seed", "batch_size", "epochs", "val_metrics", "best_epoch", "val_score",
    "test_metrics", "test_score", "trainable_params", "total_params", "trainable_pct",
    "peak_memory_bytes", "memory_measured_by", "time_per_epoch_s", "provenance",
)
OPTIONAL_KEYS = tuple(f.name for f in fields(Record) if f.name not in KEYS)
_COPIED = ("model", "method", "method_options", "task", "mixture", "learning_rate", "seed", "train_size", "budget",
           "epochs", "batch_size")


def new_record(cfg, **results) -> dict:
    """The record of trial ``cfg`` (a ``TrialConfig``) with ``results`` (status and what it measured)."""
    config = cfg.to_dict()
    base = {k: config.get(k) for k in _COPIED}
    return validate(Record(trial_id=cfg.trial_id, config=config, provenance=provenance(),
                           **{**base, **results}).to_dict())


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
        raise ValueError(f"record {str(record['trial_id'])[:80]!r}: unknown status {str(record['status'])[:80]!r}")
    for key, kinds in _TYPES.items():
        value = record.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ValueError(f"record {str(record['trial_id'])[:80]!r}: {key} is a {type(value).__name__}, "
                             f"expected {' or '.join(k.__name__ for k in kinds)}")
    return record


# What readers compute with, by type (None where a trial never got there): a record that says
# ``test_score: "high"`` is set aside like any other file that is not a record.
_NUMBER = (int, float)
_TYPES = {"trial_id": (str,), "model": (str,), "method": (str,), "task": (str,), "error": (str,),
          "method_options": (dict,), "learning_rate": _NUMBER, "seed": _NUMBER, "batch_size": _NUMBER,
          "epochs": _NUMBER, "val_metrics": (list,), "best_epoch": _NUMBER, "val_score": _NUMBER, "test_metrics": (dict,),
          "test_score": _NUMBER, "trainable_params": _NUMBER, "total_params": _NUMBER, "trainable_pct": _NUMBER,
          "peak_memory_bytes": _NUMBER, "time_per_epoch_s": _NUMBER, "provenance": (dict,), "train_size": _NUMBER,
          "members": (dict,), "mixture": (list,), "data_source": (str,)}


def write_record(out_dir: str | Path, record: dict) -> Path:
    """The one writer of records: atomically (peftbench/files.py: temp file + rename, no symlink
    followed), so a killed writer never leaves half a record, readable as the user's umask allows."""
    path = record_path(out_dir, validate(record)["trial_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(record, indent=2, sort_keys=True))


def read_record(path: str | Path, *, follow: bool = False) -> dict:
    """The record in ``path``: a regular file under the records' size cap (``follow``: the user named
    this path, a symlink is theirs to make)."""
    return validate(read_json(path, kind="record", follow=follow))


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


SHOWN_BAD = 3  # files named when some are not records; the rest are counted


def bad_file_lines(bad: list[tuple[Path, str]], *, shown: int = SHOWN_BAD) -> list[str]:
    """What a report says of the files under ``results/`` that are not records: the first few by name
    and reason, then how many more (10,000 junk files make four lines, not a page)."""
    lines = [f"skipped {path}: {reason[:200]}" for path, reason in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"skipped {len(bad) - shown} more files under {bad[0][0].parent} that are not records")
    return lines
