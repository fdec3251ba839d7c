"""Selection and statistics over result records: the learning rate chosen on validation, the test
score there as mean ± std over seeds, and every comparison against full fine-tuning.

A cell is one (model, data source, method, task, train size): records of different models, or of
offline fixtures and hub data, are never pooled. Records without a ``train_size`` trained on the full
training set (train size ``<NA>``); records without a ``data_source`` predate it (``"unknown"``).
Rows of the tables are per setting: (model, data kind), the kind being fixtures, hub or unknown.
"""

from __future__ import annotations

import math

import pandas as pd

from peftbench.harness.records import LOWER, metric_names, output_counts, score_direction
from peftbench.methods import method_label
from peftbench.reports.stats import ALPHA, welch

SETTING = ["model", "data"]
CELL = ["model", "data_source", "method", "task", "train_size"]
SUMMARY_COLUMNS = [  # the nine a reader scans first, then the setting that tells cells apart
    "method", "task", "learning_rate", "test_score_mean", "test_score_std", "n_seeds",
    "trainable_pct", "peak_memory_bytes", "time_per_epoch_s", "model", "data",
]
EXTRA_COLUMNS = [
    "data_source", "display_name", "train_size", "val_score_mean", "test_invalid", "test_examples",
    "test_invalid_share", "n_failed", "memory_measured_by", "memory_estimated",
    "delta_vs_baseline", "ci_low", "ci_high", "p_value", "significant", "cpu_time_per_epoch_s", "on_cpu",
]
# what a time column shows: (summary column, header); ``time_basis`` picks one for a table
TIMES = {"wall": ("time_per_epoch_s", "time/epoch (s)"), "cpu": ("cpu_time_per_epoch_s", "CPU time/epoch (s)")}
BASELINE = "full"
UNKNOWN = "unknown"


def data_kind(source) -> str:
    """``fixtures``, ``hub`` or ``unknown``: what a record's ``data_source`` says it trained on. A
    mixture's names each member's (``rte=hub:…; sst2=fixtures``): their kind if they share one, else ``mixed``."""
    if not isinstance(source, str) or not source:
        return UNKNOWN
    if "; " in source:
        kinds = {data_kind(part.split("=", 1)[-1]) for part in source.split("; ")}
        return kinds.pop() if len(kinds) == 1 else "mixed"
    return "hub" if source.startswith("hub:") else source


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record: the method's label (name with options), its display name, data source
    and kind, train size (or <NA>) and the counts of invalid and scored test outputs."""
    rows = []
    for r in records:
        label = method_label(r["method"], r["method_options"])
        invalid, examples = output_counts(r.get("test_metrics"))
        rows.append({**r, "base_method": r["method"], "method": label, "train_size": r.get("train_size"),
                     "data_source": r.get("data_source") or UNKNOWN, "data": data_kind(r.get("data_source")),
                     "display_name": r.get("display_name") or label, "score_direction": score_direction(r),
                     "task_rank": task_fact(r, r["task"], "rank"),
                     "test_invalid": invalid, "test_examples": examples,
                     "cpu_time_per_epoch_s": r.get("cpu_time_per_epoch_s"), "on_cpu": ran_on_cpu(r)})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*CELL, "data", "status", "learning_rate", "seed", "base_method"])
    df["train_size"] = pd.array(df["train_size"].tolist(), dtype="Int64")
    return df


def task_fact(record: dict, task: str, key: str):
    """What ``record`` says of ``task`` under ``key`` of its ``task_facts`` (rank, paper_name, vision,
    metrics: tasks.task_facts); None where it does not say (records from before they were recorded)."""
    return ((record.get("task_facts") or {}).get(task) or {}).get(key)


def facts_by_task(records: list[dict]) -> dict[str, dict]:
    """Each task's ``task_facts`` as the first record that has them says them."""
    out: dict[str, dict] = {}
    for r in records:
        for task, facts in (r.get("task_facts") or {}).items():
            out.setdefault(task, facts)
    return out


def ran_on_cpu(record: dict) -> bool:
    """Whether a record's provenance says its trial ran on the CPU (``device: "cpu (x86_64)"``)."""
    device = (record.get("provenance") or {}).get("device")
    return isinstance(device, str) and device.startswith("cpu")


def time_basis(cells: pd.DataFrame) -> str:
    """``cpu`` when every cell ran on the CPU and has the process's CPU time: jobs sharing a CPU machine
    stretch a trial's wall time (×5 seen in one loaded smoke), not its CPU seconds; else ``wall``."""
    if len(cells) and cells["on_cpu"].all() and cells["cpu_time_per_epoch_s"].notna().all():
        return "cpu"
    return "wall"


def time_note(basis: str) -> str:
    if basis == "cpu":
        return ("Time per epoch: the trial process's CPU seconds of an epoch's training (time.process_time, all its "
                "threads): every trial ran on the CPU, where other jobs stretch wall time but not CPU time.")
    return "Time per epoch: wall seconds of an epoch's training (time.perf_counter)."


def is_estimate(measured_by) -> bool:
    """Whether a record's ``memory_measured_by`` says the figure is an estimate, not a measurement."""
    return isinstance(measured_by, str) and "estimat" in measured_by.lower()


def per_learning_rate(ok: pd.DataFrame) -> pd.DataFrame:
    """Aggregates over seeds at each (cell, learning rate) of the ``ok`` records."""
    grouped = ok.groupby([*CELL, "learning_rate"], sort=True, dropna=False)
    out = grouped.agg(
        data=("data", "first"),  # a function of data_source
        display_name=("display_name", "first"),
        score_direction=("score_direction", "first"),  # a task's, the same in every record of a cell
        task_rank=("task_rank", "first"),
        val_score_mean=("val_score", "mean"),
        test_score_mean=("test_score", "mean"),
        # one seed has no spread to report: NaN, never a made-up 0
        test_score_std=("test_score", lambda s: s.std(ddof=1)),
        n_seeds=("seed", "nunique"),
        test_scores=("test_score", tuple),
        trainable_pct=("trainable_pct", "mean"),
        peak_memory_bytes=("peak_memory_bytes", "max"),  # a peak: the largest seen over seeds
        time_per_epoch_s=("time_per_epoch_s", "mean"),
        # older records lack it: a mean over some seeds would not compare with the others'
        cpu_time_per_epoch_s=("cpu_time_per_epoch_s", lambda s: s.mean() if s.notna().all() else math.nan),
        on_cpu=("on_cpu", "all"),
        memory_measured_by=("memory_measured_by", lambda s: "; ".join(sorted(set(s.dropna())))),
        memory_estimated=("memory_measured_by", lambda s: any(is_estimate(m) for m in s)),
        test_invalid=("test_invalid", lambda s: s.sum(min_count=1)),
        # a share needs every seed's count of scored outputs; older records lack it
        test_examples=("test_examples", lambda s: s.sum() if s.notna().all() else math.nan),
    ).reset_index()
    out["test_invalid_share"] = out["test_invalid"] / out["test_examples"].where(out["test_examples"] > 0)
    return out


def select_learning_rates(per_lr: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the row of the learning rate with the best mean validation score: the highest, or the
    lowest where the records say their score is lower-is-better (``score_direction``).

    Ties go to the smallest learning rate (rows are sorted by it and ``idxmax`` keeps the first).
    """
    mean = per_lr["val_score_mean"]
    signed = per_lr.assign(better=mean.where(per_lr["score_direction"] != LOWER, -mean))
    best = per_lr.loc[signed.groupby(CELL, sort=False, dropna=False)["better"].idxmax()]
    return best.reset_index(drop=True)


def summarize(records: list[dict], *, baseline: str = BASELINE) -> pd.DataFrame:
    """One row per cell from the ``ok`` records, compared with ``baseline``; failures are counted."""
    df = records_frame(records)
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=[*SUMMARY_COLUMNS, *EXTRA_COLUMNS])
    summary = select_learning_rates(per_learning_rate(ok))
    failed = df[df["status"] != "ok"].groupby(CELL, dropna=False).size().rename("n_failed").reset_index()
    summary = summary.merge(failed, on=CELL, how="left")
    summary["n_failed"] = summary["n_failed"].fillna(0).astype(int)
    summary = compare_to_baseline(summary, baseline_label(summary, baseline))
    return summary[[*SUMMARY_COLUMNS, *EXTRA_COLUMNS, "task_rank", "test_scores"]]


def failures(records: list[dict]) -> list[dict]:
    """The failed trials, to be listed in every report (never averaged)."""
    return [r for r in records if r["status"] != "ok"]


def baseline_label(summary: pd.DataFrame, baseline: str) -> str | None:
    """The method label to compare against: ``baseline`` itself, else the first label of that name."""
    labels = sorted(set(summary["method"]))
    if baseline in labels:
        return baseline
    named = [m for m in labels if m.split("[", 1)[0] == baseline]
    return named[0] if named else None


def compare_to_baseline(summary: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Add, per cell, the difference to the baseline's cell of the same model, data source, task and
    train size (never another model's, nor fixtures against hub data)."""
    keys = ["model", "data_source", "task", "train_size"]
    out = summary.copy()
    for col in ("delta_vs_baseline", "ci_low", "ci_high", "p_value"):
        out[col] = math.nan
    out["significant"] = False
    if baseline is None:
        return out
    base = out[out["method"] == baseline].set_index(keys)
    for i, row in out.iterrows():
        key = tuple(row[k] for k in keys)
        if row["method"] == baseline or key not in base.index:
            continue
        ref = base.loc[key]
        p, low, high = welch(row["test_scores"], ref["test_scores"])
        out.loc[i, ["delta_vs_baseline", "p_value", "ci_low", "ci_high"]] = [
            row["test_score_mean"] - ref["test_score_mean"], p, low, high,
        ]
        out.loc[i, "significant"] = bool(p < ALPHA)  # NaN < ALPHA is False: untestable is unmarked
    return out


def main_train_size(summary: pd.DataFrame):
    """The train size of the main tables: the full training set (<NA>) if present, else the largest."""
    sizes = summary["train_size"]
    return pd.NA if sizes.isna().any() or sizes.empty else sizes.max()


def at_train_size(summary: pd.DataFrame, size) -> pd.DataFrame:
    return summary[summary["train_size"].isna()] if pd.isna(size) else summary[summary["train_size"] == size]


def settings(summary: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """The summary split by setting (model, data kind), in sorted order: what may share a table row."""
    return [(key, cells) for key, cells in summary.groupby(SETTING, sort=True)]


def one_setting(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` unchanged if they share one model and data kind; else a ValueError (no pooling)."""
    found = cells[SETTING].drop_duplicates()
    if len(found) > 1:
        pairs = ", ".join(f"{m} on {d}" for m, d in found.itertuples(index=False))
        raise ValueError(f"cells of several settings cannot be pooled: {pairs}")
    return cells


def averages(cells: pd.DataFrame) -> pd.DataFrame:
    """Per method of one setting, the mean over tasks of the test score (each task's score already
    averages its metrics) and how many tasks it covers."""
    grouped = one_setting(cells).groupby("method", sort=False)
    return pd.DataFrame({"average": grouped["test_score_mean"].mean(), "n_tasks": grouped["task"].nunique()})


def efficiency(cells: pd.DataFrame, baseline: str | None, *, basis: str = "wall") -> pd.DataFrame:
    """Per method of one setting (Table 3), over the tasks the baseline also ran: trainable % and time per epoch
    (means over those tasks) and peak memory (the largest over them: what running them all needs),
    each but the share with its change in percent relative to the baseline's figure on those tasks.

    A Δ% is left NaN where the two memory figures were not obtained the same way (a measurement is
    never compared with an estimate, nor a GPU allocator count with a process RSS). ``basis``: the
    time it reports under ``time_per_epoch_s`` (``TIMES``), named in ``time_basis``.
    """
    one_setting(cells)
    cells = cells.assign(time_per_epoch_s=cells[TIMES[basis][0]])
    base = cells[cells["method"] == baseline].set_index("task") if baseline else None
    rows = []
    for method, group in cells.groupby("method", sort=False):
        common = group[group["task"].isin(base.index)] if base is not None else group.iloc[0:0]
        own = (common if len(common) else group).set_index("task")
        row = {"method": method, **efficiency_figures(own), "time_basis": basis, "memory_delta_pct": math.nan,
               "time_delta_pct": math.nan}
        if len(common):
            ref = efficiency_figures(base.loc[own.index])
            row["time_delta_pct"] = 100 * (row["time_per_epoch_s"] / ref["time_per_epoch_s"] - 1)
            if row["memory_measured_by"] == ref["memory_measured_by"]:
                row["memory_delta_pct"] = 100 * (row["peak_memory_bytes"] / ref["peak_memory_bytes"] - 1)
        rows.append(row)
    return pd.DataFrame(rows)


def efficiency_by_setting(cells: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """``efficiency`` of each setting (model, data kind) against that setting's own baseline, stacked."""
    basis = time_basis(cells)
    parts = [efficiency(own, baseline, basis=basis).assign(model=model, data=data)
             for (model, data), own in settings(cells)]
    columns = [*SETTING, "method"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    return out[[*columns, *(c for c in out.columns if c not in columns)]]


def efficiency_figures(cells: pd.DataFrame) -> dict:
    """One method's Table 3 figures over ``cells`` (its selected cells on some tasks)."""
    return {
        "trainable_pct": cells["trainable_pct"].mean(),
        "peak_memory_bytes": cells["peak_memory_bytes"].max(),
        "time_per_epoch_s": cells["time_per_epoch_s"].mean(),
        "memory_measured_by": "; ".join(sorted({m for how in cells["memory_measured_by"]
                                                 for m in how.split("; ") if m})),
        "memory_estimated": bool(cells["memory_estimated"].any()),
    }


def pareto_front(points: pd.DataFrame, *, x: str, y: str) -> list:
    """Index labels of the points no other point beats: none has ``x`` as low (or lower) and ``y`` as
    high (or higher) with one of the two strictly better; sorted by ``x``. NaN points are left out."""
    points = points[[x, y]].dropna().sort_values([x, y], ascending=[True, False])
    front, best = [], -math.inf
    for label, (_, py) in zip(points.index, points.itertuples(index=False), strict=True):
        if py > best:
            front.append(label)
            best = py
    return front


def score_mismatches(records: list[dict]) -> list[str]:
    """Records whose ``test_score`` is not the mean of their ``test_metrics``.

    The Average column relies on each record's test score already being the mean of its task's
    metrics (``Task.score``); this checks that from the record alone: the metrics its ``scored_metrics``
    names (older records: every key but the counts). Mixtures (a mean of members' means) are checked
    in reports/multitask.py.
    """
    out = []
    for r in records:
        if r["status"] != "ok" or not r.get("test_metrics") or r.get("mixture"):
            continue
        names = r.get("scored_metrics") or metric_names(r["test_metrics"])
        values = [r["test_metrics"][k] for k in names if k in r["test_metrics"]]
        if not values or any(not isinstance(v, (int, float)) for v in values):
            continue
        expected = sum(values) / len(values)
        if not math.isclose(expected, r["test_score"], rel_tol=1e-9, abs_tol=1e-9):
            out.append(f"{r['trial_id']}: test_score {r['test_score']:g} ≠ mean of its metrics {expected:g}")
    return out
