"""Trials across several workers: Ray Train's TorchTrainer runs the same loop on k workers
(DeepSpeed ZeRO across them), inside a Ray Tune trial or on its own.

A method asks for this through a ``workers`` option (full fine-tuning of a large T5: ``workers: 4``);
the harness never looks at which method it is.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from peftbench.harness.config import TrialConfig


def workers_of(cfg: TrialConfig) -> int:
    """How many data-parallel workers the trial's method asks for (1 unless it has ``workers``)."""
    from peftbench.methods import get_method

    return getattr(get_method(cfg.method).make_config(cfg.method_options), "workers", 1)


def _worker_loop(config: dict) -> None:
    """Runs on every worker: the ordinary trial; rank 0 hands its record to the coordinator."""
    import ray.train

    from peftbench.harness.trial import run_trial

    cfg = TrialConfig(**config["trial"])
    record = run_trial(cfg, config["out_dir"], report=lambda metrics: ray.train.report(metrics), write=False,
                       display_name=config["display_name"], epoch_lines=config["epoch_lines"])
    if ray.train.get_context().get_world_rank() == 0:
        config["records"].put(record)


def scaling(workers: int):
    """``workers`` Ray Train workers, each with a GPU when the cluster has any. Decided from the
    cluster, not this process: a Tune trial that only coordinates holds no GPU of its own."""
    import ray
    from ray.train import ScalingConfig

    return ScalingConfig(num_workers=workers, use_gpu=ray.cluster_resources().get("GPU", 0) > 0)


def run_distributed_trial(cfg: TrialConfig, out_dir: str | Path, *, workers: int, storage: str | None = None,
                          in_tune: bool = False, display_name: str | None = None) -> dict:
    """Run ``cfg`` on ``workers`` Ray Train workers (GPUs when the cluster has them); return the record.

    Needs a running Ray (``ray.init``); ``in_tune``: inside a Ray Tune trial, whose epochs it reports;
    ``display_name``: the spec's name for the method, for the record.
    """
    from ray.train import RunConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    out_dir = Path(out_dir).resolve()
    callbacks = []
    if in_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    # The record travels through Ray (a queue actor holding no CPU), not through a shared filesystem.
    records = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"trial": asdict(cfg), "out_dir": str(out_dir), "records": records,
                           "display_name": display_name, "epoch_lines": not in_tune},  # a sweep prints none
        scaling_config=scaling(workers),
        run_config=RunConfig(name=cfg.trial_id, storage_path=storage or str(out_dir / "ray-train"),
                             callbacks=callbacks),
    )
    trainer.fit()
    return records.get(timeout=60)
