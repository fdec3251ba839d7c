"""Result records: one JSON file per trial, its schema in one dataclass, written atomically by one
function, read back without torch.

Every record is built by ``build_record`` from the trial's config and, when it ran to its end, its
``TrialResults`` (ok, failed and lost trials alike); ``new_record`` is the schema's constructor beneath
it. A trial builds its record and hands it to whoever holds it at the end: under Ray
Tune it travels with the trial's last result to the driver, which writes it, so records arrive
even when workers share no filesystem; ``peftbench trial`` writes its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from peftbench.files import read_json, write_text
from peftbench.harness.provenance import provenance
from peftbench.tasks.metrics import COUNTS, EXAMPLES_COUNT, HIGHER, INVALID_COUNT, NOT_COMPUTED
from peftbench.tasks.metrics import LOWER as LOWER  # the directions records name, for reports (which import no task)

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
    # "fixtures" or "hub:<path>/<config>@<revision>" (a mixture: "fixtures" or "task=source; …")
    data_source: str | None = None
    model_source: str | None = None  # "config:tiny-t5", "hub:<id>@<commit>" or "path:<folder>"
    text_format: dict | None = None  # the inputs' task prefix and the targets' label form
    epochs: int | None = None
    # examples per optimizer step, over all workers (older records name it batch_size)
    examples_per_step: int | None = None
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
    metric_directions: dict | None = None  # each metric's name -> higher | lower (which way is better)
    score_direction: str | None = None  # which way val_score and test_score are better
    scored_metrics: list | None = None  # the metrics val_score and test_score average (a mixture's: per member)
    # each task's name (a mixture's: each member's) -> rank, paper_name, vision, metrics (tasks.task_facts):
    # what reports need of a task, so they never import the task registry
    task_facts: dict | None = None
    # a mixture's, per member: data_source, train_examples, sampling_probability, and val_score and
    # test_score at the best validation (the best mean over members); None for a single task
    members: dict | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    trainable_pct: float | None = None
    peak_memory_bytes: int | None = None
    memory_measured_by: str | None = None
    peak_rss_bytes: int | None = None  # the process's peak resident size (CPU), secondary
    modules_file: str | None = None  # the trained parameters, with save_modules (safetensors)
    time_per_epoch_s: float | None = None  # wall seconds, the mean over epochs_s
    epochs_s: list | None = None  # each epoch's training, wall seconds
    cpu_time_per_epoch_s: float | None = None  # the process's CPU seconds, the mean over epochs_cpu_s
    epochs_cpu_s: list | None = None  # each epoch's training, the process's CPU seconds (time.process_time)
    wall_time_s: float | None = None
    cpu_time_s: float | None = None  # the trial process's CPU seconds, start-up and evaluation included
    finished_at: float | None = None
    provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


# Every record of this schema has these; the others were added later and readers default them.
KEYS = (
    "schema", "trial_id", "status", "error", "model", "method", "method_options", "task",
    "learning_rate", "seed", "epochs", "val_metrics", "best_epoch", "val_score",
    "test_metrics", "test_score", "trainable_params", "total_params", "trainable_pct",
    "peak_memory_bytes", "memory_measured_by", "time_per_epoch_s", "provenance",
)
OPTIONAL_KEYS = tuple(f.name for f in fields(Record) if f.name not in KEYS)
_COPIED = ("model", "method", "method_options", "task", "mixture", "learning_rate", "seed", "train_size", "budget",
           "epochs")


@dataclass(frozen=True, kw_only=True)
class TrialResults:
    """What a trial that ran to its end hands ``build_record``: its validations and test, what it ran on
    and at what batch, what it cost. Plain data (metrics dicts, numbers, strings), no torch."""

    val_metrics: list  # one metrics dict per validation (a mixture's: member -> its metrics)
    val_scores: list  # the score of each validation
    evaluated_at: list  # {"epoch", "step"} of each validation
    best: int  # the index of the best validation (by score_direction)
    test_metrics: dict
    test_score: float
    metric_directions: dict
    score_direction: str
    scored_metrics: list
    members: dict | None  # a mixture's per-member figures (Record.members); None for a single task
    data_source: str
    model_source: str
    text_format: dict
    epochs: int
    params: tuple[int, int, float]  # (trainable, total, trainable %)
    memory: tuple[int | None, str]  # (peak bytes, how measured)
    peak_rss_bytes: int | None
    epoch_times: list
    micro_batch: int
    accumulation: int
    batch_chosen_by: str
    workers: int
    precision: dict
    modules_file: str | None = None
    epoch_cpu_times: list = field(default_factory=list)  # the process's CPU seconds of each epoch

    @property
    def best_epoch(self) -> int:
        return self.evaluated_at[self.best]["epoch"]

    @property
    def best_step(self) -> int:
        return self.evaluated_at[self.best]["step"]

    @property
    def val_score(self) -> float:
        return self.val_scores[self.best]


def build_record(cfg, *, status: str, results: TrialResults | None = None, error: str | None = None,
                 display_name: str | None = None, wall_time_s: float | None = None,
                 cpu_time_s: float | None = None, finished_at: float | None = None) -> dict:
    """The record of trial ``cfg`` (a ``TrialConfig``): the one place a trial's results become record
    fields, for a trial that ran (``results``), failed (``error``) or was lost (``error``, no results)."""
    fields_of_results = {} if results is None else {
        "data_source": results.data_source, "model_source": results.model_source,
        "text_format": results.text_format, "epochs": results.epochs, "val_metrics": results.val_metrics,
        "evaluated_at": results.evaluated_at, "best_epoch": results.best_epoch,
        "best_step": results.best_step, "val_score": results.val_score,
        "test_metrics": results.test_metrics, "test_score": results.test_score,
        "metric_directions": results.metric_directions, "score_direction": results.score_direction,
        "scored_metrics": results.scored_metrics,
        "members": results.members, "trainable_params": results.params[0], "total_params": results.params[1],
        "trainable_pct": results.params[2], "peak_memory_bytes": results.memory[0],
        "memory_measured_by": results.memory[1], "peak_rss_bytes": results.peak_rss_bytes,
        "time_per_epoch_s": sum(results.epoch_times) / len(results.epoch_times), "epochs_s": results.epoch_times,
        "cpu_time_per_epoch_s": (sum(results.epoch_cpu_times) / len(results.epoch_cpu_times)
                                 if results.epoch_cpu_times else None),
        "epochs_cpu_s": results.epoch_cpu_times or None,
        "examples_per_step": results.micro_batch * results.accumulation * results.workers,
        "micro_batch_size": results.micro_batch, "accumulation_steps": results.accumulation,
        "workers": results.workers, "batch_chosen_by": results.batch_chosen_by, "precision": results.precision,
        "modules_file": results.modules_file,
    }
    return new_record(cfg, status=status, error=error, display_name=display_name, wall_time_s=wall_time_s,
                      cpu_time_s=cpu_time_s, finished_at=finished_at, **fields_of_results)


def new_record(cfg, **results) -> dict:
    """The schema's record of trial ``cfg`` (a ``TrialConfig``) with ``results`` given as record fields
    (status and what it measured); trials use ``build_record``, tests make records with this."""
    config = cfg.to_dict()
    base = {k: config.get(k) for k in _COPIED}
    return validate(Record(trial_id=cfg.trial_id, config=config, provenance=provenance(),
                           task_facts=facts_of(cfg.member_tasks), **{**base, **results}).to_dict())


def facts_of(tasks) -> dict | None:
    """``Record.task_facts`` of ``tasks``: those this process knows (a lost trial's driver may not have
    registered a task file's task); None where it knows none."""
    from peftbench.tasks import task_facts, task_names  # the registry's modules only where a record is built

    known = set(task_names())
    return {t: task_facts(t) for t in tasks if t in known} or None


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
          "examples_per_step": _NUMBER, "epochs": _NUMBER,
          "val_metrics": (list,), "best_epoch": _NUMBER, "val_score": _NUMBER, "test_metrics": (dict,),
          "test_score": _NUMBER, "trainable_params": _NUMBER, "total_params": _NUMBER, "trainable_pct": _NUMBER,
          "peak_memory_bytes": _NUMBER, "time_per_epoch_s": _NUMBER,
          "cpu_time_per_epoch_s": _NUMBER, "provenance": (dict,), "train_size": _NUMBER,
          "members": (dict,), "mixture": (list,), "data_source": (str,), "task_facts": (dict,)}


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


def score_direction(record: dict) -> str:
    """Which way a record's scores are better; records from before directions were recorded: higher,
    as every metric the authors report is."""
    return record.get("score_direction") or HIGHER


def metric_names(metrics: dict | None) -> list[str]:
    """The metrics of one metrics dict, its counts (``tasks.metrics.COUNTS``) left out."""
    return [k for k in (metrics or {}) if k not in COUNTS]


def output_counts(metrics: dict | None) -> tuple[float, float]:
    """(invalid outputs, outputs scored) of one metrics dict (``tasks.metrics.COUNTS``); NaN where a
    record does not say."""
    metrics = metrics or {}
    return float(metrics.get(INVALID_COUNT, math.nan)), float(metrics.get(EXAMPLES_COUNT, math.nan))


def not_computed(metrics: dict | None) -> dict[str, str]:
    """The metrics one metrics dict could not compute where the trial ran, each with why (``tasks.metrics.COUNTS``:
    METEOR without Java, ``{"meteor": "java not found"}``); their values are NaN."""
    return dict((metrics or {}).get(NOT_COMPUTED) or {})


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
