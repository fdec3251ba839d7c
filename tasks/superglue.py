"""SuperGLUE tasks in the Compacter paper's text-to-text format: its source fields; targets the
hub's label names or, in the original code's format, label digits (COPA "0"/"1", not "choice1");
ReCoRD's target is an answer entity in both. The task prefix (``TextFormat(prefix=True)``) is the
original code's task name, ``superglue-<name>``."""

from __future__ import annotations

import re

from peftbench.tasks import record
from peftbench.tasks.base import ClassificationTask
from peftbench.tasks.glue import SMALL_EPOCHS, fields
from peftbench.tasks.metrics import accuracy, em, f1a, macro_f1_over

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


TASKS = [
    superglue("boolq", formatter=fields("question", "passage"), label_texts=FALSE_TRUE, metrics=(accuracy,),
              epochs=SMALL_EPOCHS),
    superglue("cb", formatter=fields("premise", "hypothesis"), label_texts=("entailment", "contradiction", "neutral"),
              metrics=(macro_f1_over(3), accuracy), epochs=SMALL_EPOCHS),
    superglue("copa", formatter=fields("premise", "choice1", "choice2"), label_texts=("choice1", "choice2"),
              metrics=(accuracy,), epochs=SMALL_EPOCHS),
    superglue("multirc", formatter=multirc_source, label_texts=FALSE_TRUE,
              metrics=(f1a,), group_metrics=(em,), unit=question_of),
    superglue("record", cls=record.RecordTask, formatter=record.record_source,
              metrics=(record.squad_f1, record.squad_em), max_source_length=512),
    superglue("wic", formatter=fields("sentence1", "sentence2", "word"), label_texts=FALSE_TRUE,
              metrics=(accuracy,), epochs=SMALL_EPOCHS),
]
