"""VL-Adapter's Table 1 layout: each vision-and-language task's test metrics under the paper's names
(VQAv2 VQA accuracy, GQA accuracy, NLVR2 accuracy, COCO Caption CIDEr and BLEU-4; the video half's TVQA and
How2QA accuracy, TVC and YC2C CIDEr, BLEU-4 and ROUGE-L), per method, at the
learning rate the report selected for that method and task (for a mixture: on the mean validation score
over its members), mean over seeds of the records' own metrics. One table for the VL tasks trained one at
a time, one per mixture that has VL members."""

from __future__ import annotations

import math

import pandas as pd

from peftbench.harness.records import not_computed
from peftbench.methods import method_label
from peftbench.reports import multitask, select
from peftbench.reports.tables import (
    HIGHER,
    LOWER,
    UNRANKED,
    Table,
    best_cells,
    display_names,
    invalid_text,
    number,
    shown,
    task_order,
)


def vision_tasks(summary: pd.DataFrame, records: list[dict]) -> dict[str, dict]:
    """The VL tasks of ``summary`` in the papers' order, each with its ``task_facts`` as ``records`` say them
    (paper name, metrics in order and their paper names); records from before task facts were recorded name none."""
    facts = select.facts_by_task(records)
    return {t: facts[t] for t in task_order(summary) if (facts.get(t) or {}).get("vision")}


def layout(tasks: dict[str, dict]) -> str:
    """Which of VL-Adapter's tables ``tasks`` (name -> its record's task facts) are laid out as: the
    image-text Table 1, the video-text one, or both."""
    video = {bool(facts.get("video")) for facts in tasks.values()}
    if video == {False}:
        return "VL-Adapter Table 1 layout"
    return "VL-Adapter's video-text layout" if video == {True} else "VL-Adapter's image-text and video-text layouts"


def selection_note(tasks: dict[str, dict]) -> str:
    """Which metric a trial selects on, for the tasks scored on fewer than all their metrics (the captions: CIDEr)."""
    chosen = [f"{facts['paper_name']}'s {' and '.join(facts['metric_paper_names'].get(m, m) for m in scored)}"
              for facts in tasks.values()
              if (scored := facts.get("scored_metrics") or facts["metrics"]) != facts["metrics"]]
    if not chosen:
        return "."
    return f"; {', '.join(chosen)} {'is the score' if len(chosen) == 1 else 'are the scores'} a trial selects on."


def metric_means(records: list[dict], task: str, cell: pd.Series, metrics: tuple[str, ...]) -> dict[str, float]:
    """Each metric's mean over the ``ok`` records of ``task``'s summary cell at its selected learning rate."""
    own = [r for r in records if r["status"] == "ok" and r["task"] == task
           and method_label(r["method"], r["method_options"]) == cell["method"]
           and r["learning_rate"] == cell["learning_rate"] and r.get("model") == cell["model"]
           and select.data_kind(r.get("data_source")) == cell["data"]]
    # a metric a record lacks (made before the task listed it) is NaN, shown as "—"
    return {m: sum(r["test_metrics"].get(m, math.nan) for r in own) / len(own) if own else math.nan for m in metrics}


def absence_notes(records: list[dict], tasks: dict[str, dict]) -> list[str]:
    """One line per metric some trial could not compute (its test metrics' ``not_computed``: METEOR without
    Java), under the paper's name: ``METEOR: not computed (java not found)``."""
    lines = {}
    for r in records:
        if r["status"] == "ok" and r["task"] in tasks:
            for name, why in not_computed(r.get("test_metrics")).items():
                lines[f"{tasks[r['task']]['metric_paper_names'].get(name, name)}: not computed ({why})"] = None
    return list(lines)


def vl_table(key: str, title: str, summary: pd.DataFrame, records: list[dict], note: str) -> Table | None:
    """The VL tasks of ``summary`` (one row per setting and method), or None when it has none; ``title`` gains
    the layout its tasks follow."""
    tasks = vision_tasks(summary, records) if not summary.empty else {}
    if not tasks:
        return None
    columns = [c for c in select.SETTING if summary[c].nunique() > 1]
    cells = [(t, m) for t, facts in tasks.items() for m in facts["metrics"]]
    header = [*columns, "method", *(f"{tasks[t]['paper_name']} {tasks[t]['metric_paper_names'][m]}" for t, m in cells),
              "trainable %"]
    names = display_names(summary)
    rows, values, groups = [], [], []
    for setting, own in select.settings(summary):
        prefix = [dict(zip(select.SETTING, setting, strict=True))[c] for c in columns]
        for method in sorted(set(own["method"])):
            by_task = own[own["method"] == method].set_index("task")
            found = {t: metric_means(records, t, by_task.loc[t], tuple(facts["metrics"]))
                     for t, facts in tasks.items() if t in by_task.index}
            scores = [found.get(t, {}).get(m, math.nan) for t, m in cells]
            # a task's invalid outputs beside its first metric (they count against every one)
            invalid = [invalid_text(by_task.loc[t]) if t in by_task.index and m == tasks[t]["metrics"][0]
                       else "" for t, m in cells]
            pct = by_task["trainable_pct"].mean()
            rows.append([*prefix, names[method],
                         *(number(s) + (f" ({i})" if i else "") for s, i in zip(scores, invalid, strict=False)),
                         number(pct, 3)])
            values.append([*(None for _ in prefix), None, *(shown(s, 2) for s in scores), shown(pct, 3)])
            groups.append(setting)
    directions = [UNRANKED] * (len(columns) + 1) + [HIGHER] * len(cells) + [LOWER]
    notes = [note, f"Metrics as VL-Adapter names them (×100){selection_note(tasks)}", *absence_notes(records, tasks),
             "Bold: the best of its column."]
    return Table(key, f"{title} ({layout(tasks)})", header, rows, notes, best_cells(values, directions, groups))


def tables(records: list[dict], single: pd.DataFrame, baseline: str) -> list[Table]:
    """The VL table of the single-task trials, then one per mixture with VL members."""
    out = [vl_table("vl", "Vision and language", single,
                    [r for r in records if not multitask.is_mixture(r)],
                    "Each task trained on its own; test metrics at the learning rate with the best mean "
                    "validation score, mean over seeds.")]
    members = multitask.member_rows([r for r in records if multitask.is_mixture(r)])
    for name, summary in multitask.mixture_summaries(records, baseline).items():
        out.append(vl_table(f"vl_{name}", f"Vision and language: {name}", summary,
                            [r for r in members if r["mixture_name"] == name],
                            f"One model trained on the mixture {name}; each member's test metrics at the learning "
                            "rate with the best mean validation score over its members, mean over seeds. "
                            "Trainable %: the one model's, counted once."))
    return [t for t in out if t is not None]
