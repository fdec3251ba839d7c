"""The training settings records ran with: the hyperparameter table of a report (epochs, warm-up,
batch, learning-rate grid, weight decay, clipping, per method) and, for ``compare``, the settings in
which sweep folders differ. Read from each record's ``config`` (the whole trial config), falling back
to the record's own fields for records written before it."""

from __future__ import annotations

from peftbench.methods import method_label
from peftbench.reports.tables import Table

# (config key, column title) of the hyperparameter table, in the order a methods section lists them
HYPERPARAMETERS = [("epochs", "epochs"), ("warmup_steps", "warm-up steps"), ("batch_size", "batch (examples/step)"),
                   ("learning_rate", "learning rates"), ("weight_decay", "weight decay"),
                   ("max_grad_norm", "gradient clipping (max norm)")]
# settings that are the grid itself (a folder's rows) or bookkeeping, never "a setting that differs"
MISSING = object()  # a setting a record does not name (written before it had one)
GRID = {"method", "method_options", "task", "learning_rate", "seed", "mixture", "save_modules"}


def setting(record: dict, key: str):
    """One setting of a record: from its config, else its own field; epochs and batch as the trial
    ran them (its own fields: the task's epochs resolved, the batch a budget chose)."""
    if key in ("epochs", "batch_size") and record.get(key) is not None:
        return record[key]
    config = record.get("config") or {}
    return config[key] if key in config else record.get(key, MISSING)


def shown(value, key: str) -> str:
    if value is MISSING:
        return "—"
    if value is None:
        return {"epochs": "task's", "max_grad_norm": "none"}.get(key, "—")
    return f"{value:g}" if isinstance(value, float) else str(value)


def values_text(records: list[dict], key: str) -> str:
    """The values of ``key`` over ``records``, each once, in order: ``3`` or ``3, 20``."""
    values = {shown(setting(r, key), key): setting(r, key) for r in records}

    def order(text: str) -> tuple:  # numbers by size, then the rest by text, none last
        v = values[text]
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        return (v is None or v is MISSING, not number, v if number else 0, text)

    return ", ".join(sorted(values, key=order))


def hyperparameter_table(records: list[dict]) -> Table:
    """Per method: the settings its trials ran with, each value once (several where trials differed)."""
    by_method: dict[str, list[dict]] = {}
    for r in records:
        by_method.setdefault(method_label(r["method"], r["method_options"]), []).append(r)
    header = ["method", *(title for _, title in HYPERPARAMETERS)]
    rows = [[m, *(values_text(own, key) for key, _ in HYPERPARAMETERS)] for m, own in sorted(by_method.items())]
    notes = ["The settings the trials ran with, as their records say (failed trials too); several values: "
             "trials differed (learning rates: the grid searched).",
             "epochs: task's = the task's own number (peftbench tasks); batch: examples per optimizer step, "
             "over micro-batches and workers; warm-up: linear, then linear decay to 0; weight decay: AdamW's."]
    return Table("hyperparameters", "Hyperparameters", header, rows, notes)


def folder_settings(records: list[dict]) -> dict[str, str]:
    """A folder's settings outside the grid: key -> its values over the folder's records, as text."""
    keys = sorted({k for r in records for k in (r.get("config") or {})} - GRID)
    return {k: values_text(records, k) for k in keys}


def differences(named: dict[str, list[dict]]) -> list[str]:
    """One line per setting in which the folders differ: ``epochs: a 3; b 6``."""
    settings = {name: folder_settings(records) for name, records in named.items()}
    keys = sorted(set().union(*settings.values()))
    lines = []
    for key in keys:
        values = {name: s.get(key, "—") for name, s in settings.items()}
        if len(set(values.values())) > 1:
            lines.append(f"{key}: " + "; ".join(f"{name} {v}" for name, v in values.items()))
    return lines
