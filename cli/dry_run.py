"""What ``peftbench sweep SPEC --dry-run`` adds to the grid's description: per method × task the batch,
optimizer steps and, where a step time was measured (``OUT/step-times.json``, harness/cost.py), the
predicted seconds per trial and the totals. Nothing is downloaded and nothing measured here."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from peftbench.files import write_json
from peftbench.harness import cost
from peftbench.harness.folder import SPEC_FILE


def fixture_sizes(spec):
    """(train, validation, test) examples of a task on the offline fixtures; None for hub data (its
    sizes need the data, which a dry run never downloads) and for mixtures."""
    from peftbench.tasks import get_task

    @functools.cache  # one read of a task's fixtures, however many methods run on it
    def split_sizes(task: str) -> dict | None:
        declared = get_task(task)
        try:
            return declared.split_sizes(declared.load_fixtures())
        except OSError:  # a task file's own data has no fixtures: its sizes are unknown here
            return None

    def sizes(task: str, train_size: int | None):
        if spec.settings.get("data") != "fixtures" or task in spec.mixtures:
            return None
        if (found := split_sizes(task)) is None:
            return None
        train = found["train"] if train_size is None else min(train_size, found["train"])
        return train, found["validation"], found["test"]

    return sizes


def step_key(spec, group: cost.Group, device: str) -> dict:
    """What a step time is measured for: the device, model, method, micro-batch and task (its lengths)."""
    return {"device": device, "model": spec.settings.get("model"), "method": group.method,
            "micro_batch": group.batch, "task": group.task}


def calibrate(spec, out: str | None, *, repeats: int = 3, log=print) -> int:
    """Measure with bench-step (engine/bench.py: plain AdamW, random weights, wall clock) the step time of
    every group that ``OUT/step-times.json`` lacks; how many it measured (0 on a second run)."""
    from peftbench.engine.bench import bench_step
    from peftbench.harness.provenance import device_name
    from peftbench.tasks import get_task

    times, device = cost.StepTimes(Path(out or ".") / cost.FILENAME), device_name()
    entries, done = times.entries(), 0
    for group in cost.groups_of(spec, fixture_sizes(spec)):
        key = step_key(spec, group, device)
        if cost.cache_key(key) in entries:
            continue
        task, method = get_task(group.task), spec.method(group.method)
        (row, *_) = bench_step(key["model"], [method.name], shapes=[(group.batch, task.max_source_length)],
                               target_len=task.max_target_length, options=dict(method.options), repeats=repeats)
        times.put(key, row["median_step_s"])
        log(f"calibrated {group.method} on {group.task} at micro-batch {group.batch}: "
            f"{row['median_step_s']:.4f} s/step")
        done += 1
    return done


def step_times(spec, groups: list[cost.Group], out: str | None) -> dict:
    """Each group's step time from ``OUT/step-times.json`` (none without one: nothing is measured here)."""
    path = Path(out or ".") / cost.FILENAME
    if not path.exists():
        return {}
    from peftbench.harness.provenance import device_name  # imports torch: only when there is a cache to read

    times, device = cost.StepTimes(path), device_name()
    entries = times.entries()
    return {(g.method, g.task): times.lookup(step_key(spec, g, device), entries) for g in groups}


RATES = cost.Rates(eval_s_per_example=0.0, startup_s=0.0,
                   how="not calibrated: left out of the seconds above (a lower bound)")


def rows(spec, out: str | None) -> tuple[list[cost.Row], int]:
    """The prediction's rows and the slots it schedules on (this machine's; a cluster's: not yet)."""
    groups = cost.groups_of(spec, fixture_sizes(spec))
    slots = max(1, (os.cpu_count() or 1) // spec.cpus_per_trial)
    return cost.predict(groups, step_times(spec, groups, out), RATES), slots


def lines(spec, out: str | None) -> list[str]:
    predicted, slots = rows(spec, out)
    if not predicted:
        return ["cost: no task sizes known without downloading (hub data): no prediction"]
    return cost.lines(predicted, RATES, slots)


def write_prediction(spec, out: str) -> Path | None:
    """``OUT/prediction.json`` before a new sweep runs (a resumed one keeps its first), for the report's
    predicted-against-measured table; nothing when no trial could be predicted."""
    folder = Path(out)
    if (folder / SPEC_FILE).exists() or (folder / cost.PREDICTION_FILE).exists():
        return None
    predicted, slots = rows(spec, out)
    if not any(r.seconds is not None for r in predicted):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return write_json(folder / cost.PREDICTION_FILE, cost.prediction(predicted, RATES, slots), indent=1)
    except OSError:  # an --out the sweep cannot use: its own check says so in one line
        return None
