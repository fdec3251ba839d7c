"""The paper's tables as format-free ``Table``s (title, header, rows of text cells, notes), built
from the summary of ``select``; ``render`` turns them into markdown, LaTeX, HTML or CSV."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from peftbench.reports import select, stats

SIGNIFICANT = "*"  # marks a cell whose difference to full fine-tuning is significant
ESTIMATE = "≈"  # marks a memory figure a record says was estimated


@dataclass
class Table:
    key: str  # file stem for CSV export, and anchor in HTML
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    best: set[tuple[int, int]] = field(default_factory=set)  # (row, column) of cells to show in bold


HIGHER, LOWER, UNRANKED = 1, -1, 0  # which value of a column is its best


def best_cells(values: list[list], directions: list[int], groups: list) -> set[tuple[int, int]]:
    """(row, column) of each column's best value among the rows of each group, ties included.

    ``values[i][j]`` is the number cell (i, j) shows, rounded as shown, or None; a column is ranked
    by its direction (``HIGHER``, ``LOWER``) only where a group has two or more different numbers.
    """
    best = set()
    for group in dict.fromkeys(groups):
        rows = [i for i, g in enumerate(groups) if g == group]
        for j, direction in enumerate(directions):
            numbers = {i: values[i][j] for i in rows if values[i][j] is not None and not pd.isna(values[i][j])}
            if direction == UNRANKED or len(set(numbers.values())) < 2:  # alone, or all tied: none is best
                continue
            top = max(v * direction for v in numbers.values())
            best |= {(i, j) for i, v in numbers.items() if v * direction == top}
    return best


def shown(value, digits: int):
    """``value`` rounded as the table prints it (None when there is none), for ranking."""
    return None if value is None or pd.isna(value) else round(float(value), digits)


def task_order(cells: pd.DataFrame) -> list[str]:
    """The tasks of ``cells`` (summary rows) in the papers' table order, as their records rank them
    (``task_rank``); tasks no record ranks (a task file's, or records from before ranks were recorded)
    after the ranked ones, alphabetically."""
    ranked = cells.assign(_rank=pd.to_numeric(cells.get("task_rank"), errors="coerce")).dropna(subset="_rank")
    ranks = ranked.groupby("task")["_rank"].min().to_dict()
    return sorted(set(cells["task"]), key=lambda t: (t not in ranks, ranks.get(t, 0), t))


def method_order(methods, baseline: str | None) -> list[str]:
    return sorted(set(methods), key=lambda m: (m != baseline, m))


def display_names(summary: pd.DataFrame) -> dict[str, str]:
    """Method label -> the name to show: a record's ``display_name`` unless two labels share it."""
    names = summary.drop_duplicates("method").set_index("method")["display_name"].to_dict()
    taken = pd.Series(list(names.values())).value_counts()
    return {m: name if taken[name] == 1 else m for m, name in names.items()}


def setting_columns(summary: pd.DataFrame) -> list[str]:
    """The setting columns (model, data) whose values differ: the ones each row must show."""
    return [c for c in select.SETTING if summary[c].nunique() > 1]


def setting_note(summary: pd.DataFrame) -> list[str]:
    """One line saying the model and data kind every row shares, if they do."""
    same = [c for c in select.SETTING if summary[c].nunique() == 1]
    if not same:
        return []
    return ["; ".join(f"{c}: {summary[c].iloc[0]}" for c in same) + " (every row)."]


def setting_rows(summary: pd.DataFrame, baseline: str | None) -> Iterator[tuple[tuple, list[str], str, pd.DataFrame]]:
    """Per table row: (setting, its shown setting cells, method label, the method's cells), each
    setting's rows together, the baseline first."""
    columns = setting_columns(summary)
    for setting, cells in select.settings(summary):
        values = dict(zip(select.SETTING, setting, strict=True))
        for method in method_order(cells["method"], baseline):
            yield setting, [values[c] for c in columns], method, cells[cells["method"] == method]


def number(value, digits: int = 2) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def signed_pct(value) -> str:
    return "—" if pd.isna(value) else f"{value:+.2f}%"


def megabytes(value, estimated: bool = False) -> str:
    return "—" if pd.isna(value) else f"{ESTIMATE if estimated else ''}{value / 1e6:.0f}"


def invalid_text(row) -> str:
    """``12.5% invalid`` (or ``3 invalid`` from records that do not count their outputs); "" at zero."""
    share, count = row["test_invalid_share"], row["test_invalid"]
    if pd.notna(share):
        return f"{100 * share:.3g}% invalid" if share > 0 else ""
    return f"{count:.0f} invalid" if pd.notna(count) and count > 0 else ""


def score_cell(row, n_common: int) -> str:
    """``mean ± std``, the seed count where it differs from the table's usual one, the share of
    invalid outputs where there are any, and the significance mark."""
    text = f"{row['test_score_mean']:.2f} ± {number(row['test_score_std'])}"
    extra = [f"n={row['n_seeds']}"] if row["n_seeds"] != n_common else []
    extra += [t for t in [invalid_text(row)] if t]
    if extra:
        text += f" ({', '.join(extra)})"
    return text + (SIGNIFICANT if row["significant"] else "")


def common_seeds(cells: pd.DataFrame) -> int:
    return int(cells["n_seeds"].mode().max()) if len(cells) else 0


def size_name(size) -> str:
    return "full" if pd.isna(size) else str(int(size))


def score_notes(cells: pd.DataFrame, baseline: str | None) -> list[str]:
    notes = [(f"Test score at the learning rate with the best mean validation score: mean ± std over "
             f"{common_seeds(cells)} seeds (n=k where fewer or more seeds finished).")]
    if baseline:
        notes.append(f"{SIGNIFICANT} differs from {baseline} on that task at p < {select.ALPHA} (Welch's t-test "
                     "over seeds, two-sided, uncorrected for multiple comparisons).")
    if any(invalid_text(row) for _, row in cells.iterrows()):
        notes.append("k% invalid: share of the test outputs, over all seeds, that the task could not read as "
                     "an answer (each scored as wrong); older records give only the count of invalid outputs.")
    notes.append("Bold: the best of its column (highest score; lowest trainable %, memory, time).")
    return notes


def main_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 1 / Table 2: methods × tasks per setting, the average over tasks, trainable %, memory, time."""
    size = select.main_train_size(summary)
    cells = select.at_train_size(summary, size)
    tasks = task_order(cells)
    n_common = common_seeds(cells)
    names = display_names(summary)
    basis = select.time_basis(cells)
    time_column, time_header = select.TIMES[basis]
    header = [*setting_columns(cells), "method", *tasks, "average", "trainable % per task", "peak memory (MB)",
              time_header]
    rows, values, groups = [], [], []
    for setting, prefix, method, own in setting_rows(cells, baseline):
        by_task = own.set_index("task")
        avg = select.averages(own).loc[method]
        average, n_tasks = number(avg["average"]), int(avg["n_tasks"])
        if n_tasks < len(tasks):
            average += f" ({n_tasks}/{len(tasks)} tasks)"
        rows.append([*prefix, names[method], *(task_cell(by_task, t, n_common) for t in tasks), average,
                     number(by_task["trainable_pct"].mean(), 3),
                     megabytes(by_task["peak_memory_bytes"].max(), by_task["memory_estimated"].any()),
                     number(by_task[time_column].mean())])
        full = n_tasks == len(tasks)  # an average over fewer tasks is not comparable
        values.append([*(None for _ in prefix), None,
                       *(shown(by_task.at[t, "test_score_mean"], 2) if t in by_task.index else None for t in tasks),
                       shown(avg["average"], 2) if full else None, shown(by_task["trainable_pct"].mean(), 3),
                       shown(by_task["peak_memory_bytes"].max() / 1e6, 0),
                       shown(by_task[time_column].mean(), 2)])
        groups.append(setting)
    memory = LOWER if cells.groupby(select.SETTING)["memory_measured_by"].nunique().max() == 1 else UNRANKED
    directions = [UNRANKED] * (len(header) - len(tasks) - 4) + [HIGHER] * (len(tasks) + 1) + [LOWER, memory, LOWER]
    title = "Results per task (Table 1 / Table 2 layout)"
    if not pd.isna(size):
        title += f", train size {int(size)}"
    notes = [*setting_note(cells), *score_notes(cells, baseline)]
    notes.append("Average: mean over tasks of the test score; a task with several metrics counts as their mean.")
    notes.append(select.time_note(basis))
    return Table("main", title, header, rows, notes, best_cells(values, directions, groups))


def task_cell(by_task: pd.DataFrame, task: str, n_common: int) -> str:
    """The score cell of one method on one task; cells of several hub revisions side by side."""
    if task not in by_task.index:
        return "—"
    found = by_task.loc[[task]]
    if len(found) == 1:
        return score_cell(found.iloc[0], n_common)
    return "; ".join(f"{score_cell(r, n_common)} [{r['data_source']}]" for _, r in found.iterrows())


def efficiency_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 3 per setting: trainable %, peak memory and time per epoch, each with its Δ% against the
    baseline of the same setting."""
    cells = select.at_train_size(summary, select.main_train_size(summary))
    columns, names = setting_columns(cells), display_names(summary)
    basis = select.time_basis(cells)
    header = [*columns, "method", "trainable %", "peak memory (MB)", "Δ memory", select.TIMES[basis][1], "Δ time"]
    rows, values, groups = [], [], []
    for setting, own in select.settings(cells):
        eff = select.efficiency(own, baseline, basis=basis).set_index("method")
        prefix = [dict(zip(select.SETTING, setting, strict=True))[c] for c in columns]
        for m in method_order(eff.index, baseline):
            e = eff.loc[m]
            delta = (lambda v: "—") if m == baseline else signed_pct
            rows.append([*prefix, names[m], number(e["trainable_pct"], 3),
                         megabytes(e["peak_memory_bytes"], e["memory_estimated"]), delta(e["memory_delta_pct"]),
                         number(e["time_per_epoch_s"]), delta(e["time_delta_pct"])])
            values.append([None] * (len(prefix) + 1) + [shown(e["trainable_pct"], 3),
                                                         shown(e["peak_memory_bytes"] / 1e6, 0), None,
                                                         shown(e["time_per_epoch_s"], 2), None])
            groups.append(setting)
    memory = LOWER if cells.groupby(select.SETTING)["memory_measured_by"].nunique().max() == 1 else UNRANKED
    directions = [UNRANKED] * (len(columns) + 1) + [LOWER, memory, UNRANKED, LOWER, UNRANKED]
    notes = [f"Δ: change relative to {baseline} of the same model and data over the tasks both ran; memory is "
             "the largest peak over those tasks, time per epoch and trainable % their means."
             if baseline else "No full fine-tuning records: no Δ column can be computed."]
    notes += [*setting_note(cells), *memory_notes(summary), select.time_note(basis),
              "Bold: the lowest of its column."]
    return Table("efficiency", "Efficiency (Table 3 layout)", header, rows, notes,
                 best_cells(values, directions, groups))


def memory_notes(summary: pd.DataFrame) -> list[str]:
    """How memory was measured, per method; estimates marked, and Δ% withheld across methods."""
    notes = []
    for how, group in summary.groupby("memory_measured_by", sort=True):
        kind = "ESTIMATE" if select.is_estimate(how) else "measured"
        notes.append(f"Peak memory {kind} by {how or 'unknown'}: {', '.join(sorted(set(group['method'])))}.")
    if summary["memory_estimated"].any():
        notes.append(f"{ESTIMATE} marks an estimated memory figure.")
    notes.append("A memory Δ is shown (and a lowest memory marked) only where the figures were obtained the same way.")
    return notes


@dataclass
class Comparison:
    """One cell against the baseline's cell it is compared with, its Holm p and its verdict."""

    cell: pd.Series
    baseline: pd.Series
    p_holm: float
    verdict: stats.Verdict


def comparisons(summary: pd.DataFrame, baseline: str, *, min_effect: float | None = None) -> list[Comparison]:
    """Every comparison the report makes against ``baseline``, in table order, Holm-corrected together."""
    cells = summary[summary["method"] != baseline]
    order = {m: i for i, m in enumerate(method_order(cells["method"], baseline))}
    tasks = task_order(summary)
    cells = cells.assign(_m=cells["method"].map(order), _t=cells["task"].map(tasks.index),
                         _s=cells["train_size"].fillna(-1)).sort_values([*select.SETTING, "_m", "_t", "_s"])
    cells = cells[cells["delta_vs_baseline"].notna()]
    adjusted = stats.holm([float(p) for p in cells["p_value"]])
    base = baseline_cells(summary, baseline)
    out = []
    for (_, row), p_holm in zip(cells.iterrows(), adjusted, strict=True):
        ref = base[comparison_key(row)]
        out.append(Comparison(row, ref, p_holm, stats.verdict(
            p_adjusted=p_holm, effect=row["delta_vs_baseline"], sd_a=row["test_score_std"],
            sd_b=ref["test_score_std"], n_a=int(row["n_seeds"]), n_b=int(ref["n_seeds"]), min_effect=min_effect)))
    return out


def comparison_table(summary: pd.DataFrame, baseline: str | None, *, min_effect: float | None = None) -> Table | None:
    """Per setting, method, task and train size: difference to the baseline with a 95% CI, Welch's p
    raw and Holm-corrected over the table, and whether the seeds decide it (``stats.verdict``)."""
    if baseline is None:
        return None
    columns, names = setting_columns(summary), display_names(summary)
    rows, found = [], comparisons(summary, baseline, min_effect=min_effect)
    for c in found:
        row = c.cell
        ci = "—" if pd.isna(row["ci_low"]) else f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
        p = "—" if pd.isna(row["p_value"]) else f"{row['p_value']:.3g}"
        rows.append([*(row[col] for col in columns), names[row["method"]], row["task"], size_name(row["train_size"]),
                     f"{row['delta_vs_baseline']:+.2f}", ci, p, SIGNIFICANT if row["significant"] else "",
                     "—" if math.isnan(c.p_holm) else f"{c.p_holm:.3g}", c.verdict.text()])
    effect = f"a difference of {min_effect:g}" if min_effect is not None else "the observed difference"
    tested = sum(not math.isnan(c.p_holm) for c in found)
    notes = [(f"Δ: mean test score minus {baseline}'s of the same model and data, each at its own selected "
              "learning rate. CI and p: Welch's t-test over seeds; — where a side has under two seeds or "
              "neither side varies. sig.: p < 0.05 uncorrected."),
             (f"p (Holm): p corrected by Holm's step-down method for the {tested} tested comparisons of this "
              "table (family-wise error 0.05)."),
             (f"Seeds: decided where the Holm p < {stats.ALPHA}, or where the seeds a side already give power "
              f"{stats.POWER} at α {stats.ALPHA} to detect {effect} given both spreads (two-sided Welch test, "
              "noncentral t); else the seeds a side still needed. peftbench plan-seeds DIR writes the sweep "
              "that adds them."), *setting_note(summary)]
    return Table("vs_full", f"Against {baseline}, per task",
                 [*columns, "method", "task", "train size", "Δ score", "95% CI", "p", "sig.", "p (Holm)", "seeds"],
                 rows, notes)


COMPARED = ["model", "data_source", "task", "train_size"]  # what a cell shares with the baseline cell it is compared to


def comparison_key(row) -> tuple:
    return tuple(row[k] for k in COMPARED)


def baseline_cells(summary: pd.DataFrame, baseline: str) -> dict[tuple, pd.Series]:
    """The baseline's cells by ``comparison_key``, as ``select.compare_to_baseline`` pairs them."""
    return {comparison_key(row): row for _, row in summary[summary["method"] == baseline].iterrows()}


def learning_rate_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 5: the selected learning rate per setting, method and task (and train size where several)."""
    sizes = summary["train_size"].drop_duplicates().sort_values(na_position="last").tolist()
    tasks = task_order(summary)
    columns = [(t, s) for t in tasks for s in sizes]
    label = (lambda t, s: t) if len(sizes) == 1 else (lambda t, s: f"{t} ({size_name(s)})")
    names, rows = display_names(summary), []
    for _, prefix, method, own in setting_rows(summary, baseline):
        lookup = {}
        for _, r in own.iterrows():  # several hub revisions of one task: each one's rate
            key = (r["task"], size_name(r["train_size"]))
            lookup[key] = "; ".join([*filter(None, [lookup.get(key)]), f"{r['learning_rate']:g}"])
        rows.append([*prefix, names[method], *(lookup.get((t, size_name(s)), "—") for t, s in columns)])
    notes = ["The learning rate with the best mean validation score over seeds (ties: the smallest).",
             *setting_note(summary)]
    return Table("learning_rates", "Selected learning rates (Table 5 layout)",
                 [*setting_columns(summary), "method", *(label(t, s) for t, s in columns)], rows, notes)


def low_resource_tables(summary: pd.DataFrame, baseline: str | None) -> list[Table]:
    """Per task: score per setting and method per train size; only when some records carry a train size."""
    if summary["train_size"].notna().sum() == 0:
        return []
    sizes = summary["train_size"].drop_duplicates().sort_values(na_position="last").tolist()
    names, tables = display_names(summary), []
    for task in task_order(summary):
        cells = summary[summary["task"] == task]
        n_common = common_seeds(cells)
        rows, values, groups = [], [], []
        for setting, prefix, method, own in setting_rows(cells, baseline):
            by_size = own.set_index(own["train_size"].map(size_name))
            rows.append([*prefix, names[method], *(task_cell(by_size.assign(task=by_size.index), size_name(s), n_common)
                                                   for s in sizes)])
            values.append([*(None for _ in prefix), None,
                           *(shown(by_size.at[size_name(s), "test_score_mean"], 2)
                             if size_name(s) in by_size.index and by_size.index.is_unique else None for s in sizes)])
            groups.append(setting)
        tables.append(Table(f"low_resource_{task}", f"Low-resource: {task} by training-set size",
                            [*setting_columns(cells), "method", *(size_name(s) for s in sizes)], rows,
                            [*setting_note(cells), *score_notes(cells, baseline)],
                            best_cells(values, [UNRANKED] * (len(rows[0]) - len(sizes)) + [HIGHER] * len(sizes),
                                       groups)))
    return tables


def failures_table(failed: list[dict]) -> Table:
    """Every failed trial with its reason: listed, never averaged into a score."""
    rows = [[r["trial_id"], select.method_label(r["method"], r["method_options"]), r["task"],
             f"{r['learning_rate']:g}", str(r["seed"]), size_name(r.get("train_size")), str(r["error"])]
            for r in failed]
    notes = [] if rows else ["No failed trials."]
    return Table("failures", f"Failed trials ({len(rows)})",
                 ["trial", "method", "task", "learning rate", "seed", "train size", "error"], rows, notes)


def all_tables(summary: pd.DataFrame, failed: list[dict], baseline: str | None, *,
               min_effect: float | None = None) -> list[Table]:
    tables = [main_table(summary, baseline), efficiency_table(summary, baseline)]
    tables += [t for t in [comparison_table(summary, baseline, min_effect=min_effect)] if t is not None]
    tables += [learning_rate_table(summary, baseline), *low_resource_tables(summary, baseline)]
    return [*tables, failures_table(failed)]
