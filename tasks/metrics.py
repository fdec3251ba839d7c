"""Metrics on the paper's ×100 scale, as functions of (predicted label ids, reference label ids).

A prediction of ``INVALID`` (-1) is a wrong answer: it never equals a reference.
"""

from __future__ import annotations


def accuracy(preds: list[int], refs: list[int]) -> dict[str, float]:
    if not refs:
        raise ValueError("accuracy of an empty split")
    return {"accuracy": 100.0 * sum(p == r for p, r in zip(preds, refs, strict=True)) / len(refs)}
