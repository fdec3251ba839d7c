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
``StepTimes`` (``OUT/step-times.json``), so a second dry run measures nothing. A mixture is costed member by
member: each member's share of the optimizer steps (its sampling probability's; under ``roundrobin`` its
⌈n / b⌉ an epoch), a step of ``accumulation`` micro-batches of its own batch (``member_batch_sizes``) at the
step time of the same method on that task alone, and its own generated rows. The wall time on ``slots``
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


def clock_of(device: str) -> str:
    """The clock a device's figures and the records compared with them share: ``cpu`` (the process's CPU
    seconds, which other jobs on the machine do not inflate) on a CPU (``provenance.device_name``), else ``wall``."""
    return "cpu" if device.startswith("cpu") else "wall"


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
class Member:
    """One member of a mixture's trials as it trains: its examples per optimizer step, run as
    ``accumulation`` micro-batches of its rows only (harness/setup.py's ``train_batches``), its optimizer
    steps in one trial (expected, where members are drawn) and the rows it generates."""

    task: str
    batch: int
    accumulation: int
    steps: float
    generated_rows: int

    @property
    def micro_batch(self) -> int:
        """Rows of one of its micro-batches (the member's batch split ``accumulation`` ways)."""
        return math.ceil(self.batch / self.accumulation)


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
    members: tuple[Member, ...] = ()  # a mixture's, each costed at its own batch; none: the one task's

    @property
    def steps(self) -> int:
        """Optimizer steps of one trial."""
        if self.members:
            return round(sum(m.steps for m in self.members))
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
    members: tuple[tuple[Figure | None, Figure | None], ...] = ()  # a mixture's (step, row), member by member


@dataclass(frozen=True)
class Row:
    group: Group
    parts: Parts

    @property
    def train_s(self) -> float | None:
        """Seconds of one trial's optimizer steps: a mixture's, each member's steps of ``accumulation``
        micro-batches at its own micro-batch's step time."""
        if not self.group.members:
            return None if self.parts.step is None else self.group.steps * self.parts.step.seconds
        return _summed([(m.steps * m.accumulation, step) for m, (step, _) in self._members()])

    @property
    def eval_s(self) -> float | None:
        if not self.group.members:
            return None if self.parts.row is None else self.group.generated_rows * self.parts.row.seconds
        return _summed([(m.generated_rows, row) for m, (_, row) in self._members()])

    def _members(self):
        """Each mixture member with its (step, row) figures (none found: missing)."""
        return zip(self.group.members, self.parts.members or [(None, None)] * len(self.group.members), strict=True)

    @property
    def seconds(self) -> float | None:
        """One trial's predicted seconds (the formula of this module's docstring); None unless every part
        was measured: a figure with a part left out would read as a prediction and be too low."""
        parts = (self.parts.startup and self.parts.startup.seconds, self.train_s, self.eval_s)
        return None if any(p is None for p in parts) else sum(parts)


def _summed(terms: list[tuple[float, Figure | None]]) -> float | None:
    """Σ count × seconds over ``terms``; None when a figure is missing (a sum with a part left out is too low)."""
    return None if any(f is None for _, f in terms) else sum(n * f.seconds for n, f in terms)


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


def hours(value: float) -> str:
    """A duration given in hours, as hours, with seconds beside it under a day (a smoke's 0.06 h is 216 s)."""
    return f"{value:.2f} h" + (f" ({value * 3600:,.0f} s)" if value < 24 else "")


def lines(rows: list[Row], slots: int, process: Figure | None, *, clock: str) -> list[str]:
    """The dry run's table: per method × task the batch, steps, the seconds of training, generation and
    start-up and their sum per trial, and where the step time came from; then the totals and what the
    figures are."""
    wide = max([len("method"), *(len(r.group.method) for r in rows)])
    out = [f"{'method':<{wide}} {'task':<10} {'trials':>6} {'batch':>5} {'steps':>7} {'train s':>8} {'eval s':>7} "
           f"{'start s':>7} {'s/trial':>8}  step time"]
    for r in rows:
        g, how = r.group, _step_column(r)
        out.append(f"{g.method:<{wide}} {g.task:<10} {g.trials:>6} {g.batch:>5} {g.steps:>7} {_cell(r.train_s):>8} "
                   f"{_cell(r.eval_s):>7} {_cell(r.parts.startup and r.parts.startup.seconds):>7} "
                   f"{_cell(r.seconds):>8}  {how}")
    t = totals(rows, slots, process)
    out.append(f"total: {hours(t['device_hours'])} of device time; {hours(t['wall_hours'])} of wall on {slots} slot(s)"
               + (f" (each slot's worker process starts once: {process.seconds:.1f} s, {process.how})"
                  if process else "")
               + (f"; {t['unpredicted_trials']} trials not predicted (not calibrated: --calibrate measures them)"
                  if t["unpredicted_trials"] else ""))
    out.append(("seconds are CPU seconds of one trial's process (clock cpu: what records keep as cpu_time_s, "
                "which other jobs on the machine do not inflate)") if clock == "cpu" else
               "seconds are wall seconds on the device (clock wall)")
    out += [f"  {what}: {how}" for what, how in explained(rows).items()]
    return out


def _step_column(r: Row) -> str:
    """Where a row's step time came from: its one task's step, or each mixture member's at its micro-batch
    (× the micro-batches of its optimizer step)."""
    if not r.group.members:
        step = r.parts.step
        return "not calibrated" if step is None else f"{step.seconds * 1000:.1f} ms/step, {step.how}"
    said = [f"{m.task}: not calibrated" if step is None else
            f"{m.task}: {step.seconds * 1000:.1f} ms/micro-batch of {m.micro_batch} × {m.accumulation}, {step.how}"
            for m, (step, _) in r._members()]
    return "; ".join(said)


def explained(rows: list[Row]) -> dict[str, str]:
    """How the generation and start-up figures in ``rows`` were measured (the first row's of each)."""
    out = {}
    for r in rows:
        rows_of = [r.parts.row, *(row for _, row in r.parts.members)]
        for what, figure in (*(("generation", row) for row in rows_of), ("start-up", r.parts.startup)):
            if figure is not None and what not in out:
                out[what] = figure.how
    return out


def groups_of(spec, sizes, accumulation=None) -> list[Group]:
    """The spec's grid as groups of equal-cost trials: one per method, task and train size (learning
    rates and seeds cost alike), each trial config built once, so a 10,000-point grid costs a few
    dozen. ``sizes(task, train_size)``: (train, validation, test) examples; None skips the group.
    ``accumulation(cfg)``: the micro-batches of a mixture's largest member batch under its budget (the
    trial's plan; 1 when not given)."""
    out = []
    for (method, task, train_size), points in spec.workloads().items():
        trials = len(points)
        cfg = spec.trial(method, task, spec.learning_rates[0], spec.seeds[0], train_size)
        if cfg.mixture:
            found = [sizes(m, train_size) for m in cfg.mixture]
            if all(found):
                planned = accumulation(cfg) if accumulation and cfg.own_member_batches else 1
                out.append(mixture_group(cfg, method=method, trials=trials, sizes=found, accumulation=planned))
            continue
        if (found := sizes(task, train_size)) is None:
            continue
        train, val, test = found
        validations = _schedule(cfg, math.ceil(train / cfg.batch_size))[2]
        out.append(Group(method=method, task=task, trials=trials, batch=cfg.batch_size, epochs=cfg.epochs,
                         train_examples=train, validations=validations, val_examples=val,
                         test_examples=test, fixed_steps=cfg.steps))
    return out


def _schedule(cfg, per_epoch: float) -> tuple[int, int, int]:
    """A trial's optimizer steps, epochs and validations at ``per_epoch`` steps an epoch: validated every N
    steps, else once an epoch; a trial of ``steps`` runs ⌈steps / per epoch⌉ epochs."""
    steps = cfg.steps or cfg.epochs * per_epoch
    epochs = math.ceil(steps / per_epoch) if cfg.steps else cfg.epochs
    validations = steps // cfg.eval_every_steps if cfg.eval_every_steps else epochs
    return steps, epochs, max(1, int(validations))


def mixture_group(cfg, *, method: str, trials: int, sizes: list[tuple[int, int, int]], accumulation: int) -> Group:
    """A mixture's group, each member at its own batch (``member_batch_sizes``: one optimizer step of
    ``accumulation`` micro-batches, VL-Adapter's) or all at ``batch_size``; a member's share of an epoch's
    steps is its sampling probability's, as the trial draws them (tasks/mixture.py: under ``roundrobin``
    each member's ⌈n / b⌉ exactly)."""
    from peftbench.tasks.mixture import epoch_batches, sampling_probabilities

    own = cfg.own_member_batches
    batches = [cfg.member_batch_sizes[m] if own else cfg.batch_size for m in cfg.mixture]
    accumulation = accumulation if own else 1
    trains = [train for train, _, _ in sizes]
    shares = sampling_probabilities(trains, sampling=cfg.sampling, temperature=cfg.temperature, batches=batches)
    per_epoch = epoch_batches(trains, batches, sampling=cfg.sampling, probabilities=shares,
                              min_rows=accumulation if own else 1)
    steps, epochs, validations = _schedule(cfg, per_epoch)
    members = tuple(Member(task=m, batch=b, accumulation=accumulation, steps=steps * p,
                           generated_rows=validations * val + test)
                    for m, b, p, (_, val, test) in zip(cfg.mixture, batches, shares, sizes, strict=True))
    return Group(method=method, task=cfg.task, trials=trials, batch=max(batches), epochs=epochs,
                 train_examples=sum(trains), validations=validations, val_examples=sum(v for _, v, _ in sizes),
                 test_examples=sum(t for _, _, t in sizes), fixed_steps=cfg.steps, members=members)
