"""The paper's tables as format-free ``Table``s (title, header, rows of text cells, notes), built
from the summary of ``select``; ``render`` turns them into markdown, LaTeX, HTML or CSV."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from reports import select

SIGNIFICANT = "*"  # marks a cell whose difference to full fine-tuning is significant
ESTIMATE = "≈"  # marks a memory figure a record says was estimated


@dataclass
class Table:
    key: str  # file stem for CSV export, and anchor in HTML
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def task_order(tasks) -> list[str]:
    """Tasks in the registry's order (the paper's), unknown ones after, alphabetically."""
    from tasks import task_names

    known = task_names()
    return sorted(set(tasks), key=lambda t: (known.index(t) if t in known else len(known), t))


def method_order(methods, baseline: str | None) -> list[str]:
    return sorted(set(methods), key=lambda m: (m != baseline, m))


def number(value, digits: int = 2) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def signed_pct(value) -> str:
    return "—" if pd.isna(value) else f"{value:+.2f}%"


def megabytes(value, estimated: bool = False) -> str:
    return "—" if pd.isna(value) else f"{ESTIMATE if estimated else ''}{value / 1e6:.0f}"


def score_cell(row, n_common: int) -> str:
    """``mean ± std``, the seed count where it differs from the table's usual one, and the mark."""
    text = f"{row['test_score_mean']:.2f} ± {number(row['test_score_std'])}"
    if row["n_seeds"] != n_common:
        text += f" (n={row['n_seeds']})"
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
    return notes


def main_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 1 / Table 2: methods × tasks, the average over tasks, trainable %, memory, time."""
    size = select.main_train_size(summary)
    cells = select.at_train_size(summary, size)
    tasks = task_order(cells["task"])
    avg = select.averages(cells)
    n_common = common_seeds(cells)
    header = ["method", *tasks, "average", "trainable % per task", "peak memory (MB)", "time/epoch (s)"]
    rows = []
    for method in method_order(cells["method"], baseline):
        by_task = cells[cells["method"] == method].set_index("task")
        scores = [score_cell(by_task.loc[t], n_common) if t in by_task.index else "—" for t in tasks]
        average = number(avg.at[method, "average"])
        if avg.at[method, "n_tasks"] < len(tasks):
            average += f" ({avg.at[method, 'n_tasks']}/{len(tasks)} tasks)"
        rows.append([method, *scores, average, number(by_task["trainable_pct"].mean(), 3),
                     megabytes(by_task["peak_memory_bytes"].max(), by_task["memory_estimated"].any()),
                     number(by_task["time_per_epoch_s"].mean())])
    title = "Results per task (Table 1 / Table 2 layout)"
    if not pd.isna(size):
        title += f", train size {int(size)}"
    notes = score_notes(cells, baseline)
    notes.append("Average: mean over tasks of the test score; a task with several metrics counts as their mean.")
    return Table("main", title, header, rows, notes)


def efficiency_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 3: trainable %, peak memory and time per epoch, each with its Δ% against the baseline."""
    cells = select.at_train_size(summary, select.main_train_size(summary))
    eff = select.efficiency(cells, baseline).set_index("method")
    header = ["method", "trainable %", "peak memory (MB)", "Δ memory", "time/epoch (s)", "Δ time"]
    rows = []
    for m in method_order(eff.index, baseline):
        e = eff.loc[m]
        delta = (lambda v: "—") if m == baseline else signed_pct
        rows.append([m, number(e["trainable_pct"], 3), megabytes(e["peak_memory_bytes"], e["memory_estimated"]),
                     delta(e["memory_delta_pct"]), number(e["time_per_epoch_s"]), delta(e["time_delta_pct"])])
    notes = [f"Δ: change relative to {baseline} over the tasks both ran; memory is the largest peak over "
             "those tasks, time per epoch and trainable % their means."
             if baseline else "No full fine-tuning records: no Δ column can be computed."]
    notes += memory_notes(summary)
    return Table("efficiency", "Efficiency (Table 3 layout)", header, rows, notes)


def memory_notes(summary: pd.DataFrame) -> list[str]:
    """How memory was measured, per method; estimates marked, and Δ% withheld across methods."""
    notes = []
    for how, group in summary.groupby("memory_measured_by", sort=True):
        kind = "ESTIMATE" if select.is_estimate(how) else "measured"
        notes.append(f"Peak memory {kind} by {how or 'unknown'}: {', '.join(sorted(set(group['method'])))}.")
    if summary["memory_estimated"].any():
        notes.append(f"{ESTIMATE} marks an estimated memory figure.")
    notes.append("A memory Δ is shown only where both figures were obtained the same way.")
    return notes


def comparison_table(summary: pd.DataFrame, baseline: str | None) -> Table | None:
    """Per method, task and train size: difference to the baseline with a 95% CI and Welch's p."""
    if baseline is None:
        return None
    rows = []
    cells = summary[summary["method"] != baseline]
    order = {m: i for i, m in enumerate(method_order(cells["method"], baseline))}
    tasks = task_order(summary["task"])
    cells = cells.assign(_m=cells["method"].map(order), _t=cells["task"].map(tasks.index),
                         _s=cells["train_size"].fillna(-1)).sort_values(["_m", "_t", "_s"])
    for _, row in cells.iterrows():
        if pd.isna(row["delta_vs_baseline"]):
            continue
        ci = "—" if pd.isna(row["ci_low"]) else f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"
        p = "—" if pd.isna(row["p_value"]) else f"{row['p_value']:.3g}"
        rows.append([row["method"], row["task"], size_name(row["train_size"]), f"{row['delta_vs_baseline']:+.2f}",
                     ci, p, SIGNIFICANT if row["significant"] else ""])
    notes = [(f"Δ: mean test score minus {baseline}'s, each at its own selected learning rate. CI and p: "
             "Welch's t-test over seeds; — where a side has under two seeds or neither side varies.")]
    return Table("vs_full", f"Against {baseline}, per task", ["method", "task", "train size", "Δ score",
                                                               "95% CI", "p", "sig."], rows, notes)


def learning_rate_table(summary: pd.DataFrame, baseline: str | None) -> Table:
    """Table 5: the selected learning rate per method and task (and train size where several)."""
    sizes = summary["train_size"].drop_duplicates().sort_values(na_position="last").tolist()
    tasks = task_order(summary["task"])
    columns = [(t, s) for t in tasks for s in sizes]
    label = (lambda t, s: t) if len(sizes) == 1 else (lambda t, s: f"{t} ({size_name(s)})")
    rows = []
    for method in method_order(summary["method"], baseline):
        own = summary[summary["method"] == method]
        lookup = {(r["task"], size_name(r["train_size"])): f"{r['learning_rate']:g}" for _, r in own.iterrows()}
        rows.append([method, *(lookup.get((t, size_name(s)), "—") for t, s in columns)])
    notes = ["The learning rate with the best mean validation score over seeds (ties: the smallest)."]
    return Table("learning_rates", "Selected learning rates (Table 5 layout)",
                 ["method", *(label(t, s) for t, s in columns)], rows, notes)


def low_resource_tables(summary: pd.DataFrame, baseline: str | None) -> list[Table]:
    """Per task: score per method per train size; only when some records carry a train size."""
    if summary["train_size"].notna().sum() == 0:
        return []
    sizes = summary["train_size"].drop_duplicates().sort_values(na_position="last").tolist()
    tables = []
    for task in task_order(summary["task"]):
        cells = summary[summary["task"] == task]
        n_common = common_seeds(cells)
        rows = []
        for method in method_order(cells["method"], baseline):
            own = {size_name(r["train_size"]): r for _, r in cells[cells["method"] == method].iterrows()}
            rows.append([method, *(score_cell(own[size_name(s)], n_common) if size_name(s) in own else "—"
                                   for s in sizes)])
        tables.append(Table(f"low_resource_{task}", f"Low-resource: {task} by training-set size",
                            ["method", *(size_name(s) for s in sizes)], rows, score_notes(cells, baseline)))
    return tables


def failures_table(failed: list[dict]) -> Table:
    """Every failed trial with its reason: listed, never averaged into a score."""
    rows = [[r["trial_id"], select.method_label(r["method"], r["method_options"]), r["task"],
             f"{r['learning_rate']:g}", str(r["seed"]), size_name(r.get("train_size")), str(r["error"])]
            for r in failed]
    notes = [] if rows else ["No failed trials."]
    return Table("failures", f"Failed trials ({len(rows)})",
                 ["trial", "method", "task", "learning rate", "seed", "train size", "error"], rows, notes)


def all_tables(summary: pd.DataFrame, failed: list[dict], baseline: str | None) -> list[Table]:
    tables = [main_table(summary, baseline), efficiency_table(summary, baseline)]
    tables += [t for t in [comparison_table(summary, baseline)] if t is not None]
    tables += [learning_rate_table(summary, baseline), *low_resource_tables(summary, baseline)]
    return [*tables, failures_table(failed)]
