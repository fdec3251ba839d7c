"""SuperGLUE tasks in the Compacter paper's text-to-text format (its source prefixes; targets are
the hub's label names; ReCoRD's target is an answer entity)."""

from __future__ import annotations

from tasks import record
from tasks.base import ClassificationTask
from tasks.glue import SMALL_EPOCHS, fields
from tasks.metrics import accuracy, em, f1a, macro_f1

SUPERGLUE_HUB = "aps/super_glue"
SUPERGLUE_REVISION = "3de24cf8022e94f4ee4b9d55a6f539891524d646"
FALSE_TRUE = ("False", "True")


def question_of(example: dict) -> tuple[int, int]:
    """MultiRC rows are answer options; a question is the unit of its exact match and its split."""
    return example["idx"]["paragraph"], example["idx"]["question"]


def superglue(name: str, cls=ClassificationTask, **spec):
    return cls(
        name=name, version="1.0.0", hub_path=SUPERGLUE_HUB, hub_config=name, revision=SUPERGLUE_REVISION,
        **{"max_source_length": 256, **spec},
    )


TASKS = [
    superglue("boolq", formatter=fields("question", "passage"), label_texts=FALSE_TRUE, metrics=(accuracy,),
              epochs=SMALL_EPOCHS),
    superglue("cb", formatter=fields("premise", "hypothesis"), label_texts=("entailment", "contradiction", "neutral"),
              metrics=(macro_f1, accuracy), epochs=SMALL_EPOCHS),
    superglue("copa", formatter=fields("premise", "choice1", "choice2"), label_texts=("choice1", "choice2"),
              metrics=(accuracy,), epochs=SMALL_EPOCHS),
    superglue("multirc", formatter=fields("question", "answer", "paragraph"), label_texts=FALSE_TRUE,
              metrics=(f1a,), group_metrics=(em,), unit=question_of),
    superglue("record", cls=record.RecordTask, formatter=record.record_source, metrics=(record.f1, record.em),
              max_source_length=512),
    superglue("wic", formatter=fields("sentence1", "sentence2", "word"), label_texts=FALSE_TRUE,
              metrics=(accuracy,), epochs=SMALL_EPOCHS),
]
