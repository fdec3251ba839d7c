"""A sweep is a Ray Tune grid over method × task × learning rate × seed; each point is a trial.
Before the trials, the image features of its VL tasks are computed once over the cluster (harness/features.py).

Nothing is lost when something dies: the records are the sweep's state. A run's grid is the
spec's points that have no ``ok`` record yet (failed ones run again unless kept), so ``--resume``
rebuilds the experiment from the spec and the records (nothing of Ray's is unpickled); a trial
continues from its last epoch's checkpoint; Ray retries trials whose worker or node was lost
(``max_failures``), and a trial Ray gives up on gets a ``failed`` record from the driver, so every
point of the grid ends with exactly one record. A run that Ray itself ends (an error Tune does not
make a trial's) is run again over the points without a record (``run_rounds``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from peftbench.budgets.parse import card_bytes_needed, format_bytes, parse_budget
from peftbench.harness.features import extract_features, ray_map
from peftbench.harness.folder import FolderLock, check_spec_file, check_writable, set_aside, write_sweep_files
from peftbench.harness.loggers import tracker_callback, where_lines
from peftbench.harness.records import read_records
from peftbench.harness.spec import Narrowing, SweepSpec
from peftbench.harness.trial import run_trial
from peftbench.harness.watchdog import Watchdog

CONNECT_TIMEOUT_S = 5
RAY_ENDED_ROUNDS = 2  # times the points without a record run again after Ray itself ended the run


class SweepError(RuntimeError):
    """A sweep that cannot start as asked (one line, for the terminal)."""


class RayEnded(RuntimeError):
    """Ray Tune ended the whole run on a system error that it does not make a trial's failure: e.g. its
    memory monitor killing a trial's worker while the worker starts (ray 2.60's actor manager raises
    ``RuntimeError("Caught unexpected exception")`` for an ``OutOfMemoryError`` there)."""

    def __init__(self, why: str, slots: int):
        super().__init__(why)
        self.slots = slots


def tune_trial(config: dict, *, spec: SweepSpec, out_dir: str) -> None:
    """The Ray Tune trainable: run the grid point's trial, reporting each epoch; its last result
    carries the record to the driver, which writes it."""
    import torch
    from ray import tune

    from peftbench.budgets.measure import cap_address_space
    from peftbench.harness.distributed import run_distributed_trial, workers_of

    cfg = spec.trial_at(config["point"])
    workers, display_name = workers_of(cfg), spec.method(config["point"]["method"]).display
    if not torch.cuda.is_available():  # a worker process that runs trials only: a runaway one fails alone
        cap_address_space(cfg.budget_bytes)
    use_trial_cpus(spec.cpus_per_trial)
    if workers > 1:
        record = run_distributed_trial(cfg, out_dir, workers=workers, in_tune=True, display_name=display_name)
    else:  # the terminal gets the trial's start and end from the driver, and step lines: no epoch lines
        record = run_trial(cfg, out_dir, report=tune.report, write=False, display_name=display_name,
                           step_hook=step_hook(cfg.trial_id, report=tune.report if spec.loggers else None),
                           epoch_lines=False)
    tune.report({"status": record["status"], "test_score": record["test_score"], "error": record["error"],
                 "record": record})


def use_trial_cpus(cpus: int) -> None:
    """torch's threads in a trial's worker: as many as the CPUs the trial holds, whatever
    ``OMP_NUM_THREADS`` the cluster was started with (Ray sets it from the CPUs only when unset).
    Threads beyond a trial's CPUs wait on each other: on a busy 2-core machine one epoch of adapter on
    SST-2 took 5 s at one thread and 80-100 s at two (1 CPU second against 21-23)."""
    import torch

    torch.set_num_threads(max(1, cpus))


def step_hook(trial_id: str, *, report, show=print, clock=time.monotonic):
    """The trial loop's step hook in a sweep: step values to the trackers (``report``, when the spec
    names any) and, inside an epoch that runs long, a progress line every ``STEP_REPORT_EVERY_S``
    (not the first step's: a short trial shows only its start, epochs and end)."""
    from peftbench.harness.loggers import StepReporter

    calls = []

    def send(values: dict) -> None:
        if report:
            report(values)
        if calls:
            show(f"[{trial_id}] step {values['step']} loss {values['loss']:.4f} lr {values['lr']:.2e}")
        calls.append(values["step"])

    return StepReporter(send, clock=clock)


@dataclass
class SweepOutcome:
    """The records of the spec's grid, and the grid's trial ids that have none."""

    records: list[dict]
    missing: list[str]


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, address: str | None = None, storage: str | None = None,
              resume: bool = False, retry_failed: bool = True, narrow: Narrowing | None = None) -> SweepOutcome:
    """Run every trial of ``spec`` without an ``ok`` record (``retry_failed=False``: without any
    record) under Ray Tune. Folder, cluster and resources are checked before anything is written;
    a second sweep in the same folder is refused while this one runs."""
    # Ray folds identical log lines of different workers into one; per-trial epoch lines differ
    # only by trial, so keep them all. Ray reads this when it is imported.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # trackers only when the spec names them
    quiet_ray()
    out_dir = Path(out_dir).resolve()
    spec_json = spec_text(spec)
    selected = (narrow or Narrowing()).points(spec)
    check_writable(out_dir)
    check_spec_file(out_dir, spec_json, name=spec.name, resume=resume)
    check_feature_cache(spec)
    lock = FolderLock(out_dir)
    if out_dir.is_dir():
        lock.acquire()  # before Ray starts: a second sweep is refused at once
    try:
        points, bad = points_to_run(spec, selected, out_dir, retry_failed=retry_failed)
        start = time.perf_counter()
        with stop_on_signals():
            slots = run_rounds(spec, selected, points, out_dir, address=address,
                               storage=storage or str(out_dir / "ray"),
                               prepare=lambda: prepare_folder(spec, spec_json, out_dir, lock, bad))
        wall = time.perf_counter() - start
    finally:
        lock.release()
    wanted = [spec.trial_at(p).trial_id for p in selected]
    records = [r for r in read_records(out_dir, on_bad=lambda *_: None) if r["trial_id"] in set(wanted)]
    print(timing_summary(records, wall=wall, slots=slots, since=time.time() - wall))
    recorded = {r["trial_id"] for r in records}
    return SweepOutcome(records, [t for t in wanted if t not in recorded])


def run_rounds(spec: SweepSpec, selected: list[dict], points: list[dict], out_dir: Path, **grid) -> int:
    """``run_grid``, and again over the points still without a record when Ray ended the run itself
    (``RayEnded``): the records are the state, so a round loses only the trials that were running.
    After ``RAY_ENDED_ROUNDS`` more rounds, one line says so and ``--resume`` runs the rest."""
    for round_ in range(RAY_ENDED_ROUNDS + 1):
        try:
            return run_grid(spec, points, out_dir, **grid)
        except RayEnded as exc:
            points, _ = points_to_run(spec, selected, out_dir, retry_failed=False)
            if not points:
                return exc.slots
            if round_ == RAY_ENDED_ROUNDS:
                raise SweepError(f"Ray ended the run {round_ + 1} times ({exc}); {len(points)} trials have no "
                                 f"record: peftbench sweep SPEC --out {out_dir} --resume runs them") from None
            print(f"[sweep] Ray ended the run ({exc}); the {len(points)} trials without a record run again")
    raise AssertionError("unreachable")


def quiet_ray() -> None:
    """Ray's output cut to what a user must see: no ``(tune_trial pid=…)`` prefix (our lines name
    their trial), no colour codes when stdout is not a terminal, Ray's INFO chatter off and the
    "Failed to fetch metrics" warning after a sweep (it reads Ray's result files, which we do not
    use: the records are the results). Warnings and errors, tracebacks whole, still pass. Ray reads
    these variables when it is imported."""
    import sys

    os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment box: our lines say what runs
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    # levels again after Ray is imported: its import sets its loggers' own
    for name in ("ray", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("ray.tune.analysis.experiment_analysis", "ray._private.authentication.authentication_token_setup"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def stop_on_signals():
    """Ctrl-C or SIGTERM stop the sweep at once, as a ``KeyboardInterrupt`` out of ``run_sweep``.

    Ray Tune's own handler would stop the trials and then end them in ways our callback records as
    failed (trials that never started among them) and advise ``Tuner.restore``, which peftbench does
    not use: the records are the state, and ``--resume`` reruns what has none. So Ray's handler stays
    off, the driver leaves at once (Ray is shut down on the way out), a running trial keeps its last
    epoch's checkpoint, and a trial without a record is missing, to run on ``--resume``.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # read by each Tuner.fit
    _received.clear()
    before = take_signals()
    try:
        yield
    except KeyboardInterrupt as stop:
        if _received and str(stop) != _received[-1]:  # Ray Tune re-raises a bare one: name the signal again
            raise KeyboardInterrupt(_received[-1]) from None
        raise
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


_received: list[str] = []  # the signals take_signals' handler got, by name (for stop_on_signals)


def take_signals() -> dict:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` (naming the signal) in this, the main, thread; the
    handlers they replace. Called again once Ray has started: ``ray.init`` installs a SIGTERM handler of
    its own in the driver, which aborts it (exit -6, no ``--resume`` line)."""
    import threading

    def interrupt(signum, frame):
        _received.append(signal.Signals(signum).name)
        raise KeyboardInterrupt(_received[-1])

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}


def check_feature_cache(spec: SweepSpec) -> None:
    """A sweep with VL tasks needs a feature cache it can write: refused in one line before anything starts."""
    from peftbench.harness.features import feature_jobs
    from peftbench.models.features import check_cache

    if feature_jobs(spec.trials()) and (problem := check_cache()):
        raise SweepError(problem)


def spec_text(spec: SweepSpec) -> str:
    """What the folder keeps of its sweep (``spec.json``): a later run must bring the same."""
    return json.dumps(spec.identity(), sort_keys=True, indent=2)


def points_to_run(spec: SweepSpec, selected: list[dict], out_dir: Path, *,
                  retry_failed: bool) -> tuple[list[dict], list[Path]]:
    """The grid points to run now, and the files under results/ that are not records (their points
    run again)."""
    bad = []
    records = read_records(out_dir, on_bad=lambda path, reason: bad.append(path)) if out_dir.is_dir() else []
    status = {r["trial_id"]: r["status"] for r in records}
    keep = {"ok"} if retry_failed else {"ok", "failed"}
    points = [p for p in selected if status.get(spec.trial_at(p).trial_id) not in keep]
    done = len(selected) - len(points)
    if done:
        kept = sum(s == "failed" for s in status.values()) if not retry_failed else 0
        print(f"{done} trials already done in {out_dir} ({kept} of them failed, kept); {len(points)} to run")
    return points, bad


def prepare_folder(spec: SweepSpec, spec_json: str, out_dir: Path, lock: FolderLock, bad: list[Path]) -> None:
    """Once the cluster is known to fit the spec: create the folder, hold it, and write what the
    sweep runs; files that are not records are set aside."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not lock.held:
        lock.acquire()
    write_sweep_files(out_dir, spec_json, [cfg.trial_id for cfg in spec.trials()])
    for path in bad:
        print(f"set aside {path} (not a record) as {set_aside(path)}; its trial runs again")


def run_grid(spec: SweepSpec, points: list[dict], out_dir: Path, *, address: str | None, storage: str,
             prepare) -> int:
    """Join (or start) Ray, check the spec fits it, ``prepare()`` the folder, run ``points`` under
    Ray Tune; return the trials run at once."""
    if not points:
        prepare()
        return 1
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:  # refuse before starting a Ray that could never run the trials
        import torch

        check_resources(spec, [{"CPU": os.cpu_count() or 1, "GPU": torch.cuda.device_count()}])
    import ray
    from ray import tune

    from peftbench.harness.progress import SweepProgress

    quiet_ray()
    watchdog = join_cluster(address)
    take_signals()  # back from Ray's (stop_on_signals restores the sweep's caller's)
    try:
        check_resources(spec, [n["Resources"] for n in ray.nodes() if n["Alive"]])
        slots = concurrent_slots(spec, ray.cluster_resources(), len(points))
        trainable = tune.with_resources(tune.with_parameters(tune_trial, spec=spec, out_dir=str(out_dir)),
                                        trial_resources(spec, ray.cluster_resources()))
        prepare()
        # before the trials: every image feature they read, computed once over the cluster (harness/features.py)
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        extract_features([spec.trial_at(p) for p in points],
                         map_for=lambda what: ray_map(gpus=gpus, log=print, what=what))
        run_config = tune.RunConfig(
            name=private_run_folder(storage), storage_path=storage, verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[SweepProgress(len(points), out_dir, spec=spec, methods=[p["method"] for p in points],
                                     slots=slots),
                       *tracker_callback(spec.loggers, experiment=spec.name, out_dir=out_dir,
                                         describe=lambda c: (spec.trial_at(c["point"]).trial_id,
                                                             spec.trial_at(c["point"])))],
        )
        # A trial's worker process runs the next trial: imports and start-up are paid once per
        # worker, not per trial (memory is reset per trial).
        tuner = tune.Tuner(trainable, param_space={"point": tune.grid_search(points)}, run_config=run_config,
                           tune_config=tune.TuneConfig(reuse_actors=True))
        fit(tuner, slots)
        for line in where_lines(spec.loggers, out_dir):
            print(line)
    finally:
        ray.shutdown()
        if watchdog is not None:
            watchdog.close()
    return slots


def fit(tuner, slots: int) -> None:
    """``tuner.fit()``; a Ray system error that Tune lets out of the whole run is ``RayEnded`` (its
    first line), anything else as raised."""
    import ray

    try:
        tuner.fit()
    except RuntimeError as exc:
        if not isinstance(exc.__cause__, ray.exceptions.RayError):
            raise
        said = str(exc.__cause__).strip().splitlines()
        raise RayEnded(f"{type(exc.__cause__).__name__}: {said[0] if said else ''}", slots) from None


def join_cluster(address: str | None) -> Watchdog | None:
    """``ray.init``: the cluster at ``address``, or a fresh local Ray of our own (never some other
    cluster found on this machine) with a watchdog that ends it with this process, however this
    process ends (harness/watchdog.py). An address that does not answer fails in seconds, one line."""
    import ray

    if not address:
        # Ray's memory monitor kills workers when the whole machine's memory passes 95%, other users'
        # processes included, and Tune cannot always recover a kill (RayEnded): on a shared machine
        # one busy neighbour ended a smoke sweep. Our CPU trials are capped at their budget
        # (RLIMIT_AS) instead; setting the variable turns the monitor back on.
        os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
        context = ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True,
                           logging_level=logging.WARNING)
        return Watchdog(context.address_info["session_dir"])
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise SweepError(f"--address {address}: no Ray cluster answers there "
                             f"({exc.strerror or exc})") from None
    try:
        ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING)
        return None  # a cluster we joined is not ours to end
    except Exception as exc:  # noqa: BLE001  Ray raises many kinds here; each is one line for the user
        ray.shutdown()
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SweepError(f"--address {address}: cannot join the Ray cluster: {type(exc).__name__}: {said}") from None


def private_run_folder(storage: str) -> str:
    """A fresh, unguessable run folder under ``storage`` that only this user can write: Ray reads
    back (unpickles) the error files it writes there, so no one else may plant one."""
    name = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
    if "://" not in storage:
        Path(storage).mkdir(parents=True, exist_ok=True)
        (Path(storage) / name).mkdir(mode=0o700)
    return name


def check_resources(spec: SweepSpec, nodes: list[dict]) -> None:
    """Refuse (one line, naming the key) a spec whose trials can never be placed on these nodes:
    Ray would wait for them forever. A trial's CPUs must fit on one node; Ray Train workers take
    a CPU each (a GPU each on a GPU cluster) anywhere in the cluster."""
    from peftbench.harness.distributed import workers_of

    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    total = {k: sum(n.get(k, 0) for n in nodes) for k in ("CPU", "GPU")}
    kind = "GPU" if total["GPU"] > 0 else "CPU"
    for method in spec.methods:
        cfg = spec.trial_at({**spec.points()[0], "method": method.label})
        workers = workers_of(cfg)
        if workers == 1 and spec.cpus_per_trial > most_cpus:
            raise SweepError(f"cpus_per_trial: {spec.cpus_per_trial} CPUs per trial, but the largest node of "
                             f"the cluster has {most_cpus:g}")
        if workers > total[kind]:
            raise SweepError(f"methods: {method.label} asks for {workers} workers, one {kind} each, but the "
                             f"cluster has {total[kind]:g} {kind}s")
        if workers > 1 and kind == "GPU":
            check_worker_fits(spec, cfg.budget_bytes, workers, method.label)


def check_worker_fits(spec: SweepSpec, budget_bytes: int, workers: int, label: str) -> None:
    """Each worker takes a whole card, which must hold its budget and what lies outside it (CUDA
    context, NCCL's buffers): else the trial's budget would be a promise the card cannot keep."""
    card, need = spec_gpu_memory(spec), card_bytes_needed(budget_bytes, workers)
    if need > card:
        raise SweepError(f"budget: {label}'s workers each need {format_bytes(need)} on a card (the budget, a "
                         f"CUDA context and NCCL's buffers) but a GPU has {format_bytes(card)}")


def trial_resources(spec: SweepSpec, cluster: dict):
    """What one trial asks Ray for: its CPUs and, on a GPU cluster, its budget's share of a card.
    A trial that runs Ray Train workers only coordinates them: it asks for one byte of memory (Ray
    wants a non-empty request, and any CPU share would keep a k-CPU machine from its k workers);
    the workers ask for their own CPUs and whole GPUs."""
    from ray import tune

    from peftbench.harness.distributed import workers_of

    gpu_memory = spec_gpu_memory(spec) if cluster.get("GPU", 0) > 0 else None

    def resources(config: dict):
        cfg = spec.trial_at(config["point"])
        if workers_of(cfg) > 1:
            return tune.PlacementGroupFactory([{"memory": 1}])
        bundle = {"CPU": spec.cpus_per_trial}
        if gpu_memory:  # an exclusive trial's times are its own, no co-tenant's load in them
            bundle["GPU"] = 1 if cfg.exclusive_gpu else gpu_share(cfg.budget_bytes, gpu_memory)
        return tune.PlacementGroupFactory([bundle])

    return resources


def gpu_share(budget_bytes: int, gpu_memory_bytes: int) -> float:
    """The fraction of one GPU a trial takes: as many trials share a card as budgets fit in it
    (24 GB on an 80 GB card: three trials, 1/3 each). Each trial is also capped at its budget
    on the card (budgets/measure.py), so packed trials cannot crowd each other out; each process's
    CUDA context lies outside its cap, so it is counted here."""
    per_card = gpu_memory_bytes // card_bytes_needed(budget_bytes)
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


def concurrent_slots(spec: SweepSpec, resources: dict, trials: int) -> int:
    """How many trials the cluster runs at once: CPUs over CPUs per trial, capped by the trials to run."""
    return max(1, min(trials, int(resources.get("CPU", 1) // spec.cpus_per_trial)))


def timing_summary(records: list[dict], *, wall: float, slots: int, since: float) -> str:
    """Wall time, the summed time of the trials run now, the slots idle for want of work and, when it
    means something, the share lost to scheduling.

    The cluster had wall × slots slot-seconds. From the last trial's start to the last trial's end
    no trial was left to start: the slot-seconds then not spent in a trial are idle, not overhead
    (three trials on two slots leave one slot idle while the third runs). Overhead is the rest:
    slot-seconds spent on anything but trials while there was work (start-up, gaps, tear-down). With
    no more trials than slots it is Ray's start-up alone (70% of a two-trial sweep), so it is not shown.
    """
    ran = [r for r in records if r.get("finished_at", 0) >= since and r.get("wall_time_s")]
    busy = sum(r["wall_time_s"] for r in ran)
    idle = idle_slot_seconds([(r["finished_at"] - r["wall_time_s"], r["finished_at"]) for r in ran], slots)
    capacity = wall * slots
    line = (f"sweep wall time {wall:.1f}s; {len(ran)} trials ran for {busy:.1f}s in all on {slots} slots; "
            f"slots idle with no trial left {idle:.1f}s ({100.0 * idle / capacity if capacity > 0 else 0.0:.1f}%)")
    if len(ran) <= slots:
        return line
    overhead = 100.0 * max(0.0, capacity - busy - idle) / capacity if capacity > 0 else 0.0
    return f"{line}; scheduling overhead {overhead:.1f}%"


def idle_slot_seconds(spans: list[tuple[float, float]], slots: int) -> float:
    """Slot-seconds without a trial between the last start and the last end of ``spans`` (start, end)."""
    if not spans:
        return 0.0
    last_start, last_end = max(s for s, _ in spans), max(e for _, e in spans)
    busy = sum(max(0.0, end - max(start, last_start)) for start, end in spans)
    return max(0.0, slots * (last_end - last_start) - busy)
