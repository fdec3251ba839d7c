"""Parameter accounting: trainable parameters of each method against the base model, from the
configuration alone (the model is built on the meta device: no weights, no download).

For a mixture (``tasks``) the count is the one model's: every task's modules and the shared ones,
each counted once, against the base model's parameters (counted once too, whatever the tasks)."""

from __future__ import annotations

import torch
from transformers import T5Config

from peftbench.methods import ParamCount, apply_method, check_options_used, method_names, options_for
from peftbench.models.load import model_config, model_from_config


def count_params(config: T5Config, method: str, options: dict | None = None,
                 tasks: list[str] | None = None) -> ParamCount:
    """Apply ``method`` to a meta-device model of ``config`` (a mixture model of ``tasks``) and count."""
    with torch.device("meta"):
        model = model_from_config(config)
        _, count = apply_method(model, method, options, tasks=tasks)
    return count


def param_table(model: str, methods: list[str] | None = None, options: dict | None = None,
                tasks: list[str] | None = None) -> list[dict]:
    """One row per method: its options, trainable and total parameters, trainable % (and the
    mixture's ``tasks``, when given); beside them, every parameter with the method in and the trainable
    share of those (VL-Adapter's convention)."""
    methods = methods or method_names()
    options = options or {}
    check_options_used(methods, options)
    config = model_config(model)
    rows = []
    for method in methods:
        own = options_for(method, options)
        mixture = {"tasks": list(tasks)} if tasks is not None else {}
        try:
            count = count_params(config, method, own, tasks)
        except ValueError as exc:  # an option that does not fit this model: say so in its row
            rows.append({"method": method, "options": own, **mixture, "trainable_params": None,
                         "total_params": None, "trainable_pct": None, "overall_params": None,
                         "trainable_pct_of_overall": None, "error": str(exc)})
            continue
        rows.append({"method": method, "options": own, **mixture, "trainable_params": count.trainable,
                     "total_params": count.total, "trainable_pct": count.pct, "overall_params": count.overall,
                     "trainable_pct_of_overall": count.pct_of_overall})
    return rows
