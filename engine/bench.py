"""Step timing: the wall-clock time of one training step (forward, backward, optimizer) per method.

Measured, never estimated: whole steps timed with ``time.perf_counter`` (after a CUDA synchronize on
a GPU), or the process's CPU time (``clock="cpu"``), on random weights and random tokens. Methods
are interleaved within each repetition, in an order that rotates, so drifts in machine load fall on
all of them alike. Reported: each method's median step time, and the median over repetitions of its
time over the first method's time in the same repetition (steps seconds apart, so a shared
machine's load changes cancel out of the ratio). Plain AdamW for every method (full fine-tuning
included, no DeepSpeed), so the figures compare the methods' own cost. Beside the methods runs
their floor: the frozen backbone's forward and backward with no module and no optimizer
(``floor_step``), what no method can beat.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from transformers import T5ForConditionalGeneration

from peftbench.engine import devices
from peftbench.engine.batches import random_batch
from peftbench.engine.build import build_model
from peftbench.engine.devices import set_precision
from peftbench.engine.step import Engine, Optimization
from peftbench.methods import check_options_used, options_for
from peftbench.models.load import model_config


def training_step(model: torch.nn.Module, batch: dict, *, precision: str = "fp32") -> Callable[[], None]:
    """A closure running one step of the training loop's plain-torch engine on ``batch``."""
    engine = Engine(model, Optimization(learning_rate=1e-5), precision=precision)

    def step():
        engine.micro_step(batch)

    return step


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved_times(steps: dict[str, Callable[[], None]], *, repeats: int, warmup: int = 1,
                      log: Callable[[str], None] | None = None, clock: str = "wall") -> dict[str, list[float]]:
    """Seconds per call of each step; every repetition calls each once, the order rotating.

    ``clock="cpu"``: the process's CPU seconds instead of wall seconds. On a machine shared with
    other work and one torch thread (``--threads 1``), time spent waiting for a core is not counted;
    on a GPU it misses the device's work, so it is for CPU runs only."""
    now = CLOCKS[clock]
    names = list(steps)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            sync()
            start = now()
            steps[name]()
            sync()
            times[name].append(now() - start)
        if log:
            log(f"repetition {r + 1}/{repeats}: " + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()))
    return times


FLOOR = "floor"  # the frozen backbone alone: the least any method's step can cost


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"2x32,8x128"`` -> ``[(2, 32), (8, 128)]``: batch size × sequence length pairs."""
    shapes = []
    for item in text.split(","):
        batch, sep, length = item.strip().partition("x")
        if not (sep and batch.isdigit() and length.isdigit() and int(batch) > 0 and int(length) > 0):
            raise ValueError(f"a shape is BATCHxLENGTH with positive integers (e.g. 2x32), got {item!r}")
        shapes.append((int(batch), int(length)))
    return shapes


def floor_step(model: torch.nn.Module, batch: dict) -> Callable[[], None]:
    """A closure running the frozen backbone's forward and backward: every parameter frozen, the
    gradient taken to the encoder's and decoder's input embeddings only, no optimizer. Every PEFT
    method pays at least this: gradients must reach its modules through the whole network."""
    model.requires_grad_(False)
    embed = model.get_input_embeddings()
    encoder_in = embed(batch["input_ids"]).detach().requires_grad_()
    decoder_in = embed(model._shift_right(batch["labels"])).detach().requires_grad_()

    def step():
        loss = model(inputs_embeds=encoder_in, attention_mask=batch["attention_mask"],
                     decoder_inputs_embeds=decoder_in, labels=batch["labels"]).loss
        loss.backward()
        encoder_in.grad = decoder_in.grad = None

    return step


def bench_step(model: str, methods: list[str], *, shapes: list[tuple[int, int]], target_len: int | None = None,
               options: dict | None = None, repeats: int = 5, warmup: int = 1, seed: int = 0,
               log: Callable[[str], None] | None = None, clock: str = "wall", precision: str = "fp32",
               tf32: bool = False) -> list[dict]:
    """Per shape (batch, length), the median step time of each method on ``model`` (random weights),
    its paired ratio to the first method and to the frozen backbone's forward and backward (``FLOOR``),
    each row with the arithmetic it ran in (engine/devices.py)."""
    if len(set(methods)) != len(methods) or not methods or FLOOR in methods:
        raise ValueError(f"methods must be distinct, at least one and not {FLOOR!r}, got {methods}")
    options = options or {}
    check_options_used(methods, options)
    arithmetic = set_precision(precision, tf32=tf32)
    device = devices.placement()
    config = model_config(model)
    models = {}
    for method in [*methods, FLOOR]:
        torch.manual_seed(seed)  # the same backbone weights under every method
        models[method] = (backbone(model, device) if method == FLOOR
                          else build_model(model, method, options_for(method, options), device=device))
    rows = []
    for batch_size, seq_len in shapes:
        batch = random_batch(config.vocab_size, batch_size=batch_size, source_len=seq_len,
                             target_len=target_len or seq_len, generator=torch.Generator().manual_seed(seed),
                             device=device)
        steps = {m: floor_step(built, batch) if m == FLOOR else training_step(built, batch, precision=precision)
                 for m, built in models.items()}
        shape = f"{batch_size}x{seq_len}"
        shape_log = log and (lambda line, shape=shape: log(f"{shape} {line}"))
        rows += [{"shape": shape, **row, "precision": arithmetic} for row in
                 summarize(interleaved_times(steps, repeats=repeats, warmup=warmup, log=shape_log, clock=clock))]
    return rows


def backbone(model: str, device: torch.device) -> torch.nn.Module:
    """``model`` with random weights and no method, in train mode (dropout on, as under a method)."""
    with torch.device(device):
        return T5ForConditionalGeneration(model_config(model)).train()


def summarize(times: dict[str, list[float]]) -> list[dict]:
    """Each method's median step time and median paired ratio to the first method's and, when
    timed, to the floor's (``FLOOR``)."""
    first = next(iter(times.values()))
    floor = times.get(FLOOR)

    def paired(t, ref):
        return statistics.median(a / b for a, b in zip(t, ref, strict=False))

    return [{"method": m, "median_step_s": statistics.median(t), "ratio": paired(t, first),
             **({"floor_ratio": paired(t, floor)} if floor else {})} for m, t in times.items()]


def table(rows: list[dict]) -> str:
    """The rows of ``bench_step`` as aligned text, one line per shape and method."""
    first = rows[0]["method"]
    lines = [f"{'shape':<9} {'method':<20} {'median step':>12} {'× ' + first:>14} {'× ' + FLOOR:>9}"]
    for r in rows:
        lines.append(f"{r['shape']:<9} {r['method']:<20} {r['median_step_s']:10.3f} s {r['ratio']:14.3f} "
                     f"{r['floor_ratio']:9.3f}")
    return "\n".join(lines)
