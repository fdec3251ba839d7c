"""The one training loop: AdamW, linear warm-up then decay, validation by generation each epoch,
the best epoch kept, test evaluated at the best epoch. Plain torch, or a DeepSpeed engine when the
method asks for one."""

from __future__ import annotations

import math
import os
import random
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from budgets.plan import plan_batch
from budgets.workload import Workload
from harness.config import TrialConfig
from harness.models import load_model
from methods import apply_method, get_method
from tasks import get_task


def train(cfg: TrialConfig, *, report: Callable[[dict], None] | None = None,
          checkpoint_dir: Path | None = None, budget_cache: Path | None = None, log=print) -> dict:
    """Run one trial; return the result fields (metrics, counts, memory, time).

    With ``checkpoint_dir``, the loop saves its state after every epoch and, when a checkpoint is
    already there (a killed trial, rerun), continues from the epoch after it. ``budget_cache``:
    where the batch found for this method under the budget is kept for the sweep's other trials
    (see budgets/plan.py).
    """
    seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reset_cpu_peak_memory()
    rank, world = rank_and_world()
    task = get_task(cfg.task)
    data = task.load(cfg.data, train_size=cfg.train_size, seed=cfg.seed)
    max_source = cfg.max_source_length or task.max_source_length
    # Before the model is loaded: on a GPU the budget's probes need the card to themselves.
    workload = Workload(cfg.model, cfg.method, cfg.method_options, source_len=max_source,
                        target_len=task.max_target_length)
    plan = plan_batch(workload, batch=cfg.batch, fixed_batch=cfg.batch_size, budget=cfg.budget,
                      cache_path=budget_cache, log=log)
    micro, accumulation = plan.micro_batch, plan.accumulation
    model, tokenizer = load_model(cfg.model, seed=cfg.seed)
    method = get_method(cfg.method)
    method_cfg, count = apply_method(model, cfg.method, cfg.method_options)
    encode = lambda split: encode_split(task, tokenizer, data[split], max_source)
    train_set, val_set, test_set = encode("train"), encode("validation"), encode("test")

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    # Micro-batches count across epochs: the optimizer steps after every `accumulation` of them
    # (as DeepSpeed's engine does); a partial group left at the very end is not applied. With
    # `world` data-parallel workers, each step's rows are split among them.
    rows_per_micro_step = micro * world
    steps = cfg.epochs * math.ceil(len(train_set) / rows_per_micro_step) // accumulation
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, steps)
    if method.engine == "deepspeed":
        model, optimizer, scheduler = deepspeed_engine(
            model, optimizer, scheduler, method_cfg, micro_batch=micro, accumulation=accumulation
        )
        device = model.device
    else:
        model.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    state = {"epoch": 0, "micro_steps": 0, "val_metrics": [], "epoch_times": [], "best": None,
             "best_state": None, "order": random.Random(cfg.seed).getstate()}
    if checkpoint_dir and (checkpoint_dir / LOOP_STATE).exists():
        state = load_checkpoint(checkpoint_dir, model, optimizer, scheduler)
        log(f"[{cfg.trial_id}] continuing after epoch {state['epoch']} from {checkpoint_dir}")
    order = random.Random()
    order.setstate(state["order"])
    for epoch in range(state["epoch"], cfg.epochs):
        model.train()
        start = time.perf_counter()
        for batch in batches(train_set, rows_per_micro_step, tokenizer.pad_token_id, shuffle=order):
            batch = {k: v[rank::world].contiguous().to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} in epoch {epoch + 1}")
            state["micro_steps"] += 1
            if method.engine == "deepspeed":
                model.backward(loss)  # scaled by 1/accumulation, averaged over workers
                model.step()  # optimizer and scheduler step inside the engine, every `accumulation` calls
            else:
                (loss / accumulation).backward()
                if state["micro_steps"] % accumulation == 0:
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
        state["epoch_times"].append(time.perf_counter() - start)

        metrics = evaluate(model, tokenizer, task, val_set, micro, device)
        state["val_metrics"].append(metrics)
        score = task.score(metrics)
        if state["best"] is None or score > task.score(state["val_metrics"][state["best"]]):
            state["best"], state["best_state"] = epoch, trainable_state(model)
        state["epoch"], state["order"] = epoch + 1, order.getstate()
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, model, optimizer, scheduler, state, rank=rank)
        log(f"[{cfg.trial_id}] epoch {epoch + 1}/{cfg.epochs} loss {loss.item():.4f} "
            f"val {score:.2f} ({state['epoch_times'][-1]:.1f}s)")
        if report:
            report({"epoch": epoch + 1, "val_score": score, "loss": loss.item()})

    load_trainable_state(model, state["best_state"])
    test_metrics = evaluate(model, tokenizer, task, test_set, micro, device)
    peak, measured_by = peak_memory(device)
    best = state["best"]
    return {
        "val_metrics": state["val_metrics"],
        "best_epoch": best + 1,
        "val_score": task.score(state["val_metrics"][best]),
        "test_metrics": test_metrics,
        "test_score": task.score(test_metrics),
        "trainable_params": count.trainable,
        "total_params": count.total,
        "trainable_pct": count.pct,
        "peak_memory_bytes": peak,
        "memory_measured_by": measured_by,
        "time_per_epoch_s": sum(state["epoch_times"]) / len(state["epoch_times"]),
        "batch_size": plan.batch_size * world,
        "micro_batch_size": micro,
        "accumulation_steps": accumulation,
        "workers": world,
        "budget": plan.budget,
        "batch_chosen_by": plan.chosen_by,
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def encode_split(task, tokenizer, examples: list[dict], max_source: int) -> list[dict]:
    """Token ids of each example's source and target (unpadded), with the example kept for scoring."""
    out = []
    for ex in examples:
        source = tokenizer(task.source(ex), truncation=True, max_length=max_source).input_ids
        target = tokenizer(task.target(ex), truncation=True, max_length=task.max_target_length).input_ids
        out.append({"input_ids": source, "labels": target, "example": ex})
    return out


def batches(rows: list[dict], size: int, pad_id: int, *, shuffle: random.Random | None = None):
    """Padded tensor batches; label padding is -100 so the loss ignores it."""
    idx = list(range(len(rows)))
    if shuffle:
        shuffle.shuffle(idx)
    for i in range(0, len(idx), size):
        chunk = [rows[j] for j in idx[i : i + size]]
        input_ids = pad([r["input_ids"] for r in chunk], pad_id)
        labels = pad([r["labels"] for r in chunk], -100)
        yield {"input_ids": input_ids, "attention_mask": (input_ids != pad_id).long(), "labels": labels}


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


@torch.no_grad()
def evaluate(model, tokenizer, task, rows: list[dict], batch_size: int, device) -> dict[str, float]:
    """Greedy generation on ``rows``, scored by the task's metrics."""
    module = getattr(model, "module", model)  # a DeepSpeed engine wraps the model
    module.eval()
    predictions = []
    for batch in batches(rows, batch_size, tokenizer.pad_token_id):
        generated = module.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            max_new_tokens=task.max_target_length,
            do_sample=False,
            num_beams=1,
        )
        predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return task.evaluate(predictions, [r["example"] for r in rows])


def trainable_state(model) -> dict[str, torch.Tensor]:
    module = getattr(model, "module", model)
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    module = getattr(model, "module", model)
    for name, p in module.named_parameters():
        if name in state:
            p.copy_(state[name])


def reset_cpu_peak_memory() -> None:
    """Start the process's peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM), so a
    worker process that runs several trials in turn measures each on its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak memory of this trial and how it was measured (never an estimate)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return kib * 1024, "VmHWM (process peak RSS since the trial began, CPU)"
    except (OSError, StopIteration):
        # ru_maxrss is in KiB on Linux: the process's peak over its whole life, an upper bound.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss (process peak RSS, CPU)"


def deepspeed_engine(model, optimizer, scheduler, method_cfg, *, micro_batch: int, accumulation: int = 1):
    """A single-process DeepSpeed engine; the env vars DeepSpeed needs are set if absent.

    The engine scales the loss by 1/accumulation and steps every ``accumulation`` micro-batches.
    """
    import deepspeed

    if not torch.distributed.is_initialized():
        # One process: a fresh port each time, so concurrent trials on one host never collide.
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    ds_config = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": accumulation,
        "steps_per_print": 10**9,
        **method_cfg.deepspeed_config(),
    }
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
    )
    return engine, optimizer, scheduler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_and_world() -> tuple[int, int]:
    """This worker's rank and the number of data-parallel workers (1 without torch.distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


LOOP_STATE = "loop.pt"


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict, *, rank: int) -> None:
    """Everything needed to continue after this epoch; the loop state is written last, atomically,
    so a checkpoint that has it is complete."""
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_checkpoint"):  # a DeepSpeed engine saves its own (sharded) state
        model.save_checkpoint(str(directory), tag="last")
        extra = {}
    else:
        extra = {"trainable": trainable_state(model), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict()}
    if rank == 0:
        tmp = directory / f".{LOOP_STATE}.tmp"
        torch.save({**state, **extra, "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, directory / LOOP_STATE)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> dict:
    saved = torch.load(directory / LOOP_STATE, weights_only=False)
    if hasattr(model, "load_checkpoint"):
        model.load_checkpoint(str(directory), tag="last")
    else:
        load_trainable_state(model, saved.pop("trainable"))
        optimizer.load_state_dict(saved.pop("optimizer"))
        scheduler.load_state_dict(saved.pop("scheduler"))
    torch.set_rng_state(saved.pop("torch_rng"))
    return saved
