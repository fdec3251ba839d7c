"""What a sweep shows on the terminal: each trial's state changes and an overall line with an ETA.

The ETA replays the rest of the sweep on its slots: each trial left takes the mean duration of its
method's finished trials (of all finished trials while its method has none), running trials their
mean less the time they have run, each starting on the first slot free, in the grid's order. So a
sweep whose methods differ tenfold in cost, or whose last trial runs alone, gets an honest estimate.

It also makes the driver the keeper of records: a trial's final result carries its record, and the
driver writes it under OUT/results (the only place a sweep writes one), so records arrive even when
workers share no filesystem. A trial that ends without one (its worker died and Ray's retries are
spent) gets a ``failed`` record here, with the reason Ray gave.
"""

from __future__ import annotations

import heapq
import statistics
import time
from pathlib import Path

from ray.tune import Callback
from ray.tune.experiment import Trial

from peftbench.harness.records import build_record, write_record
from peftbench.harness.spec import SweepSpec

OVERALL_EVERY_S = 60.0  # between trials' starts and ends, the overall line (with its ETA) at most this often


def point_label(config: dict, display: str | None = None) -> str:
    """A trial as a person reads it: the method's display name (the spec's ``display:``, else its label)."""
    config = config["point"]
    size = f" train_size={config['train_size']}" if config.get("train_size") else ""
    return f"{display or config['method']} {config['task']} lr={config['learning_rate']:g} seed={config['seed']}{size}"


def method_of(config: dict) -> str:
    return config["point"]["method"]


def show(line: str) -> None:
    """Print, looked up when called: Ray replaces ``builtins.print`` in a process that ran a sweep, and
    a callback holding the old one no longer pickles for the next sweep."""
    print(line)


def ray_reason(trial, max_failures: int) -> str:
    """Why Ray gave up on a trial, in one line: the first line of its last failure in the trial's
    error text (Ray's error.txt; its pickled twin is never read here)."""
    try:
        text = Path(trial.error_file).read_text(errors="replace")
    except (OSError, TypeError):  # no error file (TypeError: no path at all)
        text = ""
    lines = [line.strip() for line in text.rsplit("Failure #", 1)[-1].splitlines()[1:] if line.strip()]
    said = lines[0][:300] if lines else "no error text"
    return f"worker lost, Ray's retries spent ({max_failures} allowed): {said}"


class SweepProgress(Callback):
    """``methods``: the method of each trial to run, in grid order (for the ETA); ``slots``: how
    many run at once."""

    def __init__(self, total: int, out_dir: str | Path, *, spec: SweepSpec, methods: list[str] | None = None,
                 slots: int = 1, print_fn=None, clock=time.monotonic):
        self.total = total
        self.out_dir = Path(out_dir)
        self.spec = spec
        self.recorded: set[str] = set()  # Ray trial ids whose record is written
        self.print = print_fn or show
        self.clock = clock
        self.start = clock()
        self.running: dict[str, tuple[str, float]] = {}  # trial id -> (method, start)
        self.waiting = list(methods or [])  # methods of the trials not started yet, in grid order
        self.durations: dict[str, list[float]] = {}
        self.slots = slots
        self.done = 0
        self.failed = 0
        self.progress: dict[str, float] = {}  # running trial id -> share of its epochs done
        self.shown = self.start  # when the overall line was last printed

    def label(self, trial) -> str:
        return point_label(trial.config, self.spec.method(method_of(trial.config)).display)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """A validation's result says how far the trial is: the ETA needs no finished trial."""
        epochs = self._epochs(trial.config)
        if "epoch" in result and epochs:
            self.progress[trial.trial_id] = min(1.0, result["epoch"] / epochs)
            if self.clock() - self.shown >= OVERALL_EVERY_S:  # long trials: the overall line now and then
                self._overall()

    def _epochs(self, config: dict) -> int | None:
        cfg = self.spec.trial_at(config["point"])
        if cfg.epochs or cfg.mixture:  # a mixture's default epochs are its own: no guess
            return cfg.epochs
        from peftbench.tasks import get_task

        return get_task(cfg.task).epochs

    def on_trial_start(self, iteration, trials, trial, **info):
        method = method_of(trial.config)
        if method in self.waiting:
            self.waiting.remove(method)
        self.running[trial.trial_id] = (method, self.clock())
        self.print(f"▶ started   {self.label(trial)}")
        self._overall()

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        record = result.get("record")
        if record:
            write_record(self.out_dir, record)
            self.recorded.add(trial.trial_id)
        error = result.get("error") if record else self._fail(trial, "the trial ended without a record")
        ok = record is not None and result.get("status") == "ok"
        self._finished(trial, ok=ok)
        detail = f"test {result.get('test_score'):.2f}" if ok else f"failed: {error}"
        self.print(f"{'✓' if ok else '✗'} finished  {self.label(trial)}  {detail}")
        self._overall()

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finished(trial, ok=False)
        reason = self._fail(trial, ray_reason(trial, self.spec.max_failures))
        self.print(f"✗ error     {self.label(trial)}  {reason}")
        self._overall()

    def on_experiment_end(self, trials, **info):
        """Every trial that ended is recorded; one still pending or running (an interrupted sweep)
        stays missing, to run on ``--resume``."""
        for trial in trials:
            if trial.trial_id not in self.recorded and trial.status in (Trial.ERROR, Trial.TERMINATED):
                self._fail(trial, "the trial ended without a record")

    def _fail(self, trial, reason: str) -> str:
        """The driver's ``failed`` record of a trial that left none of its own."""
        point = trial.config["point"]
        record = build_record(self.spec.trial_at(point), status="failed", error=reason,
                              display_name=self.spec.method(point["method"]).display, finished_at=time.time())
        write_record(self.out_dir, record)
        self.recorded.add(trial.trial_id)
        return reason

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.print(f"↻ retrying  {self.label(trial)}  (worker or node lost)")

    def _finished(self, trial, *, ok: bool) -> None:
        method, started = self.running.pop(trial.trial_id, (method_of(trial.config), None))
        self.progress.pop(trial.trial_id, None)
        if ok and started is not None:  # a failed trial's time says little about the others'
            self.durations.setdefault(method, []).append(self.clock() - started)
        self.done += 1
        self.failed += not ok

    def expected_durations(self) -> dict[str, list[float]]:
        """Each method's trial durations: its finished trials', else (none finished yet) its running
        trials' foreseen from the share of epochs they have done."""
        if self.durations:
            return self.durations
        now, foreseen = self.clock(), {}
        for trial_id, share in self.progress.items():
            if share > 0 and trial_id in self.running:
                method, start = self.running[trial_id]
                foreseen.setdefault(method, []).append((now - start) / share)
        return foreseen

    def eta(self) -> float | None:
        """Seconds until the last trial ends, replayed on the slots (see the module's docstring);
        None before any trial has finished or done an epoch."""
        durations = self.expected_durations()
        every = [d for ds in durations.values() for d in ds]
        if not every:
            return None
        means = {m: statistics.fmean(ds) for m, ds in durations.items()}
        overall, now = statistics.fmean(every), self.clock()
        free = [max(0.0, means.get(m, overall) - (now - start)) for m, start in self.running.values()]
        free += [0.0] * (self.slots - len(free))
        heapq.heapify(free)
        unknown = self.total - self.done - len(self.running) - len(self.waiting)  # no method given
        for method in self.waiting + [None] * max(0, unknown):
            heapq.heappush(free, heapq.heappop(free) + means.get(method, overall))
        return max(free, default=0.0)

    def _overall(self):
        self.shown = self.clock()
        elapsed = self.shown - self.start
        pending = self.total - self.done - len(self.running)
        eta = self.eta()
        self.print(f"  [{self.done}/{self.total} done, {len(self.running)} running, {pending} pending, "
                   f"{self.failed} failed, elapsed {elapsed:.0f}s, ETA {'?' if eta is None else f'{eta:.0f}s'}]")
