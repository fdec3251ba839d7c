"""``peftbench methods``, ``compare`` and ``tasks show``: their parsers, the method listing and the
formats a task's examples are shown in."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peftbench.tasks import TextFormat


def one_line(text: str, width: int = 100) -> str:
    """A help text's first sentence on one line (peft's help texts run to paragraphs)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def method_rows(names: list[str] | None = None) -> list[dict]:
    """Each method with its one-line help and its options (name, default, help), from the registry."""
    from peftbench.methods import get_method, method_names

    rows = []
    for name in names or method_names():
        method = get_method(name)
        rows.append({"method": name, "help": method.help, "engine": method.engine,
                     "options": [{"name": o.name, "default": o.default, "help": one_line(o.help)}
                                 for o in method.options()]})
    return rows


def shown_formats(*, method: str | None, task_prefix: str, labels: str) -> list[tuple[TextFormat, list[str]]]:
    """Each text format trials train on under these settings, with the methods that get it: ``auto``
    resolves per method, so without ``method`` every method is placed (one format, or two)."""
    from peftbench.harness.config import text_format
    from peftbench.methods import method_names

    groups: dict[TextFormat, list[str]] = {}
    for name in [method] if method else method_names():
        groups.setdefault(text_format(method=name, task_prefix=task_prefix, labels=labels), []).append(name)
    return list(groups.items())


def show_examples(name: str, split: str, n: int, *, method: str | None, task_prefix: str,
                  labels: str) -> tuple[list[dict], str]:
    """``peftbench tasks show``: the examples in each format (rows for ``--json``) and as text."""
    from peftbench.tasks import catalog

    tasks = catalog.named_tasks(name)
    rows, blocks = [], []
    for fmt, methods in shown_formats(method=method, task_prefix=task_prefix, labels=labels):
        for task in tasks:
            examples = catalog.examples(task, split, n, fmt=fmt)
            rows.append({"text_format": dataclasses.asdict(fmt), "methods": methods, "examples": examples,
                         **({"task": task.name} if len(tasks) > 1 else {})})
            prefix = "with" if fmt.prefix else "without"
            of = f"{task.name}, " if len(tasks) > 1 else ""
            header = f"# {of}{prefix} the task prefix, labels as {fmt.labels}: {', '.join(methods)}"
            blocks.append("\n\n".join([header] + [f"source: {e['source']}\ntarget: {e['target']}" for e in examples]))
    return rows, "\n\n".join(blocks)


def validate_task_file(path: str) -> tuple[list[dict], str]:
    """``peftbench tasks validate``: each task of a task file described (its data's hashes and split
    sizes), with three validation examples as a default trial of full fine-tuning sees them."""
    from peftbench.harness.config import default_of, text_format
    from peftbench.tasks import catalog
    from peftbench.tasks.declared import load_task_file

    fmt = text_format(method="full", task_prefix=default_of("task_prefix"), labels=default_of("labels"))
    rows, blocks = [], []
    for task in load_task_file(path):
        row = {**catalog.describe(task), "examples": catalog.examples(task, "validation", 3, fmt=fmt)}
        rows.append(row)
        sizes = "/".join(str(row["fixture_sizes"][s]) for s in catalog.SPLITS)
        head = (f"# {task.name}: ok; {row.get('data_source', task.hub_source)}; train/validation/test {sizes}; "
                f"metrics {', '.join(row['metrics'])}; max source length {row['max_source_length']}")
        blocks.append("\n\n".join([head] + [f"source: {e['source']}\ntarget: {e['target']}" for e in row["examples"]]))
    return rows, "\n\n".join(blocks)


def add_parsers(sub, *, methods, compare) -> None:
    """The ``methods`` and ``compare`` commands, run by the given functions."""
    p = sub.add_parser("methods", help="the methods, with their options, defaults and help")
    p.add_argument("name", nargs="*", help="only these methods (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=methods)

    p = sub.add_parser("compare", help="several sweep folders side by side, one column group per folder")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--format", choices=("md", "csv"), default="md")
    p.set_defaults(func=compare)
