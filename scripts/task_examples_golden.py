"""Write tests/tasks/golden/task_examples.json: a digest of every built-in task's formatted fixture
examples (each split, each text format) and its ``peftbench tasks`` row, so a rewrite of how
tasks are declared can be checked byte for byte against the code before it. Run from the
repository root at the commit to compare to:
    .venv/bin/python scripts/task_examples_golden.py
"""

import hashlib
import json
import sys
from pathlib import Path

from peftbench.files import write_text
from peftbench.tasks import TextFormat, catalog, get_task, task_names

FORMATS = [TextFormat(prefix=p, labels=labels) for p in (False, True) for labels in ("names", "digits")]
OUT = Path("tests/tasks/golden/task_examples.json")


def digest(task, rows: list[dict], fmt: TextFormat) -> dict:
    """The examples' sources and targets, hashed together, and the first pair in full (to read a diff by)."""
    pairs = [[task.source(ex, fmt), task.target(ex, fmt)] for ex in rows]
    blob = json.dumps(pairs, ensure_ascii=False).encode()
    return {"sha256": hashlib.sha256(blob).hexdigest(), "count": len(pairs), "first": pairs[0] if pairs else None}


def main() -> int:
    golden = {}
    for name in task_names():
        task = get_task(name)
        splits = task.load("fixtures")
        golden[name] = {f"{split}/{'prefix' if fmt.prefix else 'plain'}/{fmt.labels}": digest(task, rows, fmt)
                        for split, rows in splits.items() for fmt in FORMATS}
        golden[name]["listing"] = catalog.describe(task)
    write_text(OUT, json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(golden)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
