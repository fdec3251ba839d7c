"""ReCoRD: the answer is an entity of the passage, scored SQuAD-style against every gold answer.

Training has one example per gold answer; evaluation keeps one example per query and takes the
best-matching answer (max over answers), as the official metric and the original code's SQuAD
metric do. Any generated text is scored that way, entity of the passage or not (a partial name
earns partial F1). An output with no words left after normalisation (empty, only punctuation or
articles) can match nothing: it scores 0 and is counted ``invalid``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

from peftbench.tasks.base import T5_STYLE, Task, TextFormat
from peftbench.tasks.metrics import TEXTS, check_lengths, register_metric

PUNCTUATION = frozenset(string.punctuation)


def record_source(ex: dict) -> str:
    """{"query": "@placeholder won", "entities": ["Ada", "Bo"], "passage": "Ada met Bo.\\n@highlight\\nBo left"}
    -> "record query: @placeholder won entities: Ada, Bo passage: Ada met Bo. Bo left"
    (T5's ReCoRD format, which the original code writes whatever the task-prefix setting: "record"
    leads the text; highlight markers become sentence breaks; entities once each, in order)."""
    passage = re.sub(r"([.?!\"'])\n@highlight\n", r"\1 ", ex["passage"])
    passage = re.sub(r"\n@highlight\n", ". ", passage)
    entities = ", ".join(dict.fromkeys(ex["entities"]))
    return f"record query: {ex['query']} entities: {entities} passage: {passage}"


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD / ReCoRD convention)."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def scored_texts(metrics, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Each of ``metrics`` over free-text ``predictions`` against every row's ``references``, with the outputs
    that can match nothing (no words left after ``normalize_answer``) counted ``invalid``."""
    out: dict[str, float] = {}
    for metric in metrics:
        out.update(metric(predictions, references))
    return {**out, "invalid": sum(not normalize_answer(p) for p in predictions), "examples": len(predictions)}


def token_f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


@register_metric(higher_is_better=True, inputs=TEXTS)
def squad_f1(preds: list[str], answers: list[list[str]]) -> dict[str, float]:
    """Token F1 against the best-matching gold answer, ×100 (a query without answers scores 0): the
    SQuAD evaluation's F1, which ReCoRD's official scorer uses."""
    check_lengths(preds, answers)
    scores = [max((token_f1(p, a) for a in gold), default=0.0) for p, gold in zip(preds, answers, strict=True)]
    return {"squad_f1": 100.0 * sum(scores) / len(scores)}


@register_metric(higher_is_better=True, inputs=TEXTS)
def squad_em(preds: list[str], answers: list[list[str]]) -> dict[str, float]:
    """Exact match (after normalisation) with any gold answer, ×100: the SQuAD evaluation's."""
    check_lengths(preds, answers)
    hits = [normalize_answer(p) in {normalize_answer(a) for a in gold} for p, gold in zip(preds, answers, strict=True)]
    return {"squad_em": 100.0 * sum(hits) / len(hits)}


@dataclass(frozen=True, kw_only=True)
class RecordTask(Task):
    # Entities are names and short noun phrases; 64 covers them in bytes (ByT5) and with room in
    # T5's subword tokens. A longer answer is cut, and the cut answer still earns partial F1.
    target_length: int = 64

    @property
    def max_target_length(self) -> int:
        return self.target_length

    def target(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        """The first gold answer, in every format (it is text, not a label)."""
        return example["answers"][0] if example["answers"] else ""

    def training_examples(self, rows: list[dict]) -> list[dict]:
        """One example per distinct gold answer; a query without an answer teaches nothing."""
        return [{**r, "answers": [a]} for r in rows for a in dict.fromkeys(r["answers"])]

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        if not examples:
            raise ValueError("a metric of an empty split")
        return scored_texts(self.metrics, predictions, [ex["answers"] for ex in examples])
