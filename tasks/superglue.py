"""SuperGLUE tasks in the Compacter paper's text-to-text format. The label tasks are declared in
``builtin/superglue.yaml``; MultiRC (markup removed, a question's answers one unit) and ReCoRD (an
answer entity as target, SQuAD scoring) are Python, behind the same ``Task`` interface. The task
prefix (``TextFormat(prefix=True)``) is the original code's task name, ``superglue-<name>``."""

from __future__ import annotations

import re

from peftbench.tasks import record
from peftbench.tasks.base import ClassificationTask
from peftbench.tasks.declared import load_task_file
from peftbench.tasks.glue import BUILTIN, fields
from peftbench.tasks.metrics import em, f1a

SUPERGLUE_HUB = "aps/super_glue"
SUPERGLUE_REVISION = "3de24cf8022e94f4ee4b9d55a6f539891524d646"
FALSE_TRUE = ("False", "True")


def question_of(example: dict) -> tuple[int, int]:
    """MultiRC rows are answer options; a question is the unit of its exact match and its split."""
    return example["idx"]["paragraph"], example["idx"]["question"]


def remove_markup(text: str) -> str:
    """MultiRC's HTML: ``<br>`` becomes a space, ``<b>`` and ``</b>`` go (as T5 and the original code do)."""
    return re.sub(r"</?b>", "", text.replace("<br>", " "))


_multirc_fields = fields("question", "answer", "paragraph")


def multirc_source(ex: dict) -> str:
    """{"question": "Who <b>won</b>?", "answer": "Ada", "paragraph": "Ada won.<br>Bo lost.", ...}
    -> "question: Who won? answer: Ada paragraph: Ada won. Bo lost." (markup removed from all three)."""
    return _multirc_fields({k: remove_markup(ex[k]) for k in ("question", "answer", "paragraph")})


def superglue(name: str, cls=ClassificationTask, **spec):
    return cls(
        name=name, version="1.0.0", hub_path=SUPERGLUE_HUB, hub_config=name, revision=SUPERGLUE_REVISION,
        prefix=f"superglue-{name}", **{"max_source_length": 256, **spec},
    )


_DECLARED = {t.name: t for t in load_task_file(BUILTIN / "superglue.yaml")}

TASKS = [
    _DECLARED["boolq"], _DECLARED["cb"], _DECLARED["copa"],
    superglue("multirc", formatter=multirc_source, label_texts=FALSE_TRUE,
              metrics=(f1a,), group_metrics=(em,), unit=question_of),
    superglue("record", cls=record.RecordTask, formatter=record.record_source,
              metrics=(record.squad_f1, record.squad_em), max_source_length=512),
    _DECLARED["wic"],
]
