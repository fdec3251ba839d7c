"""The report of a sweep folder: per method and task, the test score at the learning rate with the
best mean validation score (mean ± std over seeds), with trainable share, memory and time, the
comparisons against full fine-tuning, and the paper's figures, in markdown, CSV, LaTeX or HTML."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from peftbench.files import read_bytes, write_text
from peftbench.harness.folder import grid_trial_ids
from peftbench.harness.records import bad_file_lines, read_records
from peftbench.reports import multitask, render, samples, select, settings, tables, timing, vl
from peftbench.reports.footer import provenance_lines
from peftbench.reports.select import BASELINE, SUMMARY_COLUMNS, failures, summarize

__all__ = ["FORMATS", "SUMMARY_COLUMNS", "Report", "build", "failures", "report", "summarize"]

FORMATS = ("md", "csv", "json", "latex", "html", "all")
SUFFIX = {"md": ".md", "csv": ".csv", "json": ".json", "latex": ".tex", "html": ".html"}


@dataclass
class Report:
    """Everything a report shows, computed once from the records."""

    records: list[dict]
    summary: pd.DataFrame
    failed: list[dict]
    baseline: str | None
    tables: list[tables.Table]
    footer: list[str]
    source: str
    banner: list[str]  # what a reader must know before any number: fixtures, failures, skipped files


def build(out_dir: str | Path, *, baseline: str = BASELINE, min_effect: float | None = None) -> Report:
    """Read the records (setting aside, and naming, any file that is not one) and make every table;
    ``min_effect`` is the difference the seeds must be able to detect (default: the observed one)."""
    bad = []
    records = read_records(out_dir, on_bad=lambda path, reason: bad.append((path, reason)))
    skipped = bad_file_lines(bad)
    if not records:
        raise FileNotFoundError(" ".join([f"no result records under {Path(out_dir) / 'results'}", *skipped]))
    # mixture trials have tables of their own (reports/multitask.py); the paper's tables are single tasks'
    summary = summarize([r for r in records if not multitask.is_mixture(r)], baseline=baseline)
    base = select.baseline_label(summary, baseline) if len(summary) else None
    failed = failures(records)
    made = [] if summary.empty else tables.all_tables(summary, failed, base, min_effect=min_effect)[:-1]
    made += [*multitask.tables(records, summary, baseline), *vl.tables(records, summary, baseline),
             settings.hyperparameter_table(records),
             *[t for t in [timing.prediction_table(out_dir, records)] if t is not None],
             *[t for t in [samples.invalid_outputs_table(records, out_dir)] if t], tables.failures_table(failed)]
    made[0].notes += [f"Score check: {m}" for m in [*select.score_mismatches(records),
                                                     *multitask.score_mismatches(records)]]
    return Report(records, summary, failed, base, made, provenance_lines(records, str(out_dir)), str(out_dir),
                  [*banner_lines(records, failed), *missing_lines(out_dir, records), *skipped])


def banner_lines(records: list[dict], failed: list[dict]) -> list[str]:
    """The report's opening lines: trials ok and failed, and where the data was not the benchmark's."""
    lines = [f"{len(records) - len(failed)} of {len(records)} trials ok, {len(failed)} failed"
             + (" (listed under Failed trials)." if failed else ".")]
    # a trial that failed before loading its data (a lost worker) names none: that is not old records
    named = [r for r in records if r.get("data_source") or r["status"] == "ok"]
    kinds = [select.data_kind(r.get("data_source")) for r in named]
    fixtures, unknown = kinds.count("fixtures"), kinds.count(select.UNKNOWN)
    if named and fixtures == len(named):
        lines.append("Made from offline FIXTURES (a few examples per task, for testing the pipeline), not the "
                     "benchmark's datasets: these numbers say nothing about the methods.")
    elif fixtures:
        lines.append(f"{fixtures} of {len(records)} records trained on offline FIXTURES, not the benchmark's "
                     "datasets; they are reported in rows of their own (data: fixtures).")
    if unknown:
        lines.append(f"{unknown} of {len(records)} records do not say which data they trained on (written before "
                     "records had a data_source); their data is reported as unknown.")
    return lines


def missing_lines(out_dir: str | Path, records: list[dict]) -> list[str]:
    """A line when points of the sweep's grid (``grid.json``, written by the sweep) have no record:
    the means above are then over fewer trials than the sweep asked for."""
    wanted = grid_trial_ids(Path(out_dir))
    missing = sorted(set(wanted or ()) - {r["trial_id"] for r in records})
    if not missing:
        return []
    return [(f"{len(missing)} of {len(wanted)} grid points have no record (never ran, were lost or set aside), "
             f"e.g. {missing[0]}: peftbench sweep SPEC --out {out_dir} --resume runs them.")]


def targets(out_dir: Path, fmt: str, out: str | Path | None) -> tuple[Path, Path | None]:
    """(folder, file): ``--out`` names a folder, or the file itself when it ends in the format's suffix."""
    if out is None:
        return out_dir, None
    out = Path(out)
    if fmt in SUFFIX and out.suffix == SUFFIX[fmt]:
        return out.parent, out
    return out, None


def report(out_dir: str | Path, fmt: str = "md", *, out: str | Path | None = None,
           baseline: str = BASELINE, min_effect: float | None = None) -> str:
    """Print-ready report of a sweep folder.

    ``md`` returns markdown (and writes it, with the figures, when ``out`` is given); ``csv`` writes
    ``summary.csv`` (one row per method, task and train size), ``efficiency.csv`` and
    ``failures.csv``; ``json`` writes ``summary.json`` (every table's every cell, and the numbers);
    ``latex`` and ``html`` write ``report.tex`` / ``report.html``; ``all`` does every one.
    Files go to ``out`` (a folder, or a file with the format's suffix), else ``out_dir``.
    The PNG and SVG of each figure go next to any report file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    rep = build(out_dir, baseline=baseline, min_effect=min_effect)
    folder, file = targets(Path(out_dir), fmt, out)
    text = render.markdown(rep.tables, rep.footer, banner=rep.banner)
    if fmt == "md" and out is None:
        return text
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt in ("csv", "all"):
        written += write_csvs(rep, folder, file if fmt == "csv" else None)
    if fmt in ("json", "all"):
        written.append(write_json(rep, (file if fmt == "json" else None) or folder / "summary.json"))
    if fmt in ("md", "latex", "html", "all"):
        written += write_documents(rep, folder, file, fmt)
    listing = "\n".join(f"wrote {p}" for p in written)
    return f"{text}\n{listing}" if fmt in ("md", "all") else listing


def write_csvs(rep: Report, folder: Path, file: Path | None) -> list[Path]:
    """Numbers, not formatted text: the summary, the efficiency table and the failed trials."""
    paths = [file or folder / "summary.csv", folder / "efficiency.csv", folder / "failures.csv"]
    mixtures = multitask.summary_frame(rep.records, rep.baseline or BASELINE)
    if not mixtures.empty:  # one row per mixture, method and member task
        paths.append(folder / "multitask.csv")
        write_text(paths[-1], mixtures.to_csv(index=False))
    write_text(paths[0], rep.summary.drop(columns="test_scores").to_csv(index=False))
    cells = select.at_train_size(rep.summary, select.main_train_size(rep.summary))
    write_text(paths[1], select.efficiency_by_setting(cells, rep.baseline).to_csv(index=False))
    failed = pd.DataFrame([{**{k: r[k] for k in ("trial_id", "model", "method", "task", "learning_rate", "seed",
                                                  "error")},
                            "data_source": r.get("data_source") or select.UNKNOWN,
                            "method_options": r["method_options"], "train_size": r.get("train_size")}
                           for r in rep.failed],
                          columns=["trial_id", "model", "data_source", "method", "method_options", "task",
                                   "learning_rate", "seed", "train_size", "error"])
    write_text(paths[2], failed.to_csv(index=False))
    return paths


def frame_rows(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as JSON objects (NaN as null)."""
    return json.loads(frame.to_json(orient="records")) if len(frame) else []


def write_json(rep: Report, path: Path) -> Path:
    """The sweep's one results file: the banner, every table as shown (title, header, rows, notes),
    the numbers behind them (one object per summary cell and per mixture member), the failed
    trials and the provenance."""
    document = {
        "source": rep.source, "baseline": rep.baseline, "banner": rep.banner,
        "tables": [{"key": t.key, "title": t.title, "header": t.header, "rows": t.rows, "notes": t.notes}
                   for t in rep.tables],
        "summary": frame_rows(rep.summary),
        "multitask": frame_rows(multitask.summary_frame(rep.records, rep.baseline or BASELINE)),
        "failures": [{k: r.get(k) for k in ("trial_id", "method", "method_options", "task", "learning_rate",
                                             "seed", "train_size", "error")} for r in rep.failed],
        "provenance": rep.footer,
    }
    return write_text(path, json.dumps(document, indent=1, default=str) + "\n")


def write_documents(rep: Report, folder: Path, file: Path | None, fmt: str) -> list[Path]:
    """Figures (PNG + SVG) and the markdown / LaTeX / HTML documents that show them."""
    from peftbench.reports import plots  # matplotlib loads only when a figure is drawn

    figures = plots.make_figures(rep.summary, rep.baseline) if len(rep.summary) else {}
    written = plots.save_figures(figures, folder)
    docs = {
        "md": lambda: render.markdown(rep.tables, rep.footer, banner=rep.banner,
                                      figures={s: f"{s}.png" for s in figures}),
        "latex": lambda: render.latex(rep.tables, rep.footer, banner=rep.banner,
                                      figures={s: (f"{s}.png", caption) for s, (_, caption, _) in figures.items()}),
        "html": lambda: render.html_page(
            rep.tables, rep.footer, title=f"peftbench report: {rep.source}", banner=rep.banner,
            figures={s: (base64.b64encode(read_bytes(folder / f"{s}.png", kind="figure")).decode("ascii"), *rest)
                     for s, (_, *rest) in figures.items()}),
    }
    for kind in (docs if fmt == "all" else [fmt]):
        path = file or folder / f"report{SUFFIX[kind]}"
        write_text(path, docs[kind]())
        written.append(path)
    return written
