"""The metric registry: every metric on the paper's ×100 scale, registered once with its name, its
direction (higher or lower is better) and its inputs, as lm-eval's ``@register_metric``.

A metric is called as ``metric(predictions, references)`` (``grouped`` ones with the groups too) and
returns ``{its name: value}``; a task's results are keyed by its metrics' names, and a record carries
each name's direction so selection and reports never guess it.

Label metrics read label ids; a prediction of ``INVALID`` (-1) was no label and must count as wrong:
- accuracy: -1 never equals a reference (accuracy also compares answers that are text, normalised by
  the task: GQA, NLVR2);
- binary F1 and Matthews correlation: -1 becomes the opposite of the reference, always an error
  (what the paper's code does for F1 on unparsable outputs);
- macro-F1: -1 is a miss for the reference's class, a false positive for no class; every class
  counts, present or not (an absent class scores F1 0, as in the original code's CB metric);
- Pearson and Spearman: -1 enters as a value below every label (the paper's code maps unparsable
  outputs to -1).
A correlation that is undefined (constant predictions) is 0: no predictive relation.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

INVALID = -1  # a prediction that is no label
# Keys of a task's results that are no metric's value: outputs that could not be read, outputs scored, and
# the metrics that could not be computed here (name -> why, one line: a Java scorer without Java; their
# value is NaN). Everything else in the results is a registered metric.
INVALID_COUNT, EXAMPLES_COUNT, NOT_COMPUTED = "invalid", "examples", "not_computed"
COUNTS = (INVALID_COUNT, EXAMPLES_COUNT, NOT_COMPUTED)
HIGHER, LOWER = "higher", "lower"  # which way a metric (and a score) is better
DIRECTIONS = (HIGHER, LOWER)


@dataclass(frozen=True)
class Metric:
    """A registered metric: its name (the key of its value in results), which way is better, what it
    reads (``inputs``, in words) and the function that computes it."""

    name: str
    direction: str
    inputs: str
    fn: Callable[..., dict[str, float]]

    def __call__(self, *args) -> dict[str, float]:
        return self.fn(*args)


_METRICS: dict[str, Metric] = {}


def register_metric(*, higher_is_better: bool, inputs: str, name: str | None = None):
    """Register the decorated function as a metric, once per name; ``name`` defaults to the function's."""
    def register(fn: Callable[..., dict[str, float]]) -> Metric:
        metric = Metric(name or fn.__name__, HIGHER if higher_is_better else LOWER, inputs, fn)
        if metric.name in _METRICS:
            raise ValueError(f"metric {metric.name!r} is registered twice")
        _METRICS[metric.name] = metric
        return metric
    return register


def get_metric(name: str) -> Metric:
    try:
        return _METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r} (known: {', '.join(sorted(_METRICS))})") from None


def metrics_reading(inputs: str) -> list[str]:
    """The names of the registered metrics that read ``inputs`` (``TEXTS``: squad_em, bleu4, …), sorted."""
    return sorted(name for name, metric in _METRICS.items() if metric.inputs == inputs)


def unregister_metric(name: str) -> None:
    """Drop a metric (a test's own, registered for the test alone)."""
    _METRICS.pop(name, None)


def better(direction: str, a: float, b: float) -> bool:
    """Whether score ``a`` is strictly better than ``b`` for a score of ``direction``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return a > b if direction == HIGHER else a < b

# What a metric reads (its ``inputs``): a task hands each metric the arguments its kind names.
VALUES = "predictions and references compared for equality (label ids, or answers the task normalised)"
LABELS = "predicted label ids and reference label ids"
GROUPED_LABELS = "predicted and reference label ids, and each row's group (a question)"
NUMBERS = "predicted and reference numbers"
TEXTS = "generated texts and each row's reference texts"


def _skm():
    """sklearn.metrics, imported on first use: listing tasks (``peftbench tasks``) imports this module
    and must start fast; scipy and sklearn cost about a second."""
    from sklearn import metrics

    return metrics


def _wrong_if_invalid(preds: list[int], refs: list[int]) -> list[int]:
    """Binary labels only: an invalid prediction becomes the label that is not the reference."""
    return [1 - r if p == INVALID else p for p, r in zip(preds, refs, strict=True)]


def check_lengths(preds: list, refs: list) -> None:
    """A metric's inputs, or a one-line ``ValueError``: a non-empty split, one prediction per reference."""
    if not refs:
        raise ValueError("a metric of an empty split")
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")


@register_metric(higher_is_better=True, inputs=VALUES)
def accuracy(preds: list[Hashable], refs: list[Hashable]) -> dict[str, float]:
    """The share of predictions equal to their reference."""
    check_lengths(preds, refs)
    return {"accuracy": 100.0 * sum(p == r for p, r in zip(preds, refs, strict=True)) / len(refs)}


@register_metric(higher_is_better=True, inputs=LABELS)
def f1(preds: list[int], refs: list[int]) -> dict[str, float]:
    """F1 of the positive class (label 1), as GLUE scores MRPC and QQP."""
    check_lengths(preds, refs)
    return {"f1": 100.0 * _skm().f1_score(refs, _wrong_if_invalid(preds, refs), pos_label=1, zero_division=0)}


@register_metric(higher_is_better=True, inputs=LABELS)
def f1a(preds: list[int], refs: list[int]) -> dict[str, float]:
    """MultiRC's F1a: binary F1 over every answer option of every question."""
    return {"f1a": f1(preds, refs)["f1"]}


@register_metric(higher_is_better=True, inputs=f"{LABELS}, and the number of classes")
def macro_f1(preds: list[int], refs: list[int], num_classes: int) -> dict[str, float]:
    """Macro-F1 over the classes 0 … ``num_classes`` − 1: the unweighted mean of per-class F1, a class
    absent from references and predictions included (F1 0), as the original code scores CB."""
    check_lengths(preds, refs)
    labels = list(range(num_classes))
    return {"macro_f1": 100.0 * _skm().f1_score(refs, preds, labels=labels, average="macro", zero_division=0)}


def macro_f1_over(num_classes: int) -> Metric:
    """The registered ``macro_f1`` with its classes fixed: a metric of (predictions, references)."""
    return dataclasses.replace(macro_f1, inputs=LABELS,
                               fn=lambda preds, refs: macro_f1.fn(preds, refs, num_classes))


@register_metric(higher_is_better=True, inputs=LABELS)
def matthews_corr(preds: list[int], refs: list[int]) -> dict[str, float]:
    check_lengths(preds, refs)
    return {"matthews_corr": 100.0 * _skm().matthews_corrcoef(refs, _wrong_if_invalid(preds, refs))}


@register_metric(higher_is_better=True, inputs=NUMBERS)
def pearson(preds: list[float], refs: list[float]) -> dict[str, float]:
    from scipy import stats  # on first use, as sklearn above

    return {"pearson": _correlation(stats.pearsonr, preds, refs)}


@register_metric(higher_is_better=True, inputs=NUMBERS)
def spearman(preds: list[float], refs: list[float]) -> dict[str, float]:
    from scipy import stats

    return {"spearman": _correlation(stats.spearmanr, preds, refs)}


def _correlation(fn, preds: list[float], refs: list[float]) -> float:
    check_lengths(preds, refs)
    if len(set(preds)) < 2 or len(set(refs)) < 2:
        return 0.0  # undefined for a constant; scipy would warn and return nan
    value = float(fn(preds, refs)[0])
    return 0.0 if math.isnan(value) else 100.0 * value


@register_metric(higher_is_better=True, inputs=GROUPED_LABELS)
def em(preds: list[int], refs: list[int], groups: list[Hashable]) -> dict[str, float]:
    """MultiRC's exact match: the share of groups (questions) whose every answer label is right."""
    check_lengths(preds, refs)
    right: dict[Hashable, bool] = defaultdict(lambda: True)
    for p, r, g in zip(preds, refs, groups, strict=True):
        right[g] &= p == r
    return {"em": 100.0 * sum(right.values()) / len(right)}
