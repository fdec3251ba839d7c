"""A sweep's first step: every image feature its trials will read, computed once, spread over the cluster.

Before any trial starts, each task of the grid that shows images (a VL task) is loaded once as its
trials load it (``data``, the model they name) and its image features are computed into the cache
(models/features.py): one Ray task per shard of missing images (``extract_shard``), on a GPU each
when the cluster has them, else a CPU each. Every split's rows are covered whatever a trial's
``train_size`` subsample, so the trials only read. A sweep of text tasks does nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from peftbench.harness.config import TrialConfig


def feature_jobs(trials: Iterable[TrialConfig]) -> list[tuple[str, str, str]]:
    """(task, data, model) of each task that shows images, once, in the trials' order."""
    from peftbench.tasks import get_task

    jobs = {}
    for cfg in trials:
        for name in cfg.member_tasks:
            if get_task(name).images_per_example:
                jobs[(name, cfg.data, cfg.model)] = None
    return list(jobs)


def ray_map(*, gpus: bool, log: Callable[[str], None], what: str) -> Callable:
    """A ``map`` over Ray tasks, one per item (a shard), results in order, progress printed as shards finish."""
    import ray

    def run_shard(fn, shard):
        import torch

        return fn(shard, device="cuda" if gpus and torch.cuda.is_available() else "cpu")

    remote = ray.remote(run_shard).options(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0)

    def map_fn(fn, shards):
        refs = [remote.remote(fn, shard) for shard in shards]
        pending, start = list(refs), time.perf_counter()
        while pending:
            _, pending = ray.wait(pending, num_returns=1)
            log(f"[features] {what}: shard {len(refs) - len(pending)}/{len(refs)} "
                f"({time.perf_counter() - start:.1f}s)")
        return ray.get(refs)

    return map_fn


def extract_features(trials: Iterable[TrialConfig], *, map_for: Callable[[str], Callable] | None = None,
                     log: Callable[[str], None] = print) -> int:
    """Compute into the cache the image features of every VL task of ``trials``; return how many
    tasks had any. ``map_for(what)`` gives the ``map`` over shards (``ray_map`` in a sweep; the
    builtin ``map`` when None)."""
    from peftbench.tasks import get_task
    from peftbench.tasks.base import trial_model

    jobs = feature_jobs(trials)
    for name, data, model in jobs:
        task, start = get_task(name), time.perf_counter()
        loaded = task.load_with_source(data)
        source = loaded.source
        model_name = trial_model(model, [task], lambda _, source=source: source)
        what = f"{name} ({model_name.encoder}, {loaded.source})"
        task.model_inputs(loaded.splits, model=model_name, data_source=loaded.source,
                          map_fn=map_for(what) if map_for else map)
        log(f"[features] {what}: ready ({time.perf_counter() - start:.1f}s)")
    return len(jobs)
