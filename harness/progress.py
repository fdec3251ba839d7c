"""What a sweep shows on the terminal: each trial's state changes and an overall line with an ETA.

It also makes the driver the keeper of records: a trial's final result carries its record, and the
driver writes it under OUT/results (the only place a sweep writes one), so records arrive even when
workers share no filesystem.
"""

from __future__ import annotations

import time
from pathlib import Path

from ray.tune import Callback

from harness.records import write_record


def point_label(config: dict) -> str:
    config = config["point"]
    size = f" train_size={config['train_size']}" if config.get("train_size") else ""
    return f"{config['method']} {config['task']} lr={config['learning_rate']:g} seed={config['seed']}{size}"


def show(line: str) -> None:
    """Print, looked up when called: Ray replaces ``builtins.print`` in a process that ran a sweep, and
    a callback holding the old one no longer pickles for the next sweep."""
    print(line)


class SweepProgress(Callback):
    def __init__(self, total: int, out_dir: str | Path, *, print_fn=None):
        self.total = total
        self.out_dir = Path(out_dir)
        self.print = print_fn or show
        self.start = time.monotonic()
        self.running: set[str] = set()
        self.done = 0
        self.failed = 0

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.add(trial.trial_id)
        self.print(f"▶ started   {point_label(trial.config)}")
        self._overall()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        result = trial.last_result or {}
        record = result.get("record")
        if record:
            write_record(self.out_dir, record)
        ok = result.get("status") == "ok"
        self.done += 1
        self.failed += not ok
        detail = f"test {result.get('test_score'):.2f}" if ok else f"failed: {result.get('error')}"
        self.print(f"{'✓' if ok else '✗'} finished  {point_label(trial.config)}  {detail}")
        self._overall()

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.discard(trial.trial_id)
        self.done += 1
        self.failed += 1
        self.print(f"✗ error     {point_label(trial.config)}  (Ray gave up on it: {trial.error_file})")
        self._overall()

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.print(f"↻ retrying  {point_label(trial.config)}  (worker or node lost)")

    def _overall(self):
        elapsed = time.monotonic() - self.start
        pending = self.total - self.done - len(self.running)
        eta = f"{elapsed / self.done * (self.total - self.done):.0f}s" if self.done else "?"
        self.print(f"  [{self.done}/{self.total} done, {len(self.running)} running, {pending} pending, "
                   f"{self.failed} failed, elapsed {elapsed:.0f}s, ETA {eta}]")
