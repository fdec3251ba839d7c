"""GLUE, SuperGLUE, vision-and-language and video-and-language tasks as declarative specs, looked up by name."""

from collections.abc import Mapping, Sequence

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
from peftbench.tasks.video import TASKS as _VIDEO
from peftbench.tasks.video import VideoTask
from peftbench.tasks.vl import TASKS as _VL
from peftbench.tasks.vl_metrics import PAPER_NAMES

_REGISTRY: dict[str, Task] = {t.name: t for t in _GLUE + _SUPERGLUE + _VL + _VIDEO}
_BUILT_IN = frozenset(_REGISTRY)  # the package's own tasks (some declared in task files too): never replaced
_PAPER_ORDER = tuple(_REGISTRY)  # the built-in tasks in the papers' table order: GLUE, SuperGLUE, then VL


def use_declarations(sent: Sequence[Mapping]) -> list[Task]:
    """Register in this process the tasks a sweep's driver read from task files (``DeclaredTask.sent``),
    so a worker without the file, or the import of anyone's code, looks them up by name as any task.
    A built-in task's name, or one name declared twice in ``sent``, is refused (ValueError); an earlier
    declaration of the name in this process is replaced (the user edited the file since)."""
    from peftbench.tasks.declared import DeclaredData, task_from_declaration

    out: list[Task] = []
    for one in sent:
        name = one["entry"].get("name")
        known = _REGISTRY.get(name)
        if name in _BUILT_IN:
            raise ValueError(f"{one['declared_in']}: name: {name!r} is a built-in task's name")
        if any(t.name == name for t in out):
            raise ValueError(f"{one['declared_in']}: name: {name!r} is declared by two task files")
        if not (isinstance(known, DeclaredData) and known.sent == one):  # a worker process runs many trials
            known = _REGISTRY[name] = task_from_declaration(one)
        out.append(known)
    return out


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r} (known: {', '.join(task_names())})") from None


def task_names() -> list[str]:
    return list(_REGISTRY)


def task_facts(name: str) -> dict:
    """What a report needs to know of task ``name`` from its record alone (reports import no task registry):
    its ``rank`` in the papers' table order (None for a task file's task), the ``paper_name`` the papers'
    tables give it, whether it is a ``vision`` task (and a ``video`` one), its ``metrics`` in order and those it is
    ``scored_metrics`` on, and ``metric_paper_names``:
    each metric's name -> the papers' name of it (a list for the order: records are written with sorted keys)."""
    task = get_task(name)
    return {"rank": _PAPER_ORDER.index(name) if name in _PAPER_ORDER else None,
            # only VL-Adapter's tasks are named otherwise in their paper's table (VQAv2, COCO Caption)
            "paper_name": getattr(task, "paper_name", name),
            "vision": task.images_per_example > 0,
            "video": isinstance(task, VideoTask),
            "metrics": list(task.metric_names),
            "scored_metrics": list(task.scored_metrics),
            "metric_paper_names": {m: PAPER_NAMES.get(m, m) for m in task.metric_names}}


def text_task_names() -> list[str]:
    """The tasks that read text only (no images): GLUE and SuperGLUE."""
    return [name for name in _REGISTRY if get_task(name).images_per_example == 0]


__all__ = ["COUNTS", "INVALID", "T5_STYLE", "ClassificationTask", "DataUnavailable", "Loaded", "Task", "TextFormat",
           "get_task", "paper_splits", "subsample", "task_facts", "task_names", "text_task_names", "use_declarations"]
