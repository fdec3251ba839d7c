"""Parameter accounting: trainable parameters of each method against the base model, from the
configuration alone (the model is built on the meta device: no weights, no download)."""

from __future__ import annotations

import dataclasses

import torch
from transformers import T5Config, T5ForConditionalGeneration

from harness.config import method_label
from harness.models import model_config
from methods import ParamCount, apply_method, get_method, method_names


def options_for(method: str, options: dict) -> dict:
    """The subset of ``options`` that ``method``'s config takes."""
    fields = {f.name for f in dataclasses.fields(get_method(method).config_cls)}
    return {k: v for k, v in options.items() if k in fields}


def check_options_used(methods: list[str], options: dict) -> None:
    """Reject an option that none of ``methods`` takes (a typo would otherwise be silently ignored)."""
    used = set().union(*(options_for(m, options) for m in methods)) if methods else set()
    unused = sorted(set(options) - used)
    if unused:
        raise ValueError(f"option {unused[0]!r} is taken by none of: {', '.join(methods)}")


def count_params(config: T5Config, method: str, options: dict | None = None) -> ParamCount:
    """Apply ``method`` to a meta-device model of ``config`` and count."""
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
        _, count = apply_method(model, method, options)
    return count


def param_table(model: str, methods: list[str] | None = None, options: dict | None = None) -> list[dict]:
    """One row per method: its options, trainable and total parameters, trainable %."""
    methods = methods or method_names()
    options = options or {}
    check_options_used(methods, options)
    config = model_config(model)
    rows = []
    for method in methods:
        own = options_for(method, options)
        try:
            count = count_params(config, method, own)
        except ValueError as exc:  # an option that does not fit this model: say so in its row
            rows.append({"method": method, "options": own, "trainable_params": None, "total_params": None,
                         "trainable_pct": None, "error": str(exc)})
            continue
        rows.append({"method": method, "options": own, "trainable_params": count.trainable,
                     "total_params": count.total, "trainable_pct": count.pct})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'method':<32} {'trainable':>13} {'total':>15} {'trainable %':>12}"]
    for r in rows:
        label = method_label(r["method"], r["options"])
        if "error" in r:
            lines.append(f"{label:<32} cannot apply: {r['error']}")
        else:
            lines.append(f"{label:<32} {r['trainable_params']:>13,} {r['total_params']:>15,} {r['trainable_pct']:>12.3f}")
    return "\n".join(lines)
