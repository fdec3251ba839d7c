"""GLUE tasks in the Compacter paper's text-to-text format: its source fields; targets the hub's
label names or, in the original code's format, label digits; STS-B's score rounded to the nearest
0.2 as text in both. The task prefix (``TextFormat(prefix=True)``) is the task's name, as there."""

from __future__ import annotations

import math

from peftbench.tasks.base import ClassificationTask
from peftbench.tasks.metrics import accuracy, f1, matthews_corr, pearson, spearman

GLUE_HUB = "nyu-mll/glue"
GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"
SMALL_EPOCHS = 20  # the paper's epochs on MRPC, CoLA, STS-B, RTE (3 on the large sets)


def fields(*names: str):
    """A formatter writing ``name: value`` for each field in order: the paper's source strings."""
    def formatter(ex: dict) -> str:
        return " ".join(f"{n}: {ex[n]}" for n in names)

    formatter.__name__ = "_".join(names)
    formatter.__doc__ = f"{{{', '.join(repr(n) + ': ...' for n in names)}}} -> \"{': ... '.join(names)}: ...\""
    return formatter


sentence = fields("sentence")
sentence_pair = fields("sentence1", "sentence2")


def stsb_bin(example: dict) -> int:
    """STS-B's similarity score (0-5) as one of 26 classes, the score rounded to the nearest 0.2,
    ties up: 2.53 -> 13 ("2.6"). The paper says 21 classes; 0 to 5 in steps of 0.2 are 26 values."""
    return math.floor(example["label"] * 5 + 0.5)


STSB_TEXTS = tuple(f"{k / 5:.1f}" for k in range(26))


def glue(name: str, **spec) -> ClassificationTask:
    return ClassificationTask(
        name=name, version="1.0.0", hub_path=GLUE_HUB, hub_config=name, revision=GLUE_REVISION,
        max_source_length=128, **spec,
    )


TASKS = [
    glue("cola", formatter=sentence, label_texts=("unacceptable", "acceptable"), metrics=(matthews_corr,),
         epochs=SMALL_EPOCHS),
    glue("sst2", formatter=sentence, label_texts=("negative", "positive"), metrics=(accuracy,)),
    glue("mrpc", formatter=sentence_pair, label_texts=("not_equivalent", "equivalent"), metrics=(f1, accuracy),
         epochs=SMALL_EPOCHS),
    glue("qqp", formatter=fields("question1", "question2"), label_texts=("not_duplicate", "duplicate"),
         metrics=(f1, accuracy)),
    # the target is the number itself in either label style (the original code: str of the rounded score)
    glue("stsb", formatter=sentence_pair, label_texts=STSB_TEXTS, label_digits=STSB_TEXTS, label=stsb_bin,
         metrics=(pearson, spearman), epochs=SMALL_EPOCHS),
    glue("mnli", formatter=fields("premise", "hypothesis"), label_texts=("entailment", "neutral", "contradiction"),
         metrics=(accuracy,),
         hub_splits={"train": "train", "validation": "validation_mismatched", "test": "validation_matched"}),
    glue("qnli", formatter=fields("question", "sentence"), label_texts=("entailment", "not_entailment"),
         metrics=(accuracy,)),
    glue("rte", formatter=sentence_pair, label_texts=("entailment", "not_entailment"), metrics=(accuracy,),
         epochs=SMALL_EPOCHS),
]
