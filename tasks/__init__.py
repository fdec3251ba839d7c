"""GLUE, SuperGLUE and vision-and-language tasks as declarative specs, looked up by name."""

from peftbench.tasks.base import (
    T5_STYLE,
    ClassificationTask,
    DataUnavailable,
    Loaded,
    Task,
    TextFormat,
    paper_splits,
    subsample,
)
from peftbench.tasks.glue import TASKS as _GLUE
from peftbench.tasks.metrics import COUNTS, INVALID
from peftbench.tasks.superglue import TASKS as _SUPERGLUE
from peftbench.tasks.vl import TASKS as _VL

_REGISTRY: dict[str, Task] = {t.name: t for t in _GLUE + _SUPERGLUE + _VL}


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(task_names())})") from None


def task_names() -> list[str]:
    return list(_REGISTRY)


def text_task_names() -> list[str]:
    """The tasks that read text only (no images): GLUE and SuperGLUE."""
    return [name for name in _REGISTRY if get_task(name).images_per_example == 0]


__all__ = ["COUNTS", "INVALID", "T5_STYLE", "ClassificationTask", "DataUnavailable", "Loaded", "Task", "TextFormat",
           "get_task", "paper_splits", "subsample", "task_names", "text_task_names"]
