"""GLUE tasks in the Compacter paper's text-to-text format, declared in ``builtin/glue.yaml`` as any
user's task file is; and ``fields``, the paper's source format, for the tasks that stay in Python."""

from __future__ import annotations

from pathlib import Path

from peftbench.tasks.declared import load_task_file

BUILTIN = Path(__file__).parent / "builtin"
SMALL_EPOCHS = 20  # the paper's epochs on the small sets (the declarations say it per task)


def fields(*names: str):
    """A formatter writing ``name: value`` for each field in order: the paper's source strings."""
    def formatter(ex: dict) -> str:
        return " ".join(f"{n}: {ex[n]}" for n in names)

    formatter.__name__ = "_".join(names)
    formatter.__doc__ = f"{{{', '.join(repr(n) + ': ...' for n in names)}}} -> \"{': ... '.join(names)}: ...\""
    return formatter


TASKS = load_task_file(BUILTIN / "glue.yaml")
