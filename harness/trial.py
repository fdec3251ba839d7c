"""One trial end to end: train, then write its result record. Runs with or without Ray."""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from harness.config import TrialConfig
from harness.provenance import provenance
from harness.records import SCHEMA, read_record, record_path, write_record

log = logging.getLogger(__name__)


def run_trial(cfg: TrialConfig, out_dir: str | Path, *, report: Callable[[dict], None] | None = None,
              write: bool = True) -> dict:
    """Train ``cfg`` and record the outcome; a trial whose ``ok`` record exists does nothing.

    Any exception (a bad option, out of memory, a non-finite loss) becomes a ``failed`` record
    with the reason, so a sweep goes on past it. ``write=False``: a worker other than rank 0.
    """
    path = record_path(out_dir, cfg.trial_id)
    if path.exists():
        record = read_record(path)
        if record["status"] == "ok":
            log.info("%s: already done, skipping", cfg.trial_id)
            return record
    start = time.perf_counter()
    try:
        from harness.train import train  # torch and friends load only when a trial really runs

        checkpoints = Path(out_dir) / "checkpoints" / cfg.trial_id
        results = train(cfg, report=report, checkpoint_dir=checkpoints,
                        budget_cache=Path(out_dir) / "budget-cache.json")
        status, error = "ok", None
        shutil.rmtree(checkpoints, ignore_errors=True)  # the record is the product now
    except Exception as exc:  # noqa: BLE001  any failure of a trial becomes its record, never a crash
        traceback.print_exc()
        results, status, error = {}, "failed", f"{type(exc).__name__}: {exc}"
    record = new_record(cfg, status=status, error=error, wall_time_s=time.perf_counter() - start,
                        finished_at=time.time(), **results)
    if write:
        write_record(out_dir, record)
    return record


def new_record(cfg: TrialConfig, **fields) -> dict:
    """A record with every schema key; fields a failed trial never reached stay ``None``."""
    config = asdict(cfg)
    record = {
        "schema": SCHEMA,
        "trial_id": cfg.trial_id,
        "config": config,
        **{k: config[k] for k in ("model", "method", "method_options", "task", "learning_rate",
                                   "seed", "batch_size", "budget", "epochs", "train_size")},
        "micro_batch_size": None, "accumulation_steps": None, "batch_chosen_by": None,
        "val_metrics": [], "best_epoch": None, "val_score": None, "test_metrics": None,
        "test_score": None, "trainable_params": None, "total_params": None, "trainable_pct": None,
        "peak_memory_bytes": None, "memory_measured_by": None, "time_per_epoch_s": None,
        "wall_time_s": None, "finished_at": None, "workers": None,
        "provenance": provenance(),
    }
    record.update(fields)
    return record
