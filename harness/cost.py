"""What a sweep will cost before it runs: seconds per trial from measured parts, totals in device-hours
and in wall time on the slots that run trials side by side.

A trial's seconds (a model, not a measurement; each term says where its figure came from):
    start-up + epochs · ⌈train examples / batch⌉ · step seconds
             + (validations · validation examples + test examples) · seconds per generated row
and each slot's worker pays a process start once (Ray reuses it for the next trial). The step seconds
are bench-step's median (engine/bench.py) for the device, model, method and the lengths the data gives
(harness/calibrate.py); a micro-batch not measured is scaled from the nearest measured one of the same
method, linearly in examples (``extrapolated``), never silently. Generation has a model of its own:
seconds per row, measured on a batch of the rows a trial generates at once, decoded to the task's full
output length (``generation`` arguments: beams, maximum length), so a trained model that stops at its
answer takes less. Start-up (model, method, data) is measured per model and task. Each figure is kept in
``StepTimes`` (``OUT/step-times.json``), so a second dry run measures nothing. The wall time on ``slots``
is the longest-first schedule of every trial (Graham 1969: within 4/3 of the best possible), so one long
trial is never hidden in an average.
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
class Figure:
    """One measured (or scaled) part of a trial's cost, and how it was found, printed beside it."""

    seconds: float
    how: str  # "measured …" or "extrapolated from micro-batch N"


class StepTimes:
    """The calibration's figures by key (a dict naming its ``kind``: step, generation, startup, process;
    the device, model, method …), in a JSON file like the budget cache's, so a second dry run measures
    nothing. Each entry keeps its seconds and how they were measured."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def entries(self) -> dict:
        return read_entries(self.path, SCHEMA)

    def put(self, key: dict, seconds: float, how: str = "measured") -> None:
        entries = self.entries()
        entries[cache_key(key)] = {"key": key, "seconds": seconds, "how": how}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"schema": SCHEMA, "entries": entries}, indent=2, sort_keys=True)

    def get(self, key: dict, entries: dict | None = None) -> Figure | None:
        """The figure measured for ``key`` exactly; None when it was not."""
        found = (self.entries() if entries is None else entries).get(cache_key(key))
        return None if found is None else Figure(found["seconds"], found.get("how", "measured"))

    def lookup(self, key: dict, entries: dict | None = None) -> Figure | None:
        """The measured figure of ``key``; else the nearest measured micro-batch of the same key scaled
        linearly; None when nothing of that kind, device, model, method and task was measured."""
        entries = self.entries() if entries is None else entries
        if (exact := self.get(key, entries)) is not None:
            return exact
        rest = {k: v for k, v in key.items() if k != "micro_batch"}
        kin = [e for e in entries.values() if {k: v for k, v in e["key"].items() if k != "micro_batch"} == rest]
        if not kin:
            return None
        near = min(kin, key=lambda e: abs(math.log(e["key"]["micro_batch"] / key["micro_batch"])))
        scale = key["micro_batch"] / near["key"]["micro_batch"]
        return Figure(near["seconds"] * scale, f"extrapolated from micro-batch {near['key']['micro_batch']}")


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
    fixed_steps: int | None = None  # a spec's ``steps:`` (Hyperformer's 65,536): the trial stops there, not at epochs

    @property
    def steps(self) -> int:
        """Optimizer steps of one trial."""
        return self.fixed_steps or self.epochs * math.ceil(self.train_examples / self.batch)

    @property
    def generated_rows(self) -> int:
        """Rows one trial generates: every validation's and the test split's once."""
        return self.validations * self.val_examples + self.test_examples


@dataclass(frozen=True, kw_only=True)
class Parts:
    """A group's measured parts: a step, a generated row, a trial's start-up (None: not calibrated)."""

    step: Figure | None
    row: Figure | None
    startup: Figure | None


@dataclass(frozen=True)
class Row:
    group: Group
    parts: Parts

    @property
    def train_s(self) -> float | None:
        return None if self.parts.step is None else self.group.steps * self.parts.step.seconds

    @property
    def eval_s(self) -> float | None:
        return None if self.parts.row is None else self.group.generated_rows * self.parts.row.seconds

    @property
    def seconds(self) -> float | None:
        """One trial's predicted seconds (the formula of this module's docstring); None unless every part
        was measured: a figure with a part left out would read as a prediction and be too low."""
        parts = (self.parts.startup and self.parts.startup.seconds, self.train_s, self.eval_s)
        return None if any(p is None for p in parts) else sum(parts)


def predict(groups: list[Group], parts: dict[tuple[str, str], Parts]) -> list[Row]:
    """Each group's row from its measured parts (by (method, task); missing: not calibrated)."""
    none = Parts(step=None, row=None, startup=None)
    return [Row(g, parts.get((g.method, g.task), none)) for g in groups]


def wall_seconds(trials: list[float], slots: int) -> float:
    """The sweep's wall time when ``slots`` trials run at once, longest first (Graham's LPT)."""
    free = [0.0] * max(1, slots)
    for seconds in sorted(trials, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def totals(rows: list[Row], slots: int, process: Figure | None) -> dict:
    """Device-hours and wall hours on ``slots`` over the predicted rows (each slot's worker started once);
    the trials left unpredicted."""
    # one entry per distinct cost with its count would be smaller; 10,000 floats sort in milliseconds
    trials = [r.seconds for r in rows if r.seconds is not None for _ in range(r.group.trials)]
    used = min(slots, len(trials)) if trials else 0
    start = process.seconds if process else 0.0
    return {"device_hours": (sum(trials) + used * start) / 3600,
            "wall_hours": (start + wall_seconds(trials, slots)) / 3600 if trials else 0.0,
            "slots": slots, "unpredicted_trials": sum(r.group.trials for r in rows if r.seconds is None)}


def prediction(rows: list[Row], slots: int, process: Figure | None, *, clock: str) -> dict:
    """What ``PREDICTION_FILE`` keeps: per method × task the seconds of one trial (None: not predicted) and
    its parts, the totals, and the clock they are on (``cpu``: compare with records' ``cpu_time_s``)."""
    return {"rows": [{"method": r.group.method, "task": r.group.task, "trials": r.group.trials,
                      "seconds": r.seconds, "train_s": r.train_s, "eval_s": r.eval_s,
                      "startup_s": r.parts.startup and r.parts.startup.seconds,
                      "step": None if r.parts.step is None else r.parts.step.how} for r in rows],
            **totals(rows, slots, process), "clock": clock,
            "process_s": process and process.seconds}


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def lines(rows: list[Row], slots: int, process: Figure | None, *, clock: str) -> list[str]:
    """The dry run's table: per method × task the batch, steps, the seconds of training, generation and
    start-up and their sum per trial, and where the step time came from; then the totals and what the
    figures are."""
    wide = max([len("method"), *(len(r.group.method) for r in rows)])
    out = [f"{'method':<{wide}} {'task':<10} {'trials':>6} {'batch':>5} {'steps':>7} {'train s':>8} {'eval s':>7} "
           f"{'start s':>7} {'s/trial':>8}  step time"]
    for r in rows:
        g, step = r.group, r.parts.step
        how = "not calibrated" if step is None else f"{step.seconds * 1000:.1f} ms/step, {step.how}"
        out.append(f"{g.method:<{wide}} {g.task:<10} {g.trials:>6} {g.batch:>5} {g.steps:>7} {_cell(r.train_s):>8} "
                   f"{_cell(r.eval_s):>7} {_cell(r.parts.startup and r.parts.startup.seconds):>7} "
                   f"{_cell(r.seconds):>8}  {how}")
    t = totals(rows, slots, process)
    out.append(f"total: {t['device_hours']:.2f} device-hours; {t['wall_hours']:.2f} h wall on {slots} slot(s)"
               + (f" (each slot's worker process starts once: {process.seconds:.1f} s, {process.how})"
                  if process else "")
               + (f"; {t['unpredicted_trials']} trials not predicted (not calibrated: --calibrate measures them)"
                  if t["unpredicted_trials"] else ""))
    out.append(("seconds are CPU seconds of one trial's process (clock cpu: what records keep as cpu_time_s, "
                "which other jobs on the machine do not inflate)") if clock == "cpu" else
               "seconds are wall seconds on the device (clock wall)")
    out += [f"  {what}: {how}" for what, how in explained(rows).items()]
    return out


def explained(rows: list[Row]) -> dict[str, str]:
    """How the generation and start-up figures in ``rows`` were measured (the first row's of each)."""
    out = {}
    for r in rows:
        for what, figure in (("generation", r.parts.row), ("start-up", r.parts.startup)):
            if figure is not None and what not in out:
                out[what] = figure.how
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
        per_epoch = math.ceil(train / cfg.batch_size)
        steps = cfg.steps or cfg.epochs * per_epoch
        # validated every N steps, else once an epoch: a trial of ``steps`` runs ⌈steps / per epoch⌉ of them
        epochs = math.ceil(steps / per_epoch) if cfg.steps else cfg.epochs
        validations = steps // cfg.eval_every_steps if cfg.eval_every_steps else epochs
        out.append(Group(method=method, task=task, trials=trials, batch=cfg.batch_size, epochs=cfg.epochs,
                         train_examples=train, validations=max(1, validations), val_examples=val,
                         test_examples=test, fixed_steps=cfg.steps))
    return out
