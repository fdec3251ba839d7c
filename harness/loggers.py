"""Experiment trackers for a sweep: Ray Tune's own logger callbacks, named in the spec (``loggers``).

Each gets every result a trial reports: the validation score at each epoch (or every N steps) and,
last, the trial's status, test score and whole record. None is on unless named, so a sweep needs
neither their packages nor a network; each package is an optional extra (``pip install
'peftbench[wandb]'``). W&B and MLflow read their usual environment (``WANDB_API_KEY``,
``WANDB_MODE=offline``, ``MLFLOW_TRACKING_URI``); MLflow without one writes to ``OUT/mlruns``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# logger name -> the package it needs (and the extra that installs it)
LOGGERS = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}


def check_loggers(names) -> None:
    """Known names whose packages are installed, or a one-line ``ValueError``."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r} (known: {', '.join(LOGGERS)})")
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise ValueError(f"logger {name!r} needs {LOGGERS[name]}: pip install 'peftbench[{name}]'")


def logger_callbacks(names, *, experiment: str, out_dir: Path) -> list:
    """The Ray Tune callbacks of the named loggers."""
    check_loggers(names)
    callbacks = []
    for name in names:
        if name == "tensorboard":
            from ray.tune.logger import TBXLoggerCallback

            callbacks.append(TBXLoggerCallback())
        elif name == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback

            callbacks.append(WandbLoggerCallback(project=os.environ.get("WANDB_PROJECT", experiment)))
        else:
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            uri = os.environ.get("MLFLOW_TRACKING_URI") or (out_dir / "mlruns").as_uri()
            callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=experiment))
    return callbacks
