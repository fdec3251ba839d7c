"""A trial's peak memory, and how it was measured: the GPU allocator's count on a GPU; on a CPU the
trial's tensors measured over one real step (the process's resident size is mostly the interpreter),
with the peak resident size beside it as a secondary figure."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine import devices
from peftbench.harness.config import TrialConfig


def reset_cpu_peak_memory() -> None:
    """Start the process's peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM), so a
    worker process that runs several trials in turn measures each on its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def reset_gpu_peak_memory() -> None:
    """Start the GPU allocator's peak afresh once the trial is set up (nothing on a CPU)."""
    if devices.accelerator() is not None:
        torch.cuda.reset_peak_memory_stats(devices.accelerator())


def peak_memory(cpu_measured: tuple[int, str] | None) -> tuple[int, str]:
    """(peak bytes, how measured) of the trial: the GPU allocator's peak, else ``cpu_measured``."""
    if devices.accelerator() is not None:
        return torch.cuda.max_memory_allocated(devices.accelerator()), "torch.cuda.max_memory_allocated"
    return cpu_measured


def cpu_tensor_peak(cfg: TrialConfig, model: str, rows: list[dict], plan: BatchPlan, *,
                    images: int = 0, cache_path: Path | None = None) -> tuple[int, str] | None:
    """Peak bytes of the trial's tensors on a CPU, and how they were measured (never an estimate); None
    on a GPU, whose allocator counts instead.

    MemTracker over one real training step of the same model and method (plain AdamW) at the trial's
    micro-batch, every row as long as the longest source and target of its training split, with
    ``images`` of features each when ``model`` is a VL-T5 (the most any member shows). The figure does
    not depend on the learning rate or seed, so a sweep measures each workload once: with ``cache_path``
    (the sweep folder's budget cache) the first trial's measurement is kept there for the others.
    """
    if devices.accelerator() is not None:
        return None
    with torch.random.fork_rng():  # its random weights must not move the trial's RNG (measured or cached alike)
        return _tensor_peak(model, cfg.method, json.dumps(cfg.method_options, sort_keys=True), plan.micro_batch,
                            max(len(r["input_ids"]) for r in rows), max(len(r["labels"]) for r in rows),
                            cfg.mixture, images, cache_path=cache_path and str(cache_path))


@functools.lru_cache(maxsize=64)  # a worker's later trials of the same workload (other seeds and rates)
def _tensor_peak(model: str, method: str, options: str, micro_batch: int, source_len: int,
                 target_len: int, tasks: tuple[str, ...] | None = None, images: int = 0, *,
                 cache_path: str | None = None) -> tuple[int, str]:
    from peftbench.budgets.cache import BudgetCache
    from peftbench.budgets.estimate import estimate_fit
    from peftbench.budgets.plan import method_source, versions
    from peftbench.budgets.workload import Workload

    workload = Workload(model, method, json.loads(options), source_len=source_len, target_len=target_len,
                        tasks=tasks, images=images)

    def measure():
        return estimate_fit(workload, capacity=2**62, batch_size=micro_batch, accounting="cpu", fake=False,
                            slope=False)

    if cache_path is None:
        fit = measure()
    else:  # an edited method or another torch measures afresh, as the budget cache's batches do
        key = {"kind": "cpu-tensor-peak", **workload.describe(), "micro_batch": micro_batch,
               "versions": versions(), "method_source": method_source(method)}
        fit, _ = BudgetCache(cache_path).get_or_compute(key, measure)
    return fit.peak_bytes, MEASURED_BY


# one wording for every trial, so a report compares these figures with each other (never with GPU peaks): a
# figure read from a sweep's cache is the same measurement, so it keeps the same words (older records too)
MEASURED_BY = ("MemTracker on real CPU tensors: one training step (plain AdamW) at the trial's micro-batch, "
               "every row as long as its longest training example")


def peak_rss() -> int | None:
    """The process's peak resident size since the trial began (Linux), a secondary figure on CPU."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    except (OSError, StopIteration):
        return None
