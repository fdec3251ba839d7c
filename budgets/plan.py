"""How a trial batches under its budget: the micro-batch that fits, and accumulation to the batch.

``batch: max`` trains at the largest batch that fits (Table 3 of the paper); ``batch: 100`` trains
every method at an effective batch of 100, as many micro-batches accumulated per optimizer step
as its memory needs; no ``batch`` keeps the spec's fixed ``batch_size``. On a GPU the batch is
measured, elsewhere estimated; either way it is cached in the sweep's folder for the other trials
of the same method.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from peftbench.budgets.cache import BudgetCache, PlannedPeaks
from peftbench.budgets.estimate import estimate_fit, saved_activation_bytes
from peftbench.budgets.fit import Fit
from peftbench.budgets.measure import CudaMemory, ProbeTrainer, cap_process_memory, measure_fit
from peftbench.budgets.parse import MARGIN, BudgetError, capacity, format_bytes, held_bytes
from peftbench.budgets.workload import Workload
from peftbench.engine.step import rank_and_world
from peftbench.methods import get_method

VERSIONED = ("peftbench", "torch", "transformers", "deepspeed")


@dataclass(frozen=True)
class BatchPlan:
    micro_batch: int
    accumulation: int  # micro-batches per optimizer step
    chosen_by: str  # fixed | measured | estimated

    @property
    def batch_size(self) -> int:
        """The effective batch: examples per optimizer step."""
        return self.micro_batch * self.accumulation


def find_fit(workload: Workload, *, budget_bytes: int, measure: bool | None = None, accumulate: bool = False,
             batch_size: int | None = None, margin: float = MARGIN, cache: BudgetCache | None = None,
             plain: bool = False) -> tuple[Fit, bool]:
    """The largest batch of ``workload`` under the budget (or its peak at ``batch_size``); True if cached.

    ``measure``: on this machine's GPU (the default where there is one) or estimated for a CUDA device.
    ``plain``: probes train in plain torch even for a DeepSpeed method (no collectives).
    """
    measure = torch.cuda.is_available() if measure is None else measure
    usable = capacity(budget_bytes, margin)
    if measure:
        def compute() -> Fit:
            return measure_fit(capacity=usable, memory=CudaMemory(budget_bytes), batch_size=batch_size,
                               new_trainer=lambda: ProbeTrainer(workload, accumulate=accumulate, plain=plain))
    else:
        def compute() -> Fit:
            return estimate_fit(workload, capacity=usable, accumulate=accumulate, batch_size=batch_size)
    if cache is None or batch_size is not None:
        return compute(), False
    key = {**workload.describe(), "budget_bytes": budget_bytes, "margin": margin, "accumulate": accumulate,
           "plain": plain, "device": torch.cuda.get_device_name() if measure else "cuda (estimated)",
           "versions": versions(),
           "method_source": method_source(workload.method)}
    return cache.get_or_compute(key, compute)


def method_source(name: str) -> str:
    """A digest of the files that implement ``name``: an edited method never reuses an old batch."""
    method = get_method(name)
    digest = hashlib.sha1()
    for path in sorted({inspect.getsourcefile(method.config_cls), inspect.getsourcefile(method.apply)}):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def versions() -> dict[str, str | None]:
    out = {}
    for package in VERSIONED:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def plan_batch(workload: Workload, *, batch: int | str | None, fixed_batch: int, budget_bytes: int,
               cache_path: str | Path | None = None, log=print) -> BatchPlan:
    """The trial's micro-batch and accumulation steps; on a GPU the process is capped at the budget.

    Under torch.distributed (k Ray Train workers) rank 0 plans alone and the others take its plan:
    probes through DeepSpeed would enter collectives the others never join while they wait on the
    cache's lock. Its probes train in plain torch, one worker's whole optimizer state: ZeRO shards
    that across the workers, so each needs no more (its communication buckets aside).
    """
    refuse_over_budget(workload, budget_bytes)
    if torch.cuda.is_available():
        cap_process_memory(budget_bytes)
    if batch is None:
        return BatchPlan(fixed_batch, 1, "fixed")
    rank, world = rank_and_world()
    if world == 1:
        return choose_plan(workload, batch=batch, budget_bytes=budget_bytes, cache_path=cache_path, log=log)
    answer: list = [None]
    if rank == 0:
        try:
            answer[0] = choose_plan(workload, batch=batch, budget_bytes=budget_bytes, cache_path=cache_path,
                                    log=log, plain=True)
        except Exception as exc:  # noqa: BLE001  the others must hear of it, or wait forever
            answer[0] = f"{type(exc).__name__}: {exc}"
    torch.distributed.broadcast_object_list(answer, src=0)
    if isinstance(answer[0], str):
        raise BudgetError(f"rank 0 could not plan the batch: {answer[0]}")
    return answer[0]


def refuse_over_budget(workload: Workload, budget_bytes: int) -> None:
    """A ``BudgetError`` (one line), before anything is allocated, when the workload's weights, gradients and
    optimizer state alone (``held_bytes``, counted on the meta device, every method's modules included)
    exceed the budget: no batch could fit."""
    from peftbench.engine.accounting import count_params
    from peftbench.models.load import model_config

    try:
        config = model_config(workload.model)
    except Exception:  # noqa: BLE001 - a model the meta device cannot build: the search finds out
        return
    count = count_params(config, workload.method, workload.options, list(workload.tasks) if workload.tasks else None)
    if (held := held_bytes(count.total, count.trainable)) > budget_bytes:
        raise BudgetError(f"{workload.method} on {workload.model} holds {format_bytes(held)} before its first batch "
                          f"(weights, gradients, AdamW's moments), over the budget of {format_bytes(budget_bytes)}")


def planned_peak(workload: Workload, batch_size: int, peaks: PlannedPeaks | None = None) -> int:
    """A lower bound of the peak of a step at a fixed micro-batch of ``batch_size``: what the trial holds
    (``held_bytes``: weights, gradients, AdamW's moments) and the activations its forward keeps for the
    backward (``saved_activation_bytes``), both there as the backward starts; temporaries come on top.
    ``peaks``: a file of peaks planned before (by an earlier process), read first and given this one."""
    memo = (json.dumps(workload.describe(), sort_keys=True, default=str), batch_size)
    key = None if peaks is None else peak_key(workload, batch_size)
    if memo not in _PLANNED:  # a spec validated again in one process (a test session) plans once
        stored = None if peaks is None else peaks.get(key)
        _PLANNED[memo] = _planned_peak(workload, batch_size) if stored is None else stored
    if peaks is not None and peaks.get(key) is None:  # for the next process's check
        peaks.put(key, _PLANNED[memo])
    return _PLANNED[memo]


_PLANNED: dict[tuple[str, int], int] = {}


def peak_key(workload: Workload, batch_size: int) -> dict:
    """What a planned peak depends on: the workload, the micro-batch, the libraries' versions and the source
    of the method and of the counting (an edited method or estimator never reuses an old peak)."""
    from peftbench.engine.accounting import count_params

    counting = sorted({inspect.getsourcefile(saved_activation_bytes), inspect.getsourcefile(held_bytes),
                       inspect.getsourcefile(count_params)})
    return {**workload.describe(), "micro_batch": batch_size, "versions": versions(),
            "method_source": method_source(workload.method), "counting_source": _digest(tuple(counting))}


@functools.cache
def _digest(paths: tuple[str, ...]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _planned_peak(workload: Workload, batch_size: int) -> int:
    from peftbench.engine.accounting import count_params
    from peftbench.models.load import model_config

    count = count_params(model_config(workload.model), workload.method, workload.options,
                         list(workload.tasks) if workload.tasks else None)
    return held_bytes(count.total, count.trainable) + saved_activation_bytes(workload, batch_size)


def fixed_batch_over_budget(trials: list[tuple[Workload, int]], budget_bytes: int, *,
                            peaks: PlannedPeaks | None = None) -> str | None:
    """One line for the first (workload, fixed micro-batch) whose planned peak is over the budget; None when
    every one fits. Per method (model, options, mixture) its worst case is tried first, the longest source,
    target and images at the largest batch: activations only grow with each, so when it fits, all do, and
    a whole grid costs one forward per method (none for a peak ``peaks`` holds)."""
    by_method: dict[str, list[tuple[Workload, int]]] = {}
    for workload, batch in trials:
        key = json.dumps([workload.model, workload.method, workload.options, workload.tasks, workload.dtype],
                         sort_keys=True, default=str)
        by_method.setdefault(key, []).append((workload, batch))
    for group in by_method.values():
        first = group[0][0]
        worst = dataclasses.replace(first, source_len=max(w.source_len for w, _ in group),
                                    target_len=max(w.target_len for w, _ in group),
                                    images=max(w.images for w, _ in group))
        if planned_peak(worst, max(b for _, b in group), peaks) <= budget_bytes:
            continue
        distinct = {json.dumps([w.describe(), b], sort_keys=True, default=str): (w, b) for w, b in group}
        for workload, batch in distinct.values():
            if (peak := planned_peak(workload, batch, peaks)) > budget_bytes:
                return (f"{workload.method} {json.dumps(workload.options, sort_keys=True)} on {workload.model} at a "
                        f"fixed batch of {batch} ({workload.source_len}+{workload.target_len} tokens): planned peak "
                        f"{format_bytes(peak)} (weights, gradients, AdamW's moments, the activations kept for the "
                        f"backward), over its budget of {format_bytes(budget_bytes)}")
    return None


def choose_plan(workload: Workload, *, batch: int | str, budget_bytes: int, cache_path: str | Path | None,
                log, plain: bool = False) -> BatchPlan:
    """``batch: max`` or an effective batch of ``batch``, from the fit under the budget."""
    cache = BudgetCache(cache_path) if cache_path else None
    fit, cached = find_fit(workload, budget_bytes=budget_bytes, cache=cache, plain=plain)
    if batch == "max" or fit.batch_size >= batch:
        micro = fit.batch_size if batch == "max" else batch
    else:  # gradients of earlier micro-batches stay alive: a smaller micro-batch may be needed
        fit, cached = find_fit(workload, budget_bytes=budget_bytes, accumulate=True, cache=cache, plain=plain)
        micro = max(d for d in range(1, fit.batch_size + 1) if batch % d == 0)  # every step sees `batch`
    plan = BatchPlan(micro, 1 if batch == "max" else batch // micro, "estimated" if fit.estimated else "measured")
    log(f"[budget] {workload.method} under {format_bytes(budget_bytes)}: "
        f"micro-batch {plan.micro_batch} × {plan.accumulation} "
        f"= {plan.batch_size} ({plan.chosen_by}{', cached' if cached else ''})")
    return plan
