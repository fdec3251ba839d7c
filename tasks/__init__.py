"""GLUE and SuperGLUE tasks as declarative specs, looked up by name."""

from tasks.base import INVALID, Task, paper_splits
from tasks.glue import TASKS as _GLUE

_REGISTRY: dict[str, Task] = {t.name: t for t in _GLUE}


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(task_names())})") from None


def task_names() -> list[str]:
    return list(_REGISTRY)


__all__ = ["INVALID", "Task", "get_task", "paper_splits", "task_names"]
