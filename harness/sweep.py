"""A sweep is a Ray Tune grid over method × task × learning rate × seed; each point is a trial."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.records import read_records
from harness.spec import SweepSpec
from harness.trial import run_trial


def tune_trial(point: dict, *, spec: SweepSpec, out_dir: str) -> None:
    """The Ray Tune trainable: build the grid point's trial and run it, reporting each epoch."""
    import torch
    from ray import tune

    torch.set_num_threads(spec.cpus_per_trial)
    cfg = spec.trial(point["method"], point["task"], point["learning_rate"], point["seed"], point["train_size"])
    record = run_trial(cfg, out_dir, report=tune.report)
    tune.report({"status": record["status"], "test_score": record["test_score"], "done": True})


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, address: str | None = None) -> list[dict]:
    """Run every trial of ``spec`` under Ray Tune; return the records of this sweep's grid."""
    import ray
    from ray import tune

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Ray's own worker logs deduplication hides per-trial epochs; keep them.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True)
    param_space = {
        "method": tune.grid_search([m.label for m in spec.methods]),
        "task": tune.grid_search(list(spec.tasks)),
        "learning_rate": tune.grid_search(list(spec.learning_rates)),
        "seed": tune.grid_search(list(spec.seeds)),
        "train_size": tune.grid_search(list(spec.train_size)),
    }
    trainable = tune.with_resources(
        tune.with_parameters(tune_trial, spec=spec, out_dir=str(out_dir)), {"cpu": spec.cpus_per_trial}
    )
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(out_dir / "ray"), verbose=1),
    )
    start = time.perf_counter()
    try:
        tuner.fit()
    finally:
        ray.shutdown()
    print(f"sweep {spec.name}: {len(spec.trials())} trials in {time.perf_counter() - start:.0f}s")
    wanted = {cfg.trial_id for cfg in spec.trials()}
    return [r for r in read_records(out_dir) if r["trial_id"] in wanted]
