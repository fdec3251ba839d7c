"""What a sweep will cost before it runs: seconds per trial from a step-time model, totals in
device-hours and in wall time on the slots that run trials side by side.

A trial's seconds (a model, not a measurement; each term says where its figure came from):
    start-up + epochs · ⌈train examples / batch⌉ · step seconds
             + (validations · validation examples + test examples) · seconds per evaluated example
The step seconds are bench-step's median (engine/bench.py) for the device, model, method and shape,
kept in ``StepTimes``; a shape not measured is scaled from the nearest measured micro-batch of the same
method, linearly in examples (``extrapolated``), never silently. Evaluation (generation) has a model of
its own: seconds per example. The wall time on ``slots`` is the longest-first schedule of every trial
(Graham 1969: within 4/3 of the best possible), so one long trial is never hidden in an average.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from pathlib import Path

from peftbench.budgets.cache import cache_key, read_entries
from peftbench.files import write_json

SCHEMA = "peftbench.step-times/1"
FILENAME = "step-times.json"
PREDICTION_FILE = "prediction.json"  # what the sweep predicted before it ran, for the report


@dataclass(frozen=True)
class StepTime:
    seconds: float
    how: str  # "measured" or "extrapolated from micro-batch N"


class StepTimes:
    """Measured step seconds by key (device, model, method, micro_batch, source_len, target_len), in a
    JSON file like the budget cache's, so a second dry run measures nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def entries(self) -> dict:
        return read_entries(self.path, SCHEMA)

    def put(self, key: dict, seconds: float) -> None:
        entries = self.entries()
        entries[cache_key(key)] = {"key": key, "seconds": seconds}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"schema": SCHEMA, "entries": entries}, indent=2, sort_keys=True)

    def lookup(self, key: dict, entries: dict | None = None) -> StepTime | None:
        """The measured step time of ``key``; else the nearest measured micro-batch of the same key
        scaled linearly; None when nothing of that device, model, method and lengths was measured."""
        entries = self.entries() if entries is None else entries
        if (exact := entries.get(cache_key(key))) is not None:
            return StepTime(exact["seconds"], "measured")
        rest = {k: v for k, v in key.items() if k != "micro_batch"}
        kin = [e for e in entries.values() if {k: v for k, v in e["key"].items() if k != "micro_batch"} == rest]
        if not kin:
            return None
        near = min(kin, key=lambda e: abs(math.log(e["key"]["micro_batch"] / key["micro_batch"])))
        scale = key["micro_batch"] / near["key"]["micro_batch"]
        return StepTime(near["seconds"] * scale, f"extrapolated from micro-batch {near['key']['micro_batch']}")


@dataclass(frozen=True, kw_only=True)
class Group:
    """Trials of one method on one task (and train size) that cost the same: what a dry run prints a row for."""

    method: str
    task: str
    trials: int
    batch: int  # examples per optimizer step
    epochs: int
    train_examples: int
    validations: int  # evaluations of the validation split per trial
    val_examples: int
    test_examples: int

    @property
    def steps(self) -> int:
        """Optimizer steps of one trial."""
        return self.epochs * math.ceil(self.train_examples / self.batch)


@dataclass(frozen=True, kw_only=True)
class Rates:
    """The model's other inputs: seconds per evaluated example and a trial's fixed start-up."""

    eval_s_per_example: float
    startup_s: float
    how: str  # where they came from (a measured sweep's records, or a default), printed with them


def trial_seconds(group: Group, step: StepTime, rates: Rates) -> float:
    """One trial's predicted seconds (the formula of this module's docstring)."""
    evaluated = group.validations * group.val_examples + group.test_examples
    return rates.startup_s + group.steps * step.seconds + evaluated * rates.eval_s_per_example


def wall_seconds(trials: list[float], slots: int) -> float:
    """The sweep's wall time when ``slots`` trials run at once, longest first (Graham's LPT)."""
    free = [0.0] * max(1, slots)
    for seconds in sorted(trials, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


@dataclass(frozen=True)
class Row:
    group: Group
    step: StepTime | None
    seconds: float | None  # per trial; None where no step time of the method was measured


def predict(groups: list[Group], step_times: dict[tuple[str, str], StepTime | None], rates: Rates) -> list[Row]:
    """Each group's prediction from its step time (by (method, task); None: not calibrated)."""
    rows = []
    for g in groups:
        step = step_times.get((g.method, g.task))
        rows.append(Row(g, step, None if step is None else trial_seconds(g, step, rates)))
    return rows


def totals(rows: list[Row], slots: int) -> dict:
    """Device-hours and wall hours on ``slots`` over the predicted rows; the trials left unpredicted."""
    # one entry per distinct cost with its count would be smaller; 10,000 floats sort in milliseconds
    trials = [r.seconds for r in rows if r.seconds is not None for _ in range(r.group.trials)]
    return {"device_hours": sum(trials) / 3600, "wall_hours": wall_seconds(trials, slots) / 3600 if trials else 0.0,
            "slots": slots, "unpredicted_trials": sum(r.group.trials for r in rows if r.seconds is None)}


def prediction(rows: list[Row], rates: Rates, slots: int) -> dict:
    """What ``PREDICTION_FILE`` keeps: per method × task the seconds of one trial (None: not predicted),
    the totals and the assumptions, as plain data."""
    return {"rows": [{"method": r.group.method, "task": r.group.task, "trials": r.group.trials,
                      "seconds": r.seconds, "step": None if r.step is None else r.step.how} for r in rows],
            **totals(rows, slots), "assumptions": rates.how}


def lines(rows: list[Row], rates: Rates, slots: int) -> list[str]:
    """The dry run's table: per method × task the batch, steps, seconds per trial and where the step
    time came from; then the totals and the assumptions."""
    wide = max([len("method"), *(len(r.group.method) for r in rows)])
    out = [f"{'method':<{wide}} {'task':<10} {'trials':>6} {'batch':>5} {'steps':>7} {'s/trial':>9}  step time"]
    for r in rows:
        g = r.group
        shown = "—" if r.seconds is None else f"{r.seconds:.1f}"
        how = "not calibrated" if r.step is None else f"{r.step.seconds * 1000:.1f} ms/step, {r.step.how}"
        out.append(f"{g.method:<{wide}} {g.task:<10} {g.trials:>6} {g.batch:>5} {g.steps:>7} {shown:>9}  {how}")
    t = totals(rows, slots)
    out.append(f"total: {t['device_hours']:.2f} device-hours; {t['wall_hours']:.2f} h wall on {slots} slot(s)"
               + (f"; {t['unpredicted_trials']} trials not predicted (no step time)"
                  if t["unpredicted_trials"] else ""))
    out.append(f"evaluation {rates.eval_s_per_example * 1000:.1f} ms/example and start-up {rates.startup_s:.1f} s "
               f"per trial: {rates.how}")
    return out


def groups_of(spec, sizes) -> list[Group]:
    """The spec's grid as groups of equal-cost trials: one per method, task and train size (learning
    rates and seeds cost alike), each trial config built once, so a 10,000-point grid costs a few
    dozen. ``sizes(task, train_size)``: (train, validation, test) examples; None skips the group."""
    counts: dict[tuple, int] = {}
    for p in spec.points():
        key = (p["method"], p["task"], p["train_size"])
        counts[key] = counts.get(key, 0) + 1
    out = []
    for (method, task, train_size), trials in counts.items():
        found = sizes(task, train_size)
        if found is None:
            continue
        cfg = spec.trial(method, task, spec.learning_rates[0], spec.seeds[0], train_size)
        train, val, test = found
        steps = cfg.epochs * math.ceil(train / cfg.batch_size)
        validations = steps // cfg.eval_every_steps if cfg.eval_every_steps else cfg.epochs
        out.append(Group(method=method, task=task, trials=trials, batch=cfg.batch_size, epochs=cfg.epochs,
                         train_examples=train, validations=max(1, validations), val_examples=val,
                         test_examples=test))
    return out
