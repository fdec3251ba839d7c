"""Multi-task reports: one table per mixture (rows: method × sharing; columns: its member tasks, their
average, trainable %, peak memory, time per epoch), and, when the folder also holds single-task
records, the same methods trained one task at a time beside them.

A mixture record is read as one row per member (``member_rows``) whose validation score is the
mixture's mean over members: the learning rate is then chosen on that mean (one rate for every
member, as the trial chose its best epoch), the test score per member is its mean ± std over seeds
at that rate, and selection, seeds and settings go through ``select.summarize`` like every other
table. Trainable % is the record's own: one model for the whole mixture, counted once.
"""

from __future__ import annotations

import math

import pandas as pd

from peftbench.methods import method_label
from peftbench.reports import select
from peftbench.reports.tables import (
    HIGHER,
    LOWER,
    UNRANKED,
    Table,
    best_cells,
    display_names,
    invalid_text,
    megabytes,
    number,
    shown,
)

SHARING = "sharing"  # the method option that says how a mixture's tasks share modules (methods/multitask.py)


def is_mixture(record: dict) -> bool:
    return bool(record.get("mixture"))


def member_rows(records: list[dict]) -> list[dict]:
    """Each mixture record as one record per member task: that member's test score and metrics, the
    mixture's mean validation score (what selection runs on) and its trainable count, memory and time."""
    rows = []
    for r in records:
        for task in r["mixture"]:
            own = (r.get("members") or {}).get(task) or {}
            metrics = (r.get("test_metrics") or {}).get(task)
            rows.append({**r, "task": task, "mixture_name": r["task"], "test_score": own.get("test_score"),
                         "test_metrics": metrics, "trial_id": f"{r['trial_id']}/{task}"})
    return rows


def mixture_summaries(records: list[dict], baseline: str) -> dict[str, pd.DataFrame]:
    """Mixture name -> the summary of its records' member rows (``select.summarize``'s columns)."""
    out = {}
    for name in dict.fromkeys(r["task"] for r in records if is_mixture(r)):
        own = [r for r in records if is_mixture(r) and r["task"] == name]
        out[name] = select.summarize(member_rows(own), baseline=baseline)
    return out


def members_of(records: list[dict], name: str) -> list[str]:
    """A mixture's member tasks in the order its records give them."""
    return list(next(r["mixture"] for r in records if is_mixture(r) and r["task"] == name))


def single_task_labels(records: list[dict]) -> dict[str, str]:
    """Each mixture method's label -> the label a single-task trial of it has: without its ``sharing``
    option, which means nothing with one task (``adapter[sharing=per-task]`` -> ``adapter``)."""
    return {method_label(r["method"], r["method_options"]):
            method_label(r["method"], {k: v for k, v in r["method_options"].items() if k != SHARING})
            for r in records if is_mixture(r)}


def single_label(mixed: str, stripped: str, found: set[str]) -> str | None:
    """The single-task label among ``found`` to set beside mixture method ``mixed``: its label without
    ``sharing``, else its own (a spec's ``adapter[sharing=per-task]`` ran on single tasks too), else
    the one label of the same method family; None where none or several could be meant."""
    for label in (stripped, mixed):
        if label in found:
            return label
    family = [f for f in found if f.split("[", 1)[0] == mixed.split("[", 1)[0]]
    return family[0] if len(family) == 1 else None


def mixture_table(name: str, members: list[str], summary: pd.DataFrame) -> Table:
    """One mixture: per setting and method, each member's test score, the average over members,
    trainable % of the one model, peak memory and time per epoch."""
    columns = [c for c in select.SETTING if summary[c].nunique() > 1]
    names = display_names(summary)
    header = [*columns, "method", *members, "average", "trainable % (whole mixture)", "peak memory (MB)",
              "time/epoch (s)"]
    rows, values, groups = [], [], []
    for setting, cells in select.settings(summary):
        prefix = [dict(zip(select.SETTING, setting, strict=True))[c] for c in columns]
        for method in sorted(set(cells["method"])):
            by_task = cells[cells["method"] == method].set_index("task")
            scores = [by_task.at[t, "test_score_mean"] if t in by_task.index else math.nan for t in members]
            average = sum(scores) / len(scores)  # NaN unless every member has a score
            first = by_task.iloc[0]
            rows.append([*prefix, names[method],
                         *(score_text(by_task.loc[t]) if t in by_task.index else "—" for t in members),
                         number(average), number(first["trainable_pct"], 3),
                         megabytes(first["peak_memory_bytes"], first["memory_estimated"]),
                         number(first["time_per_epoch_s"])])
            values.append([*(None for _ in prefix), None, *(shown(s, 2) for s in scores), shown(average, 2),
                           shown(first["trainable_pct"], 3), shown(first["peak_memory_bytes"] / 1e6, 0),
                           shown(first["time_per_epoch_s"], 2)])
            groups.append(setting)
    directions = [UNRANKED] * (len(columns) + 1) + [HIGHER] * (len(members) + 1) + [LOWER, LOWER, LOWER]
    notes = [(f"One model trained on the mixture {name} ({' + '.join(members)}); each member task's test score at "
             "the learning rate with the best mean validation score over seeds, where a trial's validation "
             "score is the mean over its members (its best epoch chosen the same way): mean ± std over seeds."),
             ("Average: mean over the member tasks. Trainable %: the one model's trainable parameters for all "
             "its tasks, counted once."), "Bold: the best of its column."]
    return Table(f"multitask_{name}", f"Multi-task: {name}", header, rows, notes,
                 best_cells(values, directions, groups))


def score_text(row) -> str:
    """``mean ± std``, with the share of invalid outputs where there are any."""
    invalid = invalid_text(row)
    return f"{row['test_score_mean']:.2f} ± {number(row['test_score_std'])}" + (f" ({invalid})" if invalid else "")


def member_text(cells: pd.DataFrame, task: str) -> str:
    """One side of a single / mixture cell: the mean score, with its invalid share where there is one."""
    if task not in cells.index:
        return "—"
    row = cells.loc[task]
    invalid = invalid_text(row)
    return number(row["test_score_mean"]) + (f" ({invalid})" if invalid else "")


def comparison_table(name: str, members: list[str], mixed: pd.DataFrame, single: pd.DataFrame,
                     labels: dict[str, str]) -> Table | None:
    """The mixture's methods beside the same methods trained one task at a time on its members (same
    model and data): each member's score single / mixture, both averages and the Δ, and trainable % —
    one model per task (summed over the members) against one for all. None without single-task rows."""
    columns = [c for c in select.SETTING if mixed[c].nunique() > 1]
    names, rows = display_names(mixed), []
    for setting, cells in select.settings(mixed):
        alone = single[(single["model"] == setting[0]) & (single["data"] == setting[1])
                       & single["task"].isin(members)]
        prefix = [dict(zip(select.SETTING, setting, strict=True))[c] for c in columns]
        for method in sorted(set(cells["method"])):
            label = single_label(method, labels[method], set(alone["method"]))
            if label is None:
                continue
            own = (alone[alone["method"] == label].sort_values("train_size", na_position="first")
                   .drop_duplicates("task").set_index("task"))  # the full training set's where several
            together = cells[cells["method"] == method].set_index("task")
            pairs = [(own.at[t, "test_score_mean"] if t in own.index else math.nan,
                      together.at[t, "test_score_mean"] if t in together.index else math.nan) for t in members]
            avg_one, avg_mix = (sum(p[i] for p in pairs) / len(pairs) for i in (0, 1))
            pct_one = own["trainable_pct"].sum() if len(own) == len(members) else math.nan
            rows.append([*prefix, names[method], label,
                         *(f"{member_text(own, t)} / {member_text(together, t)}" for t in members),
                         number(avg_one), number(avg_mix),
                         "—" if math.isnan(avg_one - avg_mix) else f"{avg_mix - avg_one:+.2f}",
                         number(pct_one, 3), number(together["trainable_pct"].iloc[0], 3)])
    if not rows:
        return None
    header = [*columns, "method (mixture)", "method (one task at a time)", *(f"{t} single / mixture" for t in members),
              "average single", "average mixture", "Δ average", "trainable % single (all tasks)",
              "trainable % mixture"]
    notes = [(f"The methods trained on {name} against the same methods trained on each member alone (the "
             f"single-task label is the mixture's without its {SHARING} option, else its own, else the one "
             "single-task label of the same method), same model and data."),
             "Single-task scores: each task's own selected learning rate; mixture scores: one rate for all members.",
             "Δ average: mixture minus single, over the members; — where a member lacks a score on either side.",
             ("Trainable % single (all tasks): a model per task, their shares summed over the members; "
             "mixture: one model for all of them.")]
    return Table(f"multitask_{name}_vs_single", f"Multi-task {name} against one task at a time", header, rows, notes)


def tables(records: list[dict], single: pd.DataFrame, baseline: str) -> list[Table]:
    """Every mixture's table, each followed by its comparison with single-task trials when there are any."""
    out = []
    for name, summary in mixture_summaries(records, baseline).items():
        if summary.empty:
            continue
        members = members_of(records, name)
        out.append(mixture_table(name, members, summary))
        compared = None if single.empty else comparison_table(name, members, summary, single,
                                                              single_task_labels(records))
        if compared:
            out.append(compared)
        else:
            out[-1].notes.append(absent_reason(name, members, summary, single))
    return out


def absent_reason(name: str, members: list[str], mixed: pd.DataFrame, single: pd.DataFrame) -> str:
    """Why the mixture has no table against one task at a time: the line a reader gets instead."""
    if single.empty:
        return "No comparison with one task at a time: the folder has no single-task records."
    alone = single[single["task"].isin(members)]
    if alone.empty:
        return f"No comparison with one task at a time: no single-task records of {', '.join(members)}."
    return (f"No comparison with one task at a time: the single-task records of {', '.join(members)} are of "
            f"{', '.join(sorted(set(alone['method'])))} (model and data: "
            f"{', '.join(sorted(set(alone['model'] + '/' + alone['data'])))}), none matching the mixture's "
            f"{', '.join(sorted(set(mixed['method'])))} on "
            f"{', '.join(sorted(set(mixed['model'] + '/' + mixed['data'])))}.")


def score_mismatches(records: list[dict]) -> list[str]:
    """Mixture records whose ``test_score`` is not the mean of their members' test scores."""
    out = []
    for r in records:
        if not is_mixture(r) or r["status"] != "ok" or not r.get("members"):
            continue
        expected = sum(m["test_score"] for m in r["members"].values()) / len(r["members"])
        if not math.isclose(expected, r["test_score"], rel_tol=1e-9, abs_tol=1e-9):
            out.append(f"{r['trial_id']}: test_score {r['test_score']:g} ≠ mean of its members' {expected:g}")
    return out


def summary_frame(records: list[dict], baseline: str) -> pd.DataFrame:
    """The numbers of every mixture table, one row per mixture, method and member (for CSV)."""
    parts = [s.assign(mixture=name) for name, s in mixture_summaries(records, baseline).items() if not s.empty]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True).drop(columns="test_scores")
    return out[["mixture", *(c for c in out.columns if c != "mixture")]]
