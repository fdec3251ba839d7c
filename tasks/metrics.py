"""Metrics on the paper's ×100 scale, as functions of (predicted label ids, reference label ids).

Each returns ``{its own name: value}``, so a task's metric names are its metric functions' names.
A prediction of ``INVALID`` (-1) is a model output that was no label and must count as wrong:
- accuracy: -1 never equals a reference;
- binary F1 and Matthews correlation: -1 becomes the opposite of the reference, always an error
  (what the paper's code does for F1 on unparsable outputs);
- macro-F1: -1 is a miss for the reference's class, a false positive for no class;
- Pearson and Spearman: -1 enters as a value below every label (the paper's code maps unparsable
  outputs to -1).
A correlation that is undefined (constant predictions) is 0: no predictive relation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable

INVALID = -1  # a prediction that is no label


def _sklearn():
    """sklearn's metrics, imported on first use: listing tasks must not wait for sklearn and scipy."""
    from sklearn import metrics

    return metrics


def _stats():
    from scipy import stats

    return stats


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
    return {"accuracy": 100.0 * _sklearn().accuracy_score(refs, preds)}


def f1(preds: list[int], refs: list[int]) -> dict[str, float]:
    """F1 of the positive class (label 1), as GLUE scores MRPC and QQP."""
    _check(preds, refs)
    return {"f1": 100.0 * _sklearn().f1_score(refs, _wrong_if_invalid(preds, refs), pos_label=1, zero_division=0)}


def f1a(preds: list[int], refs: list[int]) -> dict[str, float]:
    """MultiRC's F1a: binary F1 over every answer option of every question."""
    return {"f1a": f1(preds, refs)["f1"]}


def macro_f1(preds: list[int], refs: list[int]) -> dict[str, float]:
    """Unweighted mean of per-class F1 over the classes present in references or predictions."""
    _check(preds, refs)
    labels = sorted(set(refs) | {p for p in preds if p != INVALID})
    return {"macro_f1": 100.0 * _sklearn().f1_score(refs, preds, labels=labels, average="macro", zero_division=0)}


def matthews_corr(preds: list[int], refs: list[int]) -> dict[str, float]:
    _check(preds, refs)
    return {"matthews_corr": 100.0 * _sklearn().matthews_corrcoef(refs, _wrong_if_invalid(preds, refs))}


def pearson(preds: list[float], refs: list[float]) -> dict[str, float]:
    return {"pearson": _correlation(_stats().pearsonr, preds, refs)}


def spearman(preds: list[float], refs: list[float]) -> dict[str, float]:
    return {"spearman": _correlation(_stats().spearmanr, preds, refs)}


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
