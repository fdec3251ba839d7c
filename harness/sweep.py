"""A sweep is a Ray Tune grid over method × task × learning rate × seed; each point is a trial.

Nothing is lost when something dies: the records are the sweep's state. A run's grid is the
spec's points that have no ``ok`` record yet, so ``--resume`` rebuilds the experiment from the spec
and the records (nothing of Ray's is unpickled); a trial continues from its last epoch's
checkpoint; Ray retries trials whose worker or node was lost (``max_failures``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

from budgets.parse import format_bytes, parse_budget
from harness.records import read_records
from harness.spec import SweepSpec
from harness.trial import run_trial


class SweepError(RuntimeError):
    """A sweep that cannot start as asked (one line, for the terminal)."""


def tune_trial(config: dict, *, spec: SweepSpec, out_dir: str) -> None:
    """The Ray Tune trainable: run the grid point's trial, reporting each epoch; its last result
    carries the record to the driver, which writes it."""
    from ray import tune

    from harness.distributed import run_distributed_trial, workers_of

    cfg = spec.trial_at(config["point"])
    workers = workers_of(cfg)
    if workers > 1:
        record = run_distributed_trial(cfg, out_dir, workers=workers, in_tune=True)
    else:
        record = run_trial(cfg, out_dir, report=tune.report, write=False)
    tune.report({"status": record["status"], "test_score": record["test_score"], "error": record["error"],
                 "record": record})


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, address: str | None = None,
              storage: str | None = None, resume: bool = False) -> list[dict]:
    """Run every trial of ``spec`` not yet ``ok`` under Ray Tune; return the records of this sweep's grid."""
    out_dir = Path(out_dir).resolve()
    storage = storage or str(out_dir / "ray")
    check_out_dir(spec, out_dir, resume=resume)
    # Ray folds identical log lines of different workers into one; per-trial epoch lines differ
    # only by trial, so keep them all. Ray reads this when it is imported.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from ray import tune

    from harness.progress import SweepProgress

    done = {r["trial_id"] for r in read_records(out_dir) if r["status"] == "ok"}
    points = [p for p in spec.points() if spec.trial_at(p).trial_id not in done]
    if done:
        print(f"{len(done)} trials already ok in {out_dir}; {len(points)} to run")
    start = time.perf_counter()
    slots = 1
    if points:
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            # "local": always a fresh Ray of our own, never some other cluster found on this machine
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True)
        try:
            slots = concurrent_slots(spec, ray.cluster_resources(), len(points))
            trainable = tune.with_resources(tune.with_parameters(tune_trial, spec=spec, out_dir=str(out_dir)),
                                            trial_resources(spec, ray.cluster_resources()))
            run_config = tune.RunConfig(
                name=time.strftime("run-%Y%m%d-%H%M%S"), storage_path=storage, verbose=0,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                callbacks=[SweepProgress(len(points), out_dir, methods=[p["method"] for p in points], slots=slots)],
            )
            # A trial's worker process runs the next trial: imports and start-up are paid once per
            # worker, not per trial (memory is reset per trial).
            tuner = tune.Tuner(trainable, param_space={"point": tune.grid_search(points)}, run_config=run_config,
                               tune_config=tune.TuneConfig(reuse_actors=True))
            tuner.fit()
        finally:
            ray.shutdown()
    wall = time.perf_counter() - start
    wanted = {cfg.trial_id for cfg in spec.trials()}
    records = [r for r in read_records(out_dir) if r["trial_id"] in wanted]
    print(timing_summary(records, wall=wall, slots=slots, since=time.time() - wall))
    return records


def trial_resources(spec: SweepSpec, cluster: dict):
    """What one trial asks Ray for: its CPUs and, on a GPU cluster, its budget's share of a card.
    A trial that runs Ray Train workers only coordinates them: it asks for one byte of memory (Ray
    wants a non-empty request, and any CPU share would keep a k-CPU machine from its k workers);
    the workers ask for their own CPUs and whole GPUs."""
    from ray import tune

    from harness.distributed import workers_of

    gpu_memory = spec_gpu_memory(spec) if cluster.get("GPU", 0) > 0 else None

    def resources(config: dict):
        cfg = spec.trial_at(config["point"])
        if workers_of(cfg) > 1:
            return tune.PlacementGroupFactory([{"memory": 1}])
        bundle = {"CPU": spec.cpus_per_trial}
        if gpu_memory:
            bundle["GPU"] = gpu_share(cfg.budget_bytes, gpu_memory)
        return tune.PlacementGroupFactory([bundle])

    return resources


def gpu_share(budget_bytes: int, gpu_memory_bytes: int) -> float:
    """The fraction of one GPU a trial takes: as many trials share a card as budgets fit in it
    (24 GB on an 80 GB card: three trials, 1/3 each). Each trial is also capped at its budget
    on the card (budgets/measure.py), so packed trials cannot crowd each other out."""
    per_card = gpu_memory_bytes // budget_bytes
    if per_card < 1:
        raise SweepError(f"a budget of {format_bytes(budget_bytes)} does not fit on a GPU of "
                         f"{format_bytes(gpu_memory_bytes)}")
    return math.floor(10_000 / per_card) / 10_000  # Ray counts GPU shares to four decimals


def spec_gpu_memory(spec: SweepSpec) -> int:
    """Memory of one GPU of the cluster: the spec's ``gpu_memory``, else this machine's first GPU."""
    if spec.gpu_memory:
        return parse_budget(spec.gpu_memory)
    import torch

    if not torch.cuda.is_available():
        raise SweepError("the cluster has GPUs but this machine has none to measure: "
                         "set gpu_memory (e.g. 80GB) in the spec")
    return torch.cuda.get_device_properties(0).total_memory


def check_out_dir(spec: SweepSpec, out_dir: Path, *, resume: bool) -> None:
    """Refuse to mix sweeps: a folder holds one spec, continued only with ``--resume``."""
    saved = out_dir / "spec.json"
    current = json.dumps(asdict(spec), sort_keys=True, indent=2)
    if saved.exists():
        if not resume:
            raise SweepError(f"{out_dir} already holds sweep {spec.name!r}: add --resume to continue it, "
                             "or choose another --out")
        if saved.read_text() != current:
            raise SweepError(f"{out_dir} holds a different spec than this one: resume it with the "
                             "spec it started with, or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(current)


def concurrent_slots(spec: SweepSpec, resources: dict, trials: int) -> int:
    """How many trials the cluster runs at once: CPUs over CPUs per trial, capped by the trials to run."""
    return max(1, min(trials, int(resources.get("CPU", 1) // spec.cpus_per_trial)))


def timing_summary(records: list[dict], *, wall: float, slots: int, since: float) -> str:
    """Wall time, the summed time of the trials run now, the slots idle for want of work and the
    share lost to scheduling.

    The cluster had wall × slots slot-seconds. From the last trial's start to the last trial's end
    no trial was left to start: the slot-seconds then not spent in a trial are idle, not overhead
    (three trials on two slots leave one slot idle while the third runs). Overhead is the rest:
    slot-seconds spent on anything but trials while there was work (start-up, gaps, tear-down).
    """
    ran = [r for r in records if r.get("finished_at", 0) >= since and r.get("wall_time_s")]
    busy = sum(r["wall_time_s"] for r in ran)
    idle = idle_slot_seconds([(r["finished_at"] - r["wall_time_s"], r["finished_at"]) for r in ran], slots)
    capacity = wall * slots
    overhead = 100.0 * max(0.0, capacity - busy - idle) / capacity if capacity > 0 else 0.0
    return (f"sweep wall time {wall:.1f}s; {len(ran)} trials ran for {busy:.1f}s in all on {slots} slots; "
            f"slots idle with no trial left {idle:.1f}s ({100.0 * idle / capacity if capacity > 0 else 0.0:.1f}%); "
            f"scheduling overhead {overhead:.1f}%")


def idle_slot_seconds(spans: list[tuple[float, float]], slots: int) -> float:
    """Slot-seconds without a trial between the last start and the last end of ``spans`` (start, end)."""
    if not spans:
        return 0.0
    last_start, last_end = max(s for s, _ in spans), max(e for _, e in spans)
    busy = sum(max(0.0, end - max(start, last_start)) for start, end in spans)
    return max(0.0, slots * (last_end - last_start) - busy)
