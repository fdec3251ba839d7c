"""Short measurements that calibrate the cost model (harness/cost.py), each of one part of a trial and each
said how it was taken: the lengths the data gives, a generation batch, a trial's start-up and a worker
process's start. The step itself is bench-step's (engine/bench.py).

On a CPU the clock is the process's CPU time (``time.process_time``) at the trial's threads: a trial's
record keeps the same (``cpu_time_s``), and other jobs sharing the machine do not inflate it; on a GPU,
the wall clock after a synchronize.
"""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from peftbench.engine import devices
from peftbench.engine.batches import collate
from peftbench.engine.build import build_model
from peftbench.harness.config import TrialConfig
from peftbench.harness.cost import clock_of
from peftbench.harness.generation import decoding
from peftbench.harness.provenance import device_name
from peftbench.harness.setup import CPU_EVAL_ROWS, encode_split
from peftbench.methods import options_for
from peftbench.models.load import load_model
from peftbench.tasks import Task, get_task

LENGTHS_HOW = "the mean padded batch of the training split (batches padded to their longest row, as trials pad)"


def clock_name() -> str:
    """The clock this process's calibration and the records it is compared with share (``cost.clock_of``)."""
    return clock_of(device_name())


def timed(run: Callable[[], object], *, clock: str) -> float:
    """Seconds of one ``run()`` on ``clock`` (the device synchronized first and after)."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = now()
    run()
    sync()
    return now() - start


def padded_mean(lengths: list[int], batch: int, *, seed: int = 0) -> int:
    """The mean over an epoch's batches of the longest row in each (rows shuffled with ``seed``, ``batch``
    at a time): the length a step pads to, on average; rounded up."""
    order = list(lengths)
    random.Random(seed).shuffle(order)
    longest = [max(order[i:i + batch]) for i in range(0, len(order), batch)]
    return -(-sum(longest) // len(longest))


def encoded_splits(cfg: TrialConfig) -> dict[str, list[dict]] | None:
    """The trial's task encoded as a trial encodes it (the model's tokenizer, its text format and source
    length); None when its data or tokenizer cannot be had offline (hub data, a model not cached)."""
    task = get_task(cfg.task)
    try:
        splits = task.load_with_source(cfg.data, train_size=cfg.train_size, seed=cfg.seed).splits
        _, tokenizer, _ = load_model(cfg.model, seed=cfg.seed)
    except Exception:  # noqa: BLE001  whatever stops the data or tokenizer, the task's maxima stand in
        return None
    max_source = cfg.max_source_length or task.max_source_length
    return {split: encode_split(task, cfg.text_format(), tokenizer, rows, max_source) for split, rows in splits.items()}


def data_lengths(cfg: TrialConfig, micro_batch: int, splits: dict | None) -> tuple[int, int, str]:
    """(source, target) tokens a training step of ``cfg`` pads to, and how they were found: the mean padded
    batch of the encoded training split, else the task's maximum lengths (an overestimate)."""
    task = get_task(cfg.task)
    if not splits or not splits["train"]:
        return (cfg.max_source_length or task.max_source_length, task.max_target_length,
                "the task's maximum lengths (its data could not be read offline)")
    rows = splits["train"]
    return (padded_mean([len(r["input_ids"]) for r in rows], micro_batch, seed=cfg.seed),
            padded_mean([len(r["labels"]) for r in rows], micro_batch, seed=cfg.seed), LENGTHS_HOW)


def eval_rows(micro_batch: int) -> int:
    """Rows generated at once, as a trial generates them (``Trial.eval_rows``)."""
    return micro_batch if devices.accelerator() is not None else max(micro_batch, CPU_EVAL_ROWS)


def generation_seconds(cfg: TrialConfig, rows: list[dict], *, clock: str, repeats: int = 1) -> float:
    """Seconds per row of generating ``rows`` (encoded evaluation rows, at most one batch of them) with the
    trial's method on random weights, as a trial decodes its task (``decoding``), every row run to the
    task's full output length (random weights may stop early; a trained model stops at its answer, so
    this is the longest a batch can take); a task of ``choices`` takes one forward."""
    task, device = get_task(cfg.task), devices.placement()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.method, options_for(cfg.method, cfg.method_options), device=device).eval()
    batch = {k: v.to(device) for k, v in collate(rows, model.config.pad_token_id).items() if k != "labels"}
    run = (lambda: one_forward(model, batch)) if getattr(task, "choices", None) else \
        (lambda: model.generate(**batch, **full_length(task)))
    with torch.no_grad():
        run()  # warm-up: the first call pays one-off set-up
        return min(timed(run, clock=clock) for _ in range(repeats)) / len(rows)


def full_length(task: Task) -> dict:
    """The task's ``generate()`` arguments with a floor equal to the ceiling, so every row decodes in full."""
    args = decoding(task)
    floor = {"min_length": args["max_length"]} if "max_length" in args else {"min_new_tokens": args["max_new_tokens"]}
    return {**args, **floor}


def one_forward(model, batch: dict) -> None:
    start = torch.full((batch["input_ids"].shape[0], 1), model.config.decoder_start_token_id,
                       device=batch["input_ids"].device)
    model(**batch, decoder_input_ids=start)


def startup_seconds(cfg: TrialConfig, micro_batch: int, *, clock: str) -> float:
    """Seconds of a trial's set-up (harness/setup.py) in a worker that has run one before: the data read and
    encoded, the model loaded with its method, on a CPU its memory measured over one step, the engine built.
    The first call, which pays one-off imports, is not timed; the memory measurement's per-worker cache is
    emptied first, as a sweep's trials of one workload mostly land on different workers."""
    from peftbench.budgets.plan import BatchPlan
    from peftbench.harness.memory import _tensor_peak
    from peftbench.harness.setup import setup

    plan = BatchPlan(micro_batch=micro_batch, accumulation=1, chosen_by="fixed")
    setup(cfg, plan).engine.close()
    _tensor_peak.cache_clear()

    def run():
        setup(cfg, plan).engine.close()

    return timed(run, clock=clock)


PROCESS_PROBE = "import peftbench.harness.trial, peftbench.harness.train, peftbench.harness.sweep"


def process_seconds(*, clock: str) -> float:
    """Seconds for a fresh Python to import what a trial's worker imports (once per worker: Ray reuses it
    for the next trial): the child's CPU time on the ``cpu`` clock, else its wall time."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-c", PROCESS_PROBE], check=True, capture_output=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu if clock == "cpu" else wall

