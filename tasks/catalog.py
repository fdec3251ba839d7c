"""What ``peftbench tasks`` prints: every task's splits, metrics and lengths, and formatted examples
from the offline fixtures (the hub is never contacted here). The listing never imports torch (it
must start fast): split sizes come from the counts, without drawing the split permutation."""

from __future__ import annotations

from peftbench.tasks import get_task, task_names
from peftbench.tasks.base import SMALL_DATASET, T5_STYLE, VALIDATION_FROM_TRAIN, Task, TextFormat

SPLITS = ("train", "validation", "test")


def split_rule(task: Task) -> str:
    if getattr(task, "split_description", None):  # a task with its paper's own splits says which
        return task.split_description
    if "test" in task.hub_splits:
        return ", ".join(f"{ours} = hub {theirs}" for ours, theirs in task.hub_splits.items())
    unit = "units" if task.unit else "examples"
    return (f"under {SMALL_DATASET:,} training {unit}: hub validation halved into validation and test; "
            f"else {VALIDATION_FROM_TRAIN:,} training {unit} are validation and hub validation is test")


def describe(task: Task) -> dict:
    """A task's declaration as plain data, with its split sizes on the fixtures (in the units the
    split rule counts: rows; questions for MultiRC; queries, before one-per-answer, for ReCoRD); a
    task with data files of its own names them and counts their rows instead."""
    own = getattr(task, "files", None)
    return {
        "name": task.name,
        "version": task.version,
        "hub": {"path": task.hub_path, "config": task.hub_config, "revision": task.revision},
        **({"data_source": task.data_source} if own else {}),
        "split_rule": split_rule(task),
        "fixture_sizes": task.split_sizes(task.read("fixtures")[0] if own else task.load_fixtures()),
        "metrics": list(task.metric_names),
        "labels": list(getattr(task, "label_texts", ())) or None,
        "max_source_length": task.max_source_length,
        "max_target_length": task.max_target_length,
        "epochs": task.epochs,
    }


def table(rows: list[dict]) -> str:
    """One line per task: a summary of ``describe``, each column as wide as its widest cell."""
    cells = [[r["name"], f"{r['hub']['path']}:{r['hub']['config']}", ", ".join(r["metrics"]),
              str(r["max_source_length"]), str(r["max_target_length"]), str(r["epochs"]),
              "/".join(str(r["fixture_sizes"][s]) for s in SPLITS)] for r in rows]
    header = ["task", "hub", "metrics", "src", "tgt", "epochs", "fixture train/val/test"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    right = {3, 4, 5}  # the numbers

    def line(row: list[str]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in cells).rstrip()

    head = line(header)
    return "\n".join([head, "-" * len(head), *(line(c) for c in cells)])


def list_tasks() -> list[dict]:
    return [describe(get_task(name)) for name in task_names()]


def named_tasks(name: str) -> list[Task]:
    """The tasks ``name`` means: a task file's (a path ending in .yaml or .yml), else the built-in task."""
    if name.endswith((".yaml", ".yml")):
        from peftbench.tasks.declared import load_task_file

        return list(load_task_file(name))
    return [get_task(name)]


def examples(task: str | Task, split: str = "validation", n: int = 3, *, fmt: TextFormat = T5_STYLE) -> list[dict]:
    """The first ``n`` examples of a fixture split (a declared task's own data) as the model sees them
    in format ``fmt`` (training ones expanded). Draws the real split, so this one imports torch."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    task = get_task(task) if isinstance(task, str) else task
    rows = task.load("fixtures")[split][:n]
    return [{"source": task.source(ex, fmt), "target": task.target(ex, fmt)} for ex in rows]
