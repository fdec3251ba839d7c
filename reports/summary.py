"""The comparison table: per method and task, the test score at the learning rate with the best
mean validation score, as mean ± std over seeds, with trainable share, memory and time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import method_label
from harness.records import read_records

SUMMARY_COLUMNS = [
    "method", "task", "learning_rate", "test_score_mean", "test_score_std", "n_seeds",
    "trainable_pct", "peak_memory_bytes", "time_per_epoch_s",
]


def records_frame(records: list[dict]) -> pd.DataFrame:
    rows = [{**r, "method": method_label(r["method"], r["method_options"])} for r in records]
    return pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or SUMMARY_COLUMNS)


def summarize(records: list[dict]) -> pd.DataFrame:
    """One row per (method, task) from the ``ok`` records; failed trials are left to ``failures``."""
    df = records_frame(records)
    ok = df[df["status"] == "ok"] if len(df) else df
    if ok.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    per_lr = ok.groupby(["method", "task", "learning_rate"], sort=False).agg(
        val_mean=("val_score", "mean"),
        test_score_mean=("test_score", "mean"),
        test_score_std=("test_score", lambda s: s.std(ddof=1) if len(s) > 1 else 0.0),
        n_seeds=("seed", "nunique"),
        trainable_pct=("trainable_pct", "mean"),
        peak_memory_bytes=("peak_memory_bytes", "max"),
        time_per_epoch_s=("time_per_epoch_s", "mean"),
    ).reset_index()
    best = per_lr.loc[per_lr.groupby(["method", "task"], sort=False)["val_mean"].idxmax()]
    return best[SUMMARY_COLUMNS].reset_index(drop=True)


def failures(records: list[dict]) -> list[dict]:
    return [r for r in records if r["status"] != "ok"]


def markdown(summary: pd.DataFrame, failed: list[dict] = ()) -> str:
    """Rows: methods; columns: tasks (test mean ± std), then trainable %, peak memory, time/epoch."""
    tasks = list(dict.fromkeys(summary["task"]))
    header = ["method", *tasks, "trainable %", "peak memory (MB)", "time/epoch (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, rows in summary.groupby("method", sort=False):
        by_task = rows.set_index("task")
        cells = [
            f"{by_task.at[t, 'test_score_mean']:.2f} ± {by_task.at[t, 'test_score_std']:.2f}"
            if t in by_task.index else "—"
            for t in tasks
        ]
        cells += [
            f"{rows['trainable_pct'].mean():.3f}",
            f"{rows['peak_memory_bytes'].max() / 1e6:.0f}",
            f"{rows['time_per_epoch_s'].mean():.2f}",
        ]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    for r in failed:
        lines.append(f"\nfailed: {r['trial_id']}: {r['error']}")
    return "\n".join(lines)


def report(out_dir: str | Path, fmt: str = "md") -> str:
    """Print-ready report of a sweep folder; ``csv`` also writes ``DIR/summary.csv``."""
    records = read_records(out_dir)
    if not records:
        raise FileNotFoundError(f"no result records under {Path(out_dir) / 'results'}")
    summary = summarize(records)
    if fmt == "csv":
        path = Path(out_dir) / "summary.csv"
        summary.to_csv(path, index=False)
        return f"wrote {path}"
    return markdown(summary, failures(records))
