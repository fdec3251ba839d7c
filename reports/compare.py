"""Several sweep folders side by side: one row per (model, data, method, task, train size), one
column group per folder (its test score, mean ± std over seeds at the learning rate chosen on
validation, and that learning rate), as each folder's own report selects them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from peftbench.harness.records import bad_file_lines, read_records
from peftbench.reports import render, settings
from peftbench.reports.select import summarize
from peftbench.reports.tables import Table, score_cell

KEY = ["model", "data", "method", "task", "train_size"]


def folder_summary(folder: str | Path, skipped: list[str] | None = None) -> pd.DataFrame:
    """A folder's report summary (no baseline: each column group stands on its own); files that are
    not records are left out, as the report leaves them, and named in ``skipped``."""
    bad = []
    records = read_records(folder, on_bad=lambda path, reason: bad.append((path, reason)))
    if skipped is not None:
        skipped += bad_file_lines(bad)
    if not records:
        raise FileNotFoundError(" ".join([f"no result records under {Path(folder) / 'results'}",
                                          *bad_file_lines(bad)]))
    return summarize(records, baseline=None)


def compare_table(folders: list[str]) -> Table:
    """The table: key columns, then per folder its score and learning rate; the best score of each
    row in bold."""
    names = column_names(folders)
    skipped = []
    summaries = [folder_summary(f, skipped).set_index(KEY) for f in folders]
    keys = sorted(set().union(*(s.index for s in summaries)), key=lambda k: tuple(map(str, k)))
    header = ["model", "data", "method", "task", "train size"]
    for name in names:
        header += [f"{name}: test", f"{name}: lr"]
    rows, scores = [], []
    for key in keys:
        row, values = [str(k) if pd.notna(k) else "all" for k in key], [None] * len(KEY)
        for s in summaries:
            cell = s.loc[key] if key in s.index else None
            if cell is None:
                row += ["—", "—"]
                values += [None, None]
            else:
                row += [score_cell(cell, int(cell["n_seeds"])), f"{cell['learning_rate']:g}"]
                values += [round(cell["test_score_mean"], 2), None]
        rows.append(row)
        scores.append(values)
    best = best_by_row(scores)
    notes = [f"{name}: {folder}" for name, folder in zip(names, folders, strict=True)] + skipped
    differ = settings.differences({name: read_records(f, on_bad=lambda *_: None)  # set aside above
                                   for name, f in zip(names, folders, strict=True)})
    notes += [f"Settings that differ: {line}" for line in differ] or ["The folders' settings are the same."]
    return Table("compare", "Sweeps side by side", header, rows, notes=notes, best=best)


def best_by_row(values: list[list]) -> set[tuple[int, int]]:
    """(row, column) of each row's highest score, ties included, where the row has two or more."""
    best = set()
    for i, row in enumerate(values):
        shown = [v for v in row if v is not None]
        if len(shown) > 1:
            best |= {(i, j) for j, v in enumerate(row) if v == max(shown)}
    return best


def column_names(folders: list[str]) -> list[str]:
    """Each folder's name, or its whole path where two names are the same."""
    names = [Path(f).name or str(f) for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


def compare(folders: list[str], fmt: str = "md") -> str:
    """The side-by-side table of ``folders`` as markdown or CSV text."""
    if len(folders) < 2:
        raise ValueError("compare needs two or more sweep folders")
    table = compare_table(folders)
    if fmt == "csv":
        return pd.DataFrame(table.rows, columns=table.header).to_csv(index=False)
    return render.markdown([table], [])

