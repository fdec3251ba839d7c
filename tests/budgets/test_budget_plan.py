"""The cache (atomic, shared by processes) and the micro-batch / accumulation a trial gets."""

import json
import multiprocessing
import time

import pytest

from peftbench.budgets import plan as budget_plan
from peftbench.budgets.cache import BudgetCache
from peftbench.budgets.fit import Fit
from peftbench.budgets.plan import method_source, plan_batch
from peftbench.budgets.workload import Workload


def fit_of(batch: int) -> Fit:
    return Fit(batch_size=batch, peak_bytes=batch, fixed_bytes=0, bytes_per_example=1, estimated=True, how="test")


def slow_compute(path: str, marker: str) -> None:
    def compute() -> Fit:
        with open(marker, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)  # long enough for the other process to ask meanwhile
        return fit_of(25)

    fit, _ = BudgetCache(path).get_or_compute({"method": "adapter"}, compute)
    assert fit.batch_size == 25


def test_cache_computes_once_across_processes(tmp_path):
    path, marker = tmp_path / "budget-cache.json", tmp_path / "computed.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=slow_compute, args=(str(path), str(marker))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert marker.read_text() == "computed\n"
    data = json.loads(path.read_text())
    assert data["schema"] == "peftbench.budget-cache/1" and len(data["entries"]) == 1
    assert not list(tmp_path.glob(".budget-cache.json.*.tmp"))  # no temporary file left behind


def test_cache_keys_apart(tmp_path):
    cache = BudgetCache(tmp_path / "c.json")
    assert cache.get_or_compute({"budget_bytes": 1}, lambda: fit_of(3)) == (fit_of(3), False)
    assert cache.get_or_compute({"budget_bytes": 1}, lambda: fit_of(99)) == (fit_of(3), True)
    assert cache.get_or_compute({"budget_bytes": 2}, lambda: fit_of(7)) == (fit_of(7), False)


@pytest.fixture
def fits(monkeypatch):
    """estimate_fit answers from a table: (accumulate) -> largest batch; calls are recorded."""
    table, calls = {False: 30, True: 28}, []

    def fake_estimate(workload, *, capacity, accumulate=False, batch_size=None):
        calls.append(accumulate)
        return fit_of(table[accumulate])

    monkeypatch.setattr(budget_plan, "estimate_fit", fake_estimate)
    monkeypatch.setattr(budget_plan.torch.cuda, "is_available", lambda: False)
    return table, calls


WORKLOAD = Workload("tiny-t5", "adapter", source_len=128, target_len=9)


def plan(batch, tmp_path=None, **kw):
    cache = tmp_path / "budget-cache.json" if tmp_path else None
    return plan_batch(WORKLOAD, batch=batch, fixed_batch=32, budget_bytes=24 * 10**9, cache_path=cache,
                      log=lambda s: None, **kw)


def test_batch_100_under_a_budget_for_30_accumulates_4_of_25(fits):
    _, calls = fits
    p = plan(100)
    assert (p.micro_batch, p.accumulation, p.batch_size, p.chosen_by) == (25, 4, 100, "estimated")
    assert calls == [False, True]  # with accumulation, gradients stay alive: asked again


def test_batch_max_and_batch_that_fits_and_fixed(fits):
    table, _ = fits
    assert (plan("max").micro_batch, plan("max").accumulation) == (30, 1)
    assert (plan(20).micro_batch, plan(20).accumulation) == (20, 1)
    fixed = plan(None)
    assert (fixed.micro_batch, fixed.accumulation, fixed.chosen_by) == (32, 1, "fixed")
    table[True] = 7
    assert (plan(100).micro_batch, plan(100).accumulation) == (5, 20)  # 100 exactly, never 98 or 105


def test_the_cache_is_asked_before_estimating(fits, tmp_path):
    _, calls = fits
    first, second = plan(100, tmp_path), plan(100, tmp_path)
    assert first == second and calls == [False, True]


def test_an_edited_method_does_not_reuse_its_cached_batch(fits, tmp_path, monkeypatch):
    _, calls = fits
    plan("max", tmp_path)
    plan("max", tmp_path)
    assert calls == [False]
    monkeypatch.setattr(budget_plan, "method_source", lambda name: "edited")
    plan("max", tmp_path)
    assert calls == [False, False]
    # the digest is of the files implementing the method
    assert method_source("adapter") == method_source("pfeiffer-adapter") != method_source("compacter")
