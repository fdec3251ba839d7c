"""One trial end to end: plan its batch under the budget, train, and make its result record.
Runs with or without Ray."""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from peftbench.harness.config import TrialConfig
from peftbench.harness.records import TrialResults, build_record, read_record, record_path, write_record

log = logging.getLogger(__name__)
BUDGET_CACHE = "budget-cache.json"


def run_trial(cfg: TrialConfig, out_dir: str | Path, *, report: Callable[[dict], None] | None = None,
              write: bool = True, display_name: str | None = None, step_hook: Callable | None = None,
              epoch_lines: bool = True) -> dict:
    """Train ``cfg`` and return its record; with ``write`` (no Ray driver to hand it to), write it, and
    a trial whose ``ok`` record exists does nothing. ``display_name``: the spec's name for the method;
    ``step_hook``: called after each optimizer step (harness/train.py); ``epoch_lines``: print a line
    per epoch (a sweep prints its trials' starts and ends instead).

    Any exception (a bad option, out of memory, a non-finite loss) becomes a ``failed`` record
    with the reason, so a sweep goes on past it.
    """
    if write and (record := ok_record(record_path(out_dir, cfg.trial_id))):
        log.info("%s: already done, skipping", cfg.trial_id)
        return record
    start, cpu_start = time.perf_counter(), time.process_time()
    checkpoints = Path(out_dir) / "checkpoints" / cfg.trial_id
    try:
        results = execute(cfg, out_dir=Path(out_dir), checkpoint_dir=checkpoints, report=report,
                          step_hook=step_hook, epoch_lines=epoch_lines)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001  any failure of a trial becomes its record, never a crash
        traceback.print_exc()
        results, status, error = None, "failed", f"{type(exc).__name__}: {exc}"
    record = build_record(cfg, status=status, results=results, error=error, display_name=display_name,
                          wall_time_s=time.perf_counter() - start, cpu_time_s=time.process_time() - cpu_start,
                          finished_at=time.time())
    if write:
        write_record(out_dir, record)
    if status == "ok":
        shutil.rmtree(checkpoints, ignore_errors=True)  # the record is the product now
    return record


def ok_record(path: Path) -> dict | None:
    """The ``ok`` record at ``path``, if there is one; a file that is not a record is run over."""
    try:
        record = read_record(path)
    except FileNotFoundError:
        return None
    except (ValueError, OSError, AttributeError, TypeError) as exc:
        log.warning("%s: not a record (%s); the trial runs again", path, exc)
        return None
    return record if record["status"] == "ok" else None


def execute(cfg: TrialConfig, *, out_dir: Path, checkpoint_dir: Path, report=None, step_hook=None,
            epoch_lines: bool = True) -> TrialResults:
    """The batch plan under the budget and, on a CPU, the memory measurement (both cached in ``out_dir`` for
    the sweep's other trials), then training."""
    # torch and friends load only when a trial really runs
    from peftbench.budgets.plan import plan_batch
    from peftbench.harness.train import train
    from peftbench.tasks import use_declarations

    use_declarations(cfg.declarations)  # a task file's tasks, from what the driver sent: no file needed here
    # Before the model is loaded: on a GPU the budget's probes need the card to themselves.
    plan = plan_batch(trial_workload(cfg), batch=cfg.step_batch, fixed_batch=cfg.fixed_batch,
                      budget_bytes=cfg.budget_bytes, cache_path=out_dir / BUDGET_CACHE, log=print)
    modules = out_dir / "modules" / f"{cfg.trial_id}.safetensors" if cfg.save_modules else None
    samples = samples_path(out_dir, cfg.trial_id) if cfg.log_samples else None
    return train(cfg, plan, report=report, checkpoint_dir=checkpoint_dir, modules_file=modules, samples_file=samples,
                 step_hook=step_hook, epoch_lines=epoch_lines, memory_cache=out_dir / BUDGET_CACHE)


def trial_workload(cfg: TrialConfig):
    """What the trial's budget plans for: its method on the model it loads, every row as long as the
    longest its tasks allow. A mixture's batches come from any member: the longest source and target
    among them, and the most images (VL-T5's visual tokens lengthen the encoder's input)."""
    from peftbench.budgets.workload import Workload
    from peftbench.tasks import get_task

    members = [get_task(t) for t in cfg.member_tasks]
    return Workload(probed_model(cfg, members), cfg.method, cfg.method_options,
                    source_len=max(cfg.max_source_length or t.max_source_length for t in members),
                    target_len=max(t.max_target_length for t in members), tasks=cfg.mixture,
                    images=max(t.images_per_example for t in members))


def samples_path(out_dir: Path, trial_id: str) -> Path:
    """Where ``log_samples`` keeps a trial's test rows: ``OUT/samples/<trial_id>.jsonl``."""
    return Path(out_dir) / "samples" / f"{trial_id}.jsonl"


def probed_model(cfg: TrialConfig, members) -> str:
    """The model the trial will load, as the budget must probe it (a VL task adds its image encoder).

    Which encoder depends on where the data comes from, known only once it is loaded: ``fixtures``
    when asked for, else the hub's (``auto`` falling back to the fixtures then probes the hub's
    encoder, whose features are the larger: an overestimate, never an underestimate).
    """
    from peftbench.tasks.base import FIXTURES_SOURCE, trial_model

    try:
        source = (lambda t: FIXTURES_SOURCE) if cfg.data == "fixtures" else (lambda t: t.hub_source)
        return str(trial_model(cfg.model, members, source))
    except ValueError:
        return cfg.model  # members needing different models: setup refuses
