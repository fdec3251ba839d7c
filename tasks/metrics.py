"""Metrics on the paper's ×100 scale, as functions of (predicted label ids, reference label ids).

Each returns ``{its own name: value}``, so a task's metric names are its metric functions' names.
A prediction of ``INVALID`` (-1) is a model output that was no label and must count as wrong:
- accuracy: -1 never equals a reference;
- binary F1 and Matthews correlation: -1 becomes the opposite of the reference, always an error
  (what the paper's code does for F1 on unparsable outputs);
- macro-F1: -1 is a miss for the reference's class, a false positive for no class; every class
  counts, present or not (an absent class scores F1 0, as in the original code's CB metric);
- Pearson and Spearman: -1 enters as a value below every label (the paper's code maps unparsable
  outputs to -1).
A correlation that is undefined (constant predictions) is 0: no predictive relation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable

INVALID = -1  # a prediction that is no label
# Keys of ``Task.evaluate``'s result that count outputs rather than score them: outputs that could not
# be read, and outputs scored. ``Task.score`` averages every other key.
COUNTS = ("invalid", "examples")


def _skm():
    """sklearn.metrics, imported on first use: listing tasks (``peftbench tasks``) imports this module
    and must start fast; scipy and sklearn cost about a second."""
    from sklearn import metrics

    return metrics


def _wrong_if_invalid(preds: list[int], refs: list[int]) -> list[int]:
    """Binary labels only: an invalid prediction becomes the label that is not the reference."""
    return [1 - r if p == INVALID else p for p, r in zip(preds, refs, strict=True)]


def _check(preds: list, refs: list) -> None:
    if not refs:
        raise ValueError("a metric of an empty split")
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")


def accuracy(preds: list[int], refs: list[int]) -> dict[str, float]:
    _check(preds, refs)
    return {"accuracy": 100.0 * _skm().accuracy_score(refs, preds)}


def f1(preds: list[int], refs: list[int]) -> dict[str, float]:
    """F1 of the positive class (label 1), as GLUE scores MRPC and QQP."""
    _check(preds, refs)
    return {"f1": 100.0 * _skm().f1_score(refs, _wrong_if_invalid(preds, refs), pos_label=1, zero_division=0)}


def f1a(preds: list[int], refs: list[int]) -> dict[str, float]:
    """MultiRC's F1a: binary F1 over every answer option of every question."""
    return {"f1a": f1(preds, refs)["f1"]}


def macro_f1_over(num_classes: int):
    """Macro-F1 over the classes 0 … ``num_classes`` − 1: the unweighted mean of per-class F1, a class
    absent from references and predictions included (F1 0), as the original code scores CB.
    Returns the metric, named ``macro_f1``."""
    labels = list(range(num_classes))

    def macro_f1(preds: list[int], refs: list[int]) -> dict[str, float]:
        _check(preds, refs)
        return {"macro_f1": 100.0 * _skm().f1_score(refs, preds, labels=labels, average="macro", zero_division=0)}

    return macro_f1


def matthews_corr(preds: list[int], refs: list[int]) -> dict[str, float]:
    _check(preds, refs)
    return {"matthews_corr": 100.0 * _skm().matthews_corrcoef(refs, _wrong_if_invalid(preds, refs))}


def pearson(preds: list[float], refs: list[float]) -> dict[str, float]:
    from scipy import stats  # on first use, as sklearn above

    return {"pearson": _correlation(stats.pearsonr, preds, refs)}


def spearman(preds: list[float], refs: list[float]) -> dict[str, float]:
    from scipy import stats

    return {"spearman": _correlation(stats.spearmanr, preds, refs)}


def _correlation(fn, preds: list[float], refs: list[float]) -> float:
    _check(preds, refs)
    if len(set(preds)) < 2 or len(set(refs)) < 2:
        return 0.0  # undefined for a constant; scipy would warn and return nan
    value = float(fn(preds, refs)[0])
    return 0.0 if math.isnan(value) else 100.0 * value


def em(preds: list[int], refs: list[int], groups: list[Hashable]) -> dict[str, float]:
    """MultiRC's exact match: the share of groups (questions) whose every answer label is right."""
    _check(preds, refs)
    right: dict[Hashable, bool] = defaultdict(lambda: True)
    for p, r, g in zip(preds, refs, groups, strict=True):
        right[g] &= p == r
    return {"em": 100.0 * sum(right.values()) / len(right)}
