"""What ``peftbench sweep SPEC --dry-run`` adds to the grid's description: per method × task the batch,
optimizer steps and, where its parts were measured (``OUT/step-times.json``, harness/cost.py: with
``--calibrate``), the seconds of training, generation and start-up per trial and the totals. Nothing is
downloaded, and nothing measured without ``--calibrate``."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from peftbench.files import write_json
from peftbench.harness import cost
from peftbench.harness.folder import SPEC_FILE


def fixture_sizes(spec):
    """(train, validation, test) examples of a task on the offline fixtures; None for hub data (its
    sizes need the data, which a dry run never downloads) and for mixtures."""
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


def calibrate(spec, out: str | None, *, repeats: int = 3, log=print) -> int:
    """Measure every part of the spec's cost that ``OUT/step-times.json`` lacks (harness/calibrate.py; the
    step with bench-step: plain AdamW, random weights), at the trial's threads; how many it measured (0 on
    a second run)."""
    import torch

    from peftbench.harness import calibrate as measure
    from peftbench.harness.provenance import device_name

    times, device, clock = cost.StepTimes(Path(out or ".") / cost.FILENAME), device_name(), measure.clock_name()
    threads = torch.get_num_threads()
    torch.set_num_threads(spec.cpus_per_trial)  # Ray gives a trial's worker as many threads as its CPUs
    try:
        process, done = keys(spec, None, device, clock)["process"], 0
        if times.get(process) is None:
            times.put(process, measure.process_seconds(clock=clock),
                      "measured: a fresh Python importing a trial's modules")
            done += 1
        for group in cost.groups_of(spec, fixture_sizes(spec)):
            done += calibrate_group(spec, group, times, keys(spec, group, device, clock), repeats=repeats, log=log)
        return done
    finally:
        torch.set_num_threads(threads)


def calibrate_group(spec, group: cost.Group, times: cost.StepTimes, key: dict[str, dict], *, repeats: int,
                    log) -> int:
    """Measure a group's step (at the lengths its data gives), generated row and start-up, each unless
    cached; how many it measured."""
    from peftbench.engine.bench import bench_step
    from peftbench.harness import calibrate as measure

    entries = times.entries()
    if all(cost.cache_key(key[k]) in entries for k in ("step", "generation", "startup")):
        return 0
    cfg, clock = spec.trial(group.method, group.task, spec.learning_rates[0], spec.seeds[0]), key["step"]["clock"]
    splits = measure.encoded_splits(cfg)
    source, target, lengths = measure.data_lengths(cfg, group.batch, splits)
    tag = "mean padded batch" if lengths == measure.LENGTHS_HOW else "task maximum"
    (row, *_) = bench_step(cfg.model, [cfg.method], shapes=[(group.batch, source)], target_len=target,
                           options=dict(cfg.method_options), repeats=repeats, clock=clock)
    times.put(key["step"], row["median_step_s"], f"measured at {source}+{target} tokens ({tag})")
    done = 1
    if splits and splits["validation"]:
        rows = splits["validation"][: measure.eval_rows(group.batch)]
        times.put(key["generation"], measure.generation_seconds(cfg, rows, clock=clock),
                  f"measured: {len(rows)} validation rows generated at once, each to the task's full output length")
        done += 1
    if splits is not None:
        times.put(key["startup"], measure.startup_seconds(cfg, clock=clock),
                  "measured: model loaded, method applied, data read and encoded")
        done += 1
    log(f"calibrated {group.method} on {group.task} at micro-batch {group.batch}, {source}+{target} tokens ({tag}): "
        f"{row['median_step_s']:.4f} s/step ({clock} clock)")
    return done


def parts(spec, groups: list[cost.Group], out: str | None) -> tuple[dict, cost.Figure | None, str]:
    """Each group's measured parts from ``OUT/step-times.json``, the process start, and the clock (nothing
    without a cache: nothing is measured here)."""
    path = Path(out or ".") / cost.FILENAME
    if not path.exists():
        return {}, None, "cpu"
    # imports torch: only when there is a cache to read
    from peftbench.harness.calibrate import clock_name
    from peftbench.harness.provenance import device_name

    times, device, clock = cost.StepTimes(path), device_name(), clock_name()
    entries = times.entries()
    found = {}
    for g in groups:
        key = keys(spec, g, device, clock)
        found[(g.method, g.task)] = cost.Parts(step=times.lookup(key["step"], entries),
                                               row=times.get(key["generation"], entries),
                                               startup=times.get(key["startup"], entries))
    return found, times.get(keys(spec, None, device, clock)["process"], entries), clock


def rows(spec, out: str | None) -> tuple[list[cost.Row], int, cost.Figure | None, str]:
    """The prediction's rows, the slots it schedules on (this machine's; a cluster's: not yet), the process
    start and the clock."""
    groups = cost.groups_of(spec, fixture_sizes(spec))
    slots = max(1, (os.cpu_count() or 1) // spec.cpus_per_trial)
    found, process, clock = parts(spec, groups, out)
    return cost.predict(groups, found), slots, process, clock


def lines(spec, out: str | None) -> list[str]:
    predicted, slots, process, clock = rows(spec, out)
    if not predicted:
        return ["cost: no task sizes known without downloading (hub data): no prediction"]
    return cost.lines(predicted, slots, process, clock=clock)


def write_prediction(spec, out: str) -> Path | None:
    """``OUT/prediction.json`` before a new sweep runs (a resumed one keeps its first), for the report's
    predicted-against-measured table; nothing when no trial could be predicted."""
    folder = Path(out)
    if (folder / SPEC_FILE).exists() or (folder / cost.PREDICTION_FILE).exists():
        return None
    predicted, slots, process, clock = rows(spec, out)
    if not any(r.seconds is not None for r in predicted):
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return write_json(folder / cost.PREDICTION_FILE, cost.prediction(predicted, slots, process, clock=clock),
                          indent=1)
    except OSError:  # an --out the sweep cannot use: its own check says so in one line
        return None
