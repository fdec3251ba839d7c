"""Methods side by side under one budget: each one's fit, and its peak compared with full
fine-tuning's at one batch, full fine-tuning's largest: Table 3's memory column.

"At the reference batch" is each method's line, fixed + batch × per example, at full fine-tuning's
batch: at the batch that fits, every peak fills the budget, so only one batch compares them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from peftbench.budgets.fit import Fit
from peftbench.budgets.parse import MARGIN, BudgetError, capacity
from peftbench.budgets.plan import find_fit
from peftbench.budgets.workload import Workload

REFERENCE = "full"


def fit_row(workload: Workload, *, budget: str, budget_bytes: int, measure: bool | None = None,
            batch_size: int | None = None, margin: float = MARGIN) -> tuple[dict, Fit]:
    """One workload's fit, with everything a reader needs to know how it was found."""
    start = time.perf_counter()
    fit, _ = find_fit(workload, budget_bytes=budget_bytes, measure=measure, batch_size=batch_size, margin=margin)
    usable = capacity(budget_bytes, margin)
    row = {**workload.describe(), "budget": budget, "budget_bytes": budget_bytes, "margin": margin,
           "usable_bytes": usable, **fit.to_dict(), "seconds": round(time.perf_counter() - start, 2),
           "fits": fit.peak_bytes <= usable}
    return row, fit


def compare_fits(workloads: list[Workload], *, on_row: Callable[[dict], None] = lambda row: None,
                 **how) -> list[dict]:
    """Every workload's row (``fit_row``'s keys, or ``error``), full fine-tuning's first, each handed to
    ``on_row`` as it ends; once full fine-tuning's fit is known, every later row is compared with it."""
    rows, reference = [], None
    for workload in sorted(workloads, key=lambda w: w.method != REFERENCE):
        try:
            row, fit = fit_row(workload, **how)
        except (BudgetError, ValueError) as exc:
            row = {**workload.describe(), "error": str(exc)}
        else:
            if reference is None and workload.method == REFERENCE:
                reference = fit
            if reference is not None:
                at = fit.fixed_bytes + reference.batch_size * fit.bytes_per_example
                row |= {"reference_batch": reference.batch_size, "peak_at_reference_bytes": round(at),
                        "change_vs_full": at / reference.peak_bytes - 1}
        rows.append(row)
        on_row(row)
    return rows
