"""What ``peftbench sweep SPEC --dry-run`` adds to the grid's description: per method × task the batch,
optimizer steps and, where its parts were measured (``OUT/step-times.json``, harness/cost.py: with
``--calibrate``), the seconds of training, generation and start-up per trial and the totals. Nothing is
downloaded, and nothing measured without ``--calibrate``."""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from peftbench.files import write_json
from peftbench.harness import cost
from peftbench.harness.folder import SPEC_FILE


def fixture_sizes(spec):
    """(train, validation, test) examples of a task on the offline fixtures; None for hub data (its
    sizes need the data, which a dry run never downloads) and for a mixture (its members have theirs)."""
    from peftbench.tasks import get_task

    @functools.cache  # one read of a task's fixtures, however many methods run on it
    def split_sizes(task: str) -> dict | None:
        declared = get_task(task)
        try:
            return declared.split_sizes(declared.load_fixtures())
        except OSError:  # a task file's own data has no fixtures: its sizes are unknown here
            return None

    def sizes(task: str, train_size: int | None):
        if spec.settings.get("data") != "fixtures" or task in spec.mixtures:
            return None
        if (found := split_sizes(task)) is None:
            return None
        train = found["train"] if train_size is None else min(train_size, found["train"])
        return train, found["validation"], found["test"]

    return sizes


def member_keys(spec, group: cost.Group, member: cost.Member, device: str, clock: str) -> dict[str, dict]:
    """A mixture member's step and generation keys: those of the same method on the member's task alone,
    at the member's micro-batch (another micro-batch's step is scaled from the nearest measured)."""
    alone = cost.Group(method=group.method, task=member.task, trials=group.trials, batch=member.micro_batch,
                       epochs=group.epochs, train_examples=0, validations=0, val_examples=0, test_examples=0)
    return keys(spec, alone, device, clock)


def planned_accumulation(out: str | None):
    """``accumulation(cfg)``: the micro-batches a trial's budget plan runs a mixture's largest member batch
    in, planned as the trial plans it (budgets/plan.py ``choose_plan``), its fit kept in the budget cache
    of ``OUT`` when that folder exists (the sweep's trials then reuse it)."""
    from peftbench.budgets.cache import FILENAME

    folder = Path(out or ".")
    cache = folder / FILENAME if folder.is_dir() else None

    def accumulation(cfg) -> int:
        from peftbench.budgets.plan import choose_plan
        from peftbench.harness.trial import trial_workload

        return choose_plan(trial_workload(cfg), batch=cfg.step_batch, budget_bytes=cfg.budget_bytes,
                           cache_path=cache, log=lambda _line: None).accumulation

    return accumulation


def keys(spec, group: cost.Group | None, device: str, clock: str) -> dict[str, dict]:
    """What each part of a group's cost is measured for: the device and clock (with the threads a trial
    has), the model, the method and the task (its data's lengths and decoding); the step also at the
    micro-batch, from which another micro-batch's step is scaled."""
    base = {"device": device, "clock": clock, "threads": spec.cpus_per_trial, "model": spec.settings.get("model")}
    process = {"kind": "process", "device": device, "clock": clock}
    if group is None:
        return {"process": process}
    return {"step": {"kind": "step", **base, "method": group.method, "micro_batch": group.batch, "task": group.task},
            "generation": {"kind": "generation", **base, "method": group.method, "micro_batch": group.batch,
                           "task": group.task},
            "startup": {"kind": "startup", **base, "method": group.method, "task": group.task},
            "process": process}


def calibrate(spec, out: str | None, *, repeats: int = 3, log=print, where=None) -> tuple[int, str]:
    """Measure every part of the spec's cost that ``OUT/step-times.json`` lacks (harness/calibrate.py; the
    step with bench-step: plain AdamW, random weights), at the trial's threads, here or through ``where``
    (a function running a job on a cluster's GPU node, ``ray_gpu``); how many figures it measured (0 on a
    second run) and the device they were measured on. The driver writes them: a node's disk is its own."""
    times = cost.StepTimes(Path(out or ".") / cost.FILENAME)
    have = frozenset(times.entries())
    if where is None:  # here: each figure kept and said as it is measured (an interrupted run keeps them)
        found, _, device = measure_missing(spec, have, repeats=repeats, log=log, keep=times.put)
        return len(found), device
    found, said, device = where(functools.partial(measure_missing, spec, have, repeats=repeats))
    for key, seconds, how in found:
        times.put(key, seconds, how)
    for line in said:
        log(line)
    return len(found), device


def measure_missing(spec, have: frozenset, *, repeats: int, log=None, keep=None) -> tuple[list, list[str], str]:
    """The figures (key, seconds, how) of the spec's cost not in ``have`` (cache digests), measured on this
    process's device at the trial's threads, each given to ``keep`` as it is measured if given; the lines
    saying what was measured (each given to ``log`` instead, if given); the device."""
    import torch

    from peftbench.harness import calibrate as measure
    from peftbench.harness.provenance import device_name, gpu_share, ray_node
    from peftbench.tasks import get_task

    device, clock, threads = device_name(), measure.clock_name(), torch.get_num_threads()
    torch.set_num_threads(spec.cpus_per_trial)  # Ray gives a trial's worker as many threads as its CPUs
    found, said = [], []
    log = log or said.append

    def add(*figures) -> None:
        found.extend(figures)
        for figure in figures if keep else ():
            keep(*figure)

    try:
        process = keys(spec, None, device, clock)["process"]
        if cost.cache_key(process) not in have:
            add((process, measure.process_seconds(clock=clock), "measured: a fresh Python importing a trial's modules"))
        for group in cost.groups_of(spec, fixture_sizes(spec)):
            key = keys(spec, group, device, clock)
            if group.members:  # its members' steps and rows are the method's on each member task alone
                if cost.cache_key(key["startup"]) not in have:
                    add(measure_startup(spec, group, key["startup"]))
                continue
            if get_task(group.task).images_per_example:  # bench-step and the generation batch feed text only
                log(f"{group.method} on {group.task}: an image-text task, not calibrated (its images are not fed)")
                continue
            if not all(cost.cache_key(key[k]) in have for k in ("step", "generation", "startup")):
                add(*measure_group(spec, group, key, have, repeats=repeats, log=log))
        if found and (node := ray_node()):  # a Ray task: say where it ran
            log(f"measured on {device} as a Ray task on node {node[:12]} holding {gpu_share() or 0:g} GPU")
        return found, said, device
    finally:
        torch.set_num_threads(threads)


STARTUP_HOW = ("measured: a trial's set-up (data read and encoded, model loaded with its method, on a CPU its memory "
               "measured over one step)")


def measure_group(spec, group: cost.Group, key: dict[str, dict], have: frozenset, *, repeats: int, log) -> list:
    """A group's step (at the lengths its data gives), generated row and start-up, those not in ``have``:
    (key, seconds, how) each."""
    from peftbench.engine.bench import bench_step
    from peftbench.harness import calibrate as measure

    cfg, clock = spec.trial(group.method, group.task, spec.learning_rates[0], spec.seeds[0]), key["step"]["clock"]
    missing = {k for k in ("step", "generation", "startup") if cost.cache_key(key[k]) not in have}
    splits, found = measure.encoded_splits(cfg), []
    if "step" in missing:
        source, target, lengths = measure.data_lengths(cfg, group.batch, splits)
        tag = "mean padded batch" if lengths == measure.LENGTHS_HOW else "task maximum"
        (row, *_) = bench_step(cfg.model, [cfg.method], shapes=[(group.batch, source)], target_len=target,
                               options=dict(cfg.method_options), repeats=repeats, clock=clock)
        found.append((key["step"], row["median_step_s"], f"measured at {source}+{target} tokens ({tag})"))
        log(f"calibrated {group.method} on {group.task} at micro-batch {group.batch}, {source}+{target} tokens "
            f"({tag}): {row['median_step_s']:.4f} s/step ({clock} clock)")
    if "generation" in missing and splits and splits["validation"]:
        rows = splits["validation"][: measure.eval_rows(group.batch)]
        found.append((key["generation"], measure.generation_seconds(cfg, rows, clock=clock),
                      f"measured: {len(rows)} validation rows generated at once, each to the task's full output "
                      "length"))
    if "startup" in missing and splits is not None:
        found.append((key["startup"], measure.startup_seconds(cfg, group.batch, clock=clock), STARTUP_HOW))
    return found


def measure_startup(spec, group: cost.Group, key: dict) -> tuple[dict, float, str]:
    """A mixture's start-up (every member's data, the model with its method for all of them), measured at
    its largest member micro-batch: (key, seconds, how)."""
    from peftbench.harness import calibrate as measure

    cfg = spec.trial(group.method, group.task, spec.learning_rates[0], spec.seeds[0])
    micro = max(m.micro_batch for m in group.members)
    return key, measure.startup_seconds(cfg, micro, clock=key["clock"]), STARTUP_HOW


@dataclass(frozen=True)
class Slots:
    """Where the trials would run: how many at once, why, and the device (and so the clock) whose
    figures apply."""

    count: int
    how: str
    device: str

    @property
    def clock(self) -> str:
        return cost.clock_of(self.device)


def local_slots(spec) -> Slots:
    """This machine's slots: its CPUs over a trial's (the sweep runs a local Ray on them all)."""
    from peftbench.harness.provenance import device_name

    cpus = os.cpu_count() or 1
    return Slots(max(1, cpus // spec.cpus_per_trial), f"this machine: {cpus} CPUs, {spec.cpus_per_trial} a trial",
                 device_name())


def cluster_slots(spec, resources: dict, device: str) -> Slots:
    """The slots of a Ray cluster of ``resources`` (``ray.cluster_resources()``), as the sweep asks Ray for
    them (harness/sweep.py): CPUs over a trial's, and on a GPU cluster no more than its cards hold trials
    (as many as budgets fit on a card, or one each for ``exclusive_gpu``)."""
    from peftbench.harness.sweep import gpu_share, spec_gpu_memory

    by_cpu = int(resources.get("CPU", 0) // spec.cpus_per_trial)
    gpus = resources.get("GPU", 0)
    if gpus <= 0:
        return Slots(max(1, by_cpu), f"cluster: {resources.get('CPU', 0):g} CPUs, {spec.cpus_per_trial} a trial",
                     device)
    cfg = spec.trial_at(spec.points()[0])
    share = 1.0 if cfg.exclusive_gpu else gpu_share(cfg.budget_bytes, spec_gpu_memory(spec))
    by_gpu = int(gpus * round(1 / share))
    return Slots(max(1, min(by_cpu, by_gpu)), f"cluster: {gpus:g} GPUs, {round(1 / share)} trials a card "
                 f"({by_gpu}); {resources.get('CPU', 0):g} CPUs, {spec.cpus_per_trial} a trial ({by_cpu})", device)


def ray_gpu(spec):
    """A runner of a job as a Ray task on one of the cluster's GPUs (its CPUs a trial's), or None where the
    cluster has no GPU: the job runs here."""
    import ray

    if ray.cluster_resources().get("GPU", 0) <= 0:
        return None
    task = ray.remote(num_gpus=1, num_cpus=spec.cpus_per_trial)(run_job)
    return lambda job: ray.get(task.remote(job))


def run_job(job):
    """``job()``: what a Ray task runs (Ray's decorator takes functions, not partials)."""
    return job()


@contextlib.contextmanager
def joined(address: str):
    """Inside: joined to the Ray cluster at ``address`` (left after, unless this process had joined one)."""
    import ray

    from peftbench.harness.sweep import join_cluster

    started = not ray.is_initialized()
    if started:
        join_cluster(address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def joined_slots(spec, device: str | None = None) -> Slots:
    """The joined cluster's slots, for ``device`` (default: a GPU node's, else this machine's)."""
    import ray

    from peftbench.harness.provenance import device_name

    if device is None:
        where = ray_gpu(spec)
        device = device_name() if where is None else where(device_name)
    return cluster_slots(spec, ray.cluster_resources(), device)


def cost_lines(spec, out: str | None, *, calibrate_first: bool, address: str | None, log=print) -> list[str]:
    """The dry run's cost lines: on this machine, or with ``address`` on that Ray cluster (its slots; the
    calibration on a GPU node when it has one); calibrated first when asked."""
    if not address:
        if calibrate_first:
            calibrate(spec, out, log=log)
        return lines(spec, out, local_slots(spec))
    with joined(address):
        device = calibrate(spec, out, log=log, where=ray_gpu(spec))[1] if calibrate_first else None
        return lines(spec, out, joined_slots(spec, device))


def parts(spec, groups: list[cost.Group], out: str | None, slots: Slots) -> tuple[dict, cost.Figure | None]:
    """Each group's measured parts on the slots' device from ``OUT/step-times.json``, and the process start
    (nothing without a cache: nothing is measured here)."""
    path = Path(out or ".") / cost.FILENAME
    if not path.exists():
        return {}, None
    times = cost.StepTimes(path)
    entries = times.entries()
    found = {}
    for g in groups:
        key = keys(spec, g, slots.device, slots.clock)
        members = tuple((times.lookup(k["step"], entries), times.get(k["generation"], entries))
                        for k in (member_keys(spec, g, m, slots.device, slots.clock) for m in g.members))
        found[(g.method, g.task)] = cost.Parts(step=times.lookup(key["step"], entries),
                                               row=times.get(key["generation"], entries),
                                               startup=times.get(key["startup"], entries), members=members)
    return found, times.get(keys(spec, None, slots.device, slots.clock)["process"], entries)


def rows(spec, out: str | None, slots: Slots) -> tuple[list[cost.Row], cost.Figure | None]:
    """The prediction's rows and the process start."""
    groups = cost.groups_of(spec, fixture_sizes(spec), planned_accumulation(out))
    found, process = parts(spec, groups, out, slots)
    return cost.predict(groups, found), process


def lines(spec, out: str | None, slots: Slots) -> list[str]:
    predicted, process = rows(spec, out, slots)
    if not predicted:
        return ["cost: no task sizes known without downloading (hub data): no prediction"]
    return [*cost.lines(predicted, slots.count, process, clock=slots.clock), f"  slots: {slots.how}"]


def write_prediction(spec, out: str, address: str | None = None) -> Path | None:
    """``OUT/prediction.json`` before a new sweep runs (a resumed one keeps its first), on the slots the
    sweep will have (``address``: that cluster's), for the report's predicted-against-measured table;
    nothing when no trial could be predicted."""
    folder = Path(out)
    if (folder / SPEC_FILE).exists() or (folder / cost.PREDICTION_FILE).exists():
        return None
    if not (folder / cost.FILENAME).exists():  # nothing calibrated: no cluster joined to find out
        return None
    if address:
        with joined(address):
            slots = joined_slots(spec)
    else:
        slots = local_slots(spec)
    predicted, process = rows(spec, out, slots)
    if not any(r.seconds is not None for r in predicted):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        found = cost.prediction(predicted, slots.count, process, clock=slots.clock)
        return write_json(folder / cost.PREDICTION_FILE, found, indent=1)
    except OSError:  # an --out the sweep cannot use: its own check says so in one line
        return None
