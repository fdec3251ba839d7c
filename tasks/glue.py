"""GLUE tasks in the Compacter paper's text-to-text format."""

from __future__ import annotations

from tasks.base import Task
from tasks.metrics import accuracy

GLUE_HUB = "nyu-mll/glue"
GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"


def sentence(ex: dict) -> str:
    """{"sentence": "a gripping film .", "label": 1} -> "sentence: a gripping film ." """
    return f"sentence: {ex['sentence']}"


def sentence_pair(ex: dict) -> str:
    """{"sentence1": "A cat sat.", "sentence2": "A cat is sitting.", ...}
    -> "sentence1: A cat sat. sentence2: A cat is sitting." """
    return f"sentence1: {ex['sentence1']} sentence2: {ex['sentence2']}"


SST2 = Task(
    name="sst2",
    version="1.0.0",
    hub_path=GLUE_HUB,
    hub_config="sst2",
    revision=GLUE_REVISION,
    formatter=sentence,
    label_texts=("negative", "positive"),
    metrics=(accuracy,),
)

RTE = Task(
    name="rte",
    version="1.0.0",
    hub_path=GLUE_HUB,
    hub_config="rte",
    revision=GLUE_REVISION,
    formatter=sentence_pair,
    label_texts=("entailment", "not_entailment"),
    metrics=(accuracy,),
)

TASKS = [SST2, RTE]
