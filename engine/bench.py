"""Step timing: the wall-clock time of one training step (forward, backward, optimizer) per method.

Measured, never estimated: whole steps timed with ``time.perf_counter`` (after a CUDA synchronize on
a GPU), on random weights and random tokens. Methods are interleaved within each repetition, in an
order that rotates, so drifts in machine load fall on all of them alike. Reported: each method's
median step time, and the median over repetitions of its time over the first method's time in the
same repetition (steps seconds apart, so a shared machine's load changes cancel out of the ratio). Plain AdamW for every method (full fine-tuning included, no DeepSpeed),
so the figures compare the methods' own cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from engine import devices
from engine.batches import random_batch
from engine.devices import set_precision
from engine.models import build_model, model_config
from engine.step import Engine, Optimization
from methods import check_options_used, options_for


def training_step(model: torch.nn.Module, batch: dict, *, precision: str = "fp32") -> Callable[[], None]:
    """A closure running one step of the training loop's plain-torch engine on ``batch``."""
    engine = Engine(model, Optimization(learning_rate=1e-5), precision=precision)

    def step():
        engine.micro_step(batch)

    return step


def interleaved_times(steps: dict[str, Callable[[], None]], *, repeats: int, warmup: int = 1,
                      log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each step; every repetition calls each once, the order rotating."""
    names = list(steps)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sync()
            start = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)
        if log:
            log(f"repetition {r + 1}/{repeats}: " + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()))
    return times


def bench_step(model: str, methods: list[str], *, batch_size: int, seq_len: int, target_len: int | None = None,
               options: dict | None = None, repeats: int = 5, warmup: int = 1, seed: int = 0, precision: str = "fp32",
               tf32: bool = False, log: Callable[[str], None] | None = None) -> list[dict]:
    """Median step time of each method on ``model`` (random weights) and its ratio to the first method,
    each row with the arithmetic it ran in (engine/devices.py)."""
    if len(set(methods)) != len(methods) or not methods:
        raise ValueError(f"methods must be distinct and at least one, got {methods}")
    options = options or {}
    check_options_used(methods, options)
    arithmetic = set_precision(precision, tf32=tf32)
    device = devices.placement()
    config = model_config(model)
    batch = random_batch(config.vocab_size, batch_size=batch_size, source_len=seq_len, target_len=target_len or seq_len,
                         generator=torch.Generator().manual_seed(seed), device=device)
    steps = {}
    for method in methods:
        torch.manual_seed(seed)  # the same backbone weights under every method
        own = options_for(method, options)
        built = build_model(model, method, own, device=device)
        steps[method] = training_step(built, batch, precision=precision)
    return [{**row, "precision": arithmetic}
            for row in summarize(interleaved_times(steps, repeats=repeats, warmup=warmup, log=log))]


def summarize(times: dict[str, list[float]]) -> list[dict]:
    """Each method's median step time and median paired ratio to the first method's."""
    first = next(iter(times.values()))
    return [{"method": m, "median_step_s": statistics.median(t),
             "ratio": statistics.median(a / b for a, b in zip(t, first))} for m, t in times.items()]
