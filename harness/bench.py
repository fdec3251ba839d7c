"""Step timing: the wall-clock time of one training step (forward, backward, optimizer) per method.

Measured, never estimated: whole steps timed with ``time.perf_counter`` (after a CUDA synchronize on
a GPU), on random weights and random tokens. Methods are interleaved within each repetition, in an
order that rotates, so drifts in machine load fall on all of them alike. Reported: each method's
median step time, and the median over repetitions of its time over the first method's time in the
same repetition (steps seconds apart, so a shared machine's load changes cancel out of the ratio). Plain AdamW for every method (full fine-tuning included, no DeepSpeed),
so the figures compare the methods' own cost.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from transformers import T5Config, T5ForConditionalGeneration

from harness.accounting import check_options_used, options_for
from harness.models import model_config
from methods import apply_method


def random_batch(config: T5Config, *, batch_size: int, seq_len: int, target_len: int,
                 generator: torch.Generator, device="cpu") -> dict[str, torch.Tensor]:
    """A training batch of random token ids (no padding), in the loop's format."""
    def ids(length):
        return torch.randint(2, config.vocab_size, (batch_size, length), generator=generator).to(device)

    input_ids = ids(seq_len)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": ids(target_len)}


def training_step(model: torch.nn.Module, batch: dict) -> Callable[[], None]:
    """A closure running one step of the training loop's plain-torch path (AdamW) on ``batch``."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

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
               options: dict | None = None, repeats: int = 5, warmup: int = 1, seed: int = 0,
               log: Callable[[str], None] | None = None) -> list[dict]:
    """Median step time of each method on ``model`` (random weights) and its ratio to the first method."""
    if len(set(methods)) != len(methods) or not methods:
        raise ValueError(f"methods must be distinct and at least one, got {methods}")
    options = options or {}
    check_options_used(methods, options)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = model_config(model)
    torch.manual_seed(seed)
    base = T5ForConditionalGeneration(config)
    batch = random_batch(config, batch_size=batch_size, seq_len=seq_len, target_len=target_len or seq_len,
                         generator=torch.Generator().manual_seed(seed), device=device)
    steps = {}
    for method in methods:
        model_copy = copy.deepcopy(base)
        apply_method(model_copy, method, options_for(method, options))
        steps[method] = training_step(model_copy.to(device).train(), batch)
    del base
    return summarize(interleaved_times(steps, repeats=repeats, warmup=warmup, log=log))


def summarize(times: dict[str, list[float]]) -> list[dict]:
    """Each method's median step time and median paired ratio to the first method's."""
    first = next(iter(times.values()))
    return [{"method": m, "median_step_s": statistics.median(t),
             "ratio": statistics.median(a / b for a, b in zip(t, first))} for m, t in times.items()]
