"""Experiment trackers for a sweep (``loggers`` in the spec, ``--logger`` on the command line).

Each tracker gets, per trial: its settings, the training loss and learning rate every few seconds
(``StepReporter``, called by the trial loop), the validation score at each evaluation, and last the
trial's status, test score and whole record. The driver writes them all (``tracker_callback``), so a
tracker's files have one writer and its step axis is the optimizer step. None is on unless named, so
a sweep needs neither their packages nor a network; each package is an optional extra (``pip install
'peftbench[wandb]'``). Where each writes:

- tensorboard: ``OUT/tensorboard/<trial_id>/`` (tensorboardX event files); ``tensorboard --logdir
  OUT/tensorboard`` shows every trial of the folder.
- mlflow: ``$MLFLOW_TRACKING_URI``, else a local database ``sqlite:///OUT/mlflow.db`` with artifacts in
  ``OUT/mlartifacts`` (mlflow 3 retired its file store); the experiment is the spec's name.
- wandb: offline runs under ``OUT/wandb`` (``wandb sync OUT/wandb/offline-run-*`` uploads them), or
  whatever ``$WANDB_MODE`` says; the project is ``$WANDB_PROJECT``, else the spec's name.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

# logger name -> the package it needs (and the extra that installs it)
LOGGERS = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}
STEP_REPORT_EVERY_S = 10.0  # a step result costs a round trip to the driver; a curve needs no more


def check_loggers(names) -> None:
    """Known names whose packages are installed, or a one-line ``ValueError``."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r} (known: {', '.join(LOGGERS)})")
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise ValueError(f"logger {name!r} needs {LOGGERS[name]}: pip install 'peftbench[{name}]'")


class StepReporter:
    """The trial loop's hook for step-level values: call ``reporter(step, loss, lr)`` after every
    optimizer step; it passes ``{"step", "loss", "lr"}`` on to ``report`` for the first step and then
    at most once every ``every_s`` seconds (``clock`` is injectable for tests). ``loss`` may be a
    tensor: it is read (a device sync) only when passed on."""

    def __init__(self, report: Callable[[dict], None], *, every_s: float = STEP_REPORT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.report, self.every_s, self.clock = report, every_s, clock
        self.last: float | None = None

    def __call__(self, step: int, loss: float, lr: float) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every_s:
            return
        self.last = now
        self.report({"step": int(step), "loss": float(loss), "lr": float(lr)})


def scalars(values: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) dict, flattened to ``a/b`` keys: what a tracker can plot."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def settings(config) -> dict[str, str]:
    """A trial's settings as flat strings (a tracker's parameters)."""
    from dataclasses import asdict

    return {k: json.dumps(v) if isinstance(v, (dict, list, tuple)) else str(v) for k, v in asdict(config).items()}


def result_values(result: dict) -> tuple[int, dict[str, float]] | None:
    """A trial's intermediate result as (step, values to plot), or None for the final one (the record)."""
    if "record" in result or "step" not in result:
        return None
    if "val_score" in result:
        return int(result["step"]), {"val/score": result["val_score"], **({"train/loss": result["loss"]}
                                                                         if "loss" in result else {})}
    return int(result["step"]), {"train/loss": result["loss"], "train/lr": result["lr"]}


def final_values(record: dict) -> dict[str, float]:
    """The figures of a trial's record a tracker shows as its summary (its status is a tag)."""
    return scalars({k: v for k, v in record.items() if k not in ("provenance", "seed", "schema")})


class TensorBoardTracker:
    """Event files per trial under ``root/<trial_id>``; settings and record as text."""

    def __init__(self, root: Path):
        self.root, self.writers = Path(root), {}

    def start(self, trial_id: str, params: dict[str, str]) -> None:
        from tensorboardX import SummaryWriter

        self.writers[trial_id] = SummaryWriter(str(self.root / trial_id), flush_secs=10)
        self.writers[trial_id].add_text("settings", json.dumps(params, indent=1), 0)

    def log(self, trial_id: str, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writers[trial_id].add_scalar(key, value, step)

    def finish(self, trial_id: str, record: dict, step: int) -> None:
        writer = self.writers.pop(trial_id)
        for key, value in final_values(record).items():
            writer.add_scalar(f"final/{key}", value, step)
        writer.add_text("record", json.dumps(record, indent=1, default=str), step)
        writer.close()


class MLflowTracker:
    """One MLflow run per trial in the spec's experiment, through ``MlflowClient`` (no global state)."""

    def __init__(self, out_dir: Path, experiment: str):
        import logging

        from mlflow.tracking import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..."
            logging.getLogger(name).setLevel(logging.WARNING)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        self.client = MlflowClient(uri or f"sqlite:///{Path(out_dir).resolve() / 'mlflow.db'}")
        found = self.client.get_experiment_by_name(experiment)
        artifacts = None if uri else (Path(out_dir).resolve() / "mlartifacts").as_uri()
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(
            experiment, artifact_location=artifacts)
        self.runs: dict[str, str] = {}

    def start(self, trial_id: str, params: dict[str, str]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=trial_id, tags={"trial_id": trial_id})
        self.runs[trial_id] = run.info.run_id
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, value[:6000])

    def log(self, trial_id: str, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.client.log_metric(self.runs[trial_id], key, value, step=step)

    def finish(self, trial_id: str, record: dict, step: int) -> None:
        run_id = self.runs.pop(trial_id)
        self.log_final(run_id, record, step)
        self.client.set_terminated(run_id, status="FINISHED" if record.get("status") == "ok" else "FAILED")

    def log_final(self, run_id: str, record: dict, step: int) -> None:
        for key, value in final_values(record).items():
            self.client.log_metric(run_id, f"final/{key}", value, step=step)
        self.client.set_tag(run_id, "status", str(record.get("status")))
        self.client.log_dict(run_id, record, "record.json")


class WandbTracker:
    """One W&B run per trial, offline unless ``$WANDB_MODE`` says otherwise."""

    def __init__(self, out_dir: Path, experiment: str):
        self.dir, self.project, self.runs = Path(out_dir), os.environ.get("WANDB_PROJECT", experiment), {}

    def start(self, trial_id: str, params: dict[str, str]) -> None:
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        # several trials run at once, each its own run in this one process
        self.runs[trial_id] = wandb.init(project=self.project, name=trial_id, dir=str(self.dir), config=params,
                                         mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new",
                                         settings=wandb.Settings(silent=True))  # where runs are: where_lines

    def log(self, trial_id: str, values: dict[str, float], step: int) -> None:
        self.runs[trial_id].log(values, step=step)

    def finish(self, trial_id: str, record: dict, step: int) -> None:
        run = self.runs.pop(trial_id)
        run.summary.update({f"final/{k}": v for k, v in final_values(record).items()}
                           | {"status": record.get("status")})
        run.finish(exit_code=0 if record.get("status") == "ok" else 1)


def where_lines(names, out_dir: Path) -> list[str]:
    """What the sweep prints once at its end: where each named tracker's runs are and how to look."""
    out_dir = Path(out_dir).resolve()
    lines = {"tensorboard": f"TensorBoard: tensorboard --logdir {out_dir / 'tensorboard'}",
             "mlflow": ("MLflow: " + (f"runs at {os.environ['MLFLOW_TRACKING_URI']}"
                                      if os.environ.get("MLFLOW_TRACKING_URI")
                                      else f"mlflow ui --backend-store-uri sqlite:///{out_dir / 'mlflow.db'}")),
             "wandb": (f"W&B: offline runs in {out_dir / 'wandb'}; "
                       f"wandb sync {out_dir / 'wandb'}/offline-run-* uploads them"
                       if os.environ.get("WANDB_MODE", "offline") == "offline" else "W&B: runs synced online")}
    return [lines[name] for name in names]


def make_trackers(names, *, experiment: str, out_dir: Path) -> list:
    """The named trackers, writing under ``out_dir``."""
    check_loggers(names)
    made = {"tensorboard": lambda: TensorBoardTracker(Path(out_dir) / "tensorboard"),
            "mlflow": lambda: MLflowTracker(out_dir, experiment),
            "wandb": lambda: WandbTracker(out_dir, experiment)}
    return [made[name]() for name in names]


class Trackers:
    """Results of Ray trials, handed to every tracker: start, each intermediate result, finish.

    ``describe(config)`` gives a Ray trial's (trial_id, TrialConfig) from its ``config``."""

    def __init__(self, trackers: list, describe: Callable[[dict], tuple], *, log: Callable[[str], None] | None = None):
        self.trackers, self.describe, self.steps, self.log = trackers, describe, {}, log

    def each(self, what: str, *args) -> None:
        """``tracker.what(*args)`` for every tracker; one that fails says so once and is dropped,
        as a tracker is never worth a sweep."""
        for tracker in list(self.trackers):
            try:
                getattr(tracker, what)(*args)
            except Exception as exc:  # noqa: BLE001  whatever a tracker's package raises
                self.trackers.remove(tracker)
                (self.log or print)(f"tracker {type(tracker).__name__} stopped: {type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")

    def start(self, config: dict) -> None:
        trial_id, trial_config = self.describe(config)
        self.steps[trial_id] = 0
        self.each("start", trial_id, settings(trial_config))

    def result(self, config: dict, result: dict) -> None:
        trial_id, _ = self.describe(config)
        got = result_values(result)
        if got is None or trial_id not in self.steps:
            return
        step, values = got
        self.steps[trial_id] = max(self.steps[trial_id], step)
        self.each("log", trial_id, scalars(values), step)

    def finish(self, config: dict, record: dict | None, error: str | None = None) -> None:
        trial_id, _ = self.describe(config)
        if trial_id not in self.steps:
            return
        step = self.steps.pop(trial_id)
        self.each("finish", trial_id, record or {"trial_id": trial_id, "status": "failed", "error": error}, step)


def tracker_callback(names, *, experiment: str, out_dir: Path, describe: Callable[[dict], tuple]) -> list:
    """The Ray Tune callback that feeds the named trackers (none: an empty list).

    Ray pickles its callbacks with the experiment's state: the trackers (open files, clients) are
    made on first use and never pickled."""
    if not names:
        return []
    check_loggers(names)
    from ray.tune import Callback

    class TrackerCallback(Callback):
        def __init__(self):
            self.fed: Trackers | None = None

        def __getstate__(self):
            return {**self.__dict__, "fed": None}

        def trackers(self) -> Trackers:
            if self.fed is None:
                self.fed = Trackers(make_trackers(names, experiment=experiment, out_dir=out_dir), describe)
            return self.fed

        def on_trial_start(self, iteration, trials, trial, **info):
            self.trackers().start(trial.config)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.trackers().result(trial.config, result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            last = trial.last_result or {}
            self.trackers().finish(trial.config, last.get("record"),
                                   last.get("error") or "the trial ended without a record")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.trackers().finish(trial.config, None, "the trial failed in Ray")

    return [TrackerCallback()]
