"""The one training loop: the engine's step over shuffled batches, validation by generation each
epoch, the best epoch kept, test evaluated at the best epoch, a checkpoint after every epoch.

A mixture trial runs the same loop: its batches come from ``tasks.mixture.MixtureSampler`` (each
batch from one member, the model told which by ``set_task``), validation scores every member and
the best epoch is the one with the best mean over members (``Mixture.score``).

Setup (data, model, method, engine) happens before the loop, in ``setup``; the batch plan comes in.
"""

from __future__ import annotations

import functools
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine import devices
from peftbench.engine.batches import batches, collate
from peftbench.engine.devices import set_precision
from peftbench.models.load import load_model
from peftbench.engine.state import (
    has_checkpoint,
    load_checkpoint,
    load_trainable_state,
    save_checkpoint,
    save_tensors,
    trainable_state,
)
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of, rank_and_world
from peftbench.harness.config import TrialConfig
from peftbench.methods import ParamCount, apply_method
from peftbench.methods.multitask import set_task
from peftbench.tasks import Task, TextFormat, get_task
from peftbench.tasks.base import trial_model
from peftbench.tasks.mixture import Mixture, MixtureSampler, mixture_source, sampling_probabilities


def train(cfg: TrialConfig, plan: BatchPlan, *, report: Callable[[dict], None] | None = None,
          checkpoint_dir: Path | None = None, modules_file: Path | None = None, log=print) -> dict:
    """Run one trial at ``plan``'s batch; return the result fields (metrics, counts, memory, time).

    Validation runs after every epoch, or every ``cfg.eval_every_steps`` optimizer steps; the best
    validation score's weights are kept and tested. With ``checkpoint_dir``, the loop saves its state
    after every epoch and, when a checkpoint is already there (a killed trial, rerun), continues
    from the epoch after it. With ``modules_file``, the trained parameters of the best validation
    are kept there (safetensors), to be loaded into the same model and method and served.
    """
    run, state = resume(cfg, plan, checkpoint_dir, log)
    try:  # a failed trial too lets go of its engine: a reused Ray worker runs the next trial
        return loop(run, state, plan, report=report, checkpoint_dir=checkpoint_dir, modules_file=modules_file, log=log)
    finally:
        run.engine.close()


def loop(run: Run, state: dict | None, plan: BatchPlan, *, report, checkpoint_dir: Path | None,
         modules_file: Path | None, log) -> dict:
    """The epochs of ``train``: steps, validation, checkpoints; then test at the best validation."""
    cfg = run.cfg
    order = run.new_order()  # the data order: a shuffle's RNG, or a mixture's sampler
    state = state or {"epoch": 0, "val_metrics": [], "evaluated_at": [], "epoch_times": [], "best": None,
                      "best_state": None, "order": order.getstate()}
    order.setstate(state["order"])
    for epoch in range(state["epoch"], run.epochs):
        run.engine.train()
        start = time.perf_counter()
        for task, batch in run.train_batches(order, plan.micro_batch * run.world):
            set_task(run.engine.module, task)  # one task per batch; a no-op for a single-task model
            loss = run.engine.micro_step(run.shard(batch))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} in epoch {epoch + 1}")
            if run.validates_at_step():
                validate(run, state, epoch)
        state["epoch_times"].append(time.perf_counter() - start)
        if not cfg.eval_every_steps or (epoch + 1 == run.epochs and not state["val_metrics"]):
            validate(run, state, epoch)
        state["epoch"], state["order"] = epoch + 1, order.getstate()
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, run.engine, state, rank=run.rank)
        # reported once saved: a trial killed by its report (Ray stopping it) resumes after this epoch
        scores = [{**at, "val_score": run.task.score(m), "loss": loss.item()}
                  for at, m in zip(state["evaluated_at"], state["val_metrics"]) if at["epoch"] == epoch + 1]
        shown = ", ".join(f"{s['val_score']:.2f}" for s in scores) or "-"
        log(f"[{cfg.trial_id}] epoch {epoch + 1}/{run.epochs} loss {loss.item():.4f} val {shown} "
            f"({state['epoch_times'][-1]:.1f}s)")
        if report:
            for score in scores:
                report(score)
    load_trainable_state(run.engine.module, state["best_state"])
    test_metrics = run.evaluate("test")
    if modules_file and run.rank == 0:
        save_tensors(modules_file, state["best_state"])
    return {**run.results(state, test_metrics, plan), "modules_file": modules_file and str(modules_file)}


def resume(cfg: TrialConfig, plan: BatchPlan, checkpoint_dir: Path | None, log) -> tuple[Run, dict | None]:
    """The trial set up, with the loop state of its checkpoint when one is there; a checkpoint that
    cannot be read (truncated, foreign, not tensors and plain data) is deleted and the trial starts
    afresh on a newly set-up run, as loading may have touched the engine."""
    run = setup(cfg, plan)
    if not has_checkpoint(checkpoint_dir):
        return run, None
    try:
        state = load_checkpoint(checkpoint_dir, run.engine)
    except Exception as exc:  # noqa: BLE001  whatever is wrong with the file, the trial can still run
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log(f"[{cfg.trial_id}] checkpoint in {checkpoint_dir} unreadable ({type(exc).__name__}: {reason[:200]}); "
            "starting afresh")
        run.engine.close()
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return setup(cfg, plan), None
    log(f"[{cfg.trial_id}] continuing after epoch {state['epoch']} from {checkpoint_dir}")
    return run, state


def validate(run: Run, state: dict, epoch: int) -> None:
    """Score the validation split now; keep the weights if the score is the best so far."""
    run.engine.module.eval()
    state["val_metrics"].append(run.evaluate("validation"))
    state["evaluated_at"].append({"epoch": epoch + 1, "step": run.engine.optimizer_steps})
    score = run.task.score(state["val_metrics"][-1])
    if state["best"] is None or score > run.task.score(state["val_metrics"][state["best"]]):
        state["best"] = len(state["val_metrics"]) - 1
        state["best_state"] = trainable_state(run.engine.module, device="cpu")
    run.engine.train()


@dataclass
class Run:
    """A trial set up to train: its task (or mixture), encoded splits, model in its engine, and where it runs.

    ``data`` holds each split's encoded rows (a mixture's: all members', in member order);
    ``by_task`` each member's own (a single task's: ``{task: data}``).
    """

    cfg: TrialConfig
    task: Task | Mixture
    fmt: TextFormat
    data: dict[str, list[dict]]
    data_source: str
    model_source: str
    tokenizer: object
    engine: Engine
    count: ParamCount
    device: torch.device
    micro_batch: int
    precision: dict
    cpu_memory: tuple[int, str] | None  # (peak bytes, how measured) of the trial's tensors on a CPU
    rank: int = 0
    world: int = 1
    by_task: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # member -> where its data came from

    @property
    def epochs(self) -> int:
        return self.cfg.epochs or self.task.epochs

    @property
    def members(self) -> tuple[Task, ...]:
        return self.task.members if isinstance(self.task, Mixture) else (self.task,)

    @property
    def probabilities(self) -> list[float]:
        """A mixture's chance per member to give a batch (``tasks.mixture.sampling_probabilities``)."""
        return sampling_probabilities([len(self.by_task[t.name]["train"]) for t in self.members],
                                      sampling=self.cfg.sampling, temperature=self.cfg.temperature)

    def new_order(self) -> random.Random | MixtureSampler:
        """The data order at the trial's start; either kind has ``getstate``/``setstate`` for checkpoints."""
        if not isinstance(self.task, Mixture):
            return random.Random(self.cfg.seed)
        sizes = [len(self.by_task[t.name]["train"]) for t in self.members]
        return MixtureSampler(sizes, self.probabilities, seed=self.cfg.seed)

    def train_batches(self, order: random.Random | MixtureSampler, rows: int):
        """One epoch of ``(task, padded batch of rows)``: a shuffled pass over a single task's rows, or
        a mixture's sampled batches (as many as a pass over all members' rows takes)."""
        if not isinstance(order, MixtureSampler):
            for batch in batches(self.data["train"], rows, self.pad_id, shuffle=order, min_rows=self.world):
                yield self.task.name, batch
            return
        for member, indices in order.epoch(rows):
            task = self.members[member].name
            own = self.by_task[task]["train"]
            yield task, collate([own[i] for i in indices], self.pad_id)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def validates_at_step(self) -> bool:
        """Whether the micro-batch just run ended an optimizer step on which validation is due."""
        every, engine = self.cfg.eval_every_steps, self.engine
        return bool(every) and engine.at_boundary() and engine.optimizer_steps % every == 0

    def shard(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This worker's rows of a step's batch (all of them with one worker), on its device."""
        return {k: v[self.rank :: self.world].contiguous().to(self.device) for k, v in batch.items()}

    def evaluate(self, split: str) -> dict:
        """The split's metrics; a mixture's per member (``{task: metrics}``), each with its own modules."""
        metrics = {}
        for task in self.members:
            set_task(self.engine.module, task.name)
            metrics[task.name] = evaluate(self.engine.module, self.tokenizer, task, self.fmt,
                                          self.by_task[task.name][split], self.micro_batch, self.device)
        return metrics if isinstance(self.task, Mixture) else metrics[self.task.name]

    def member_results(self, state: dict, test_metrics: dict) -> dict | None:
        """A mixture's per-member figures for its record: data, training rows, sampling share, and the
        validation and test scores at the best (mean) validation; None for a single task."""
        if not isinstance(self.task, Mixture):
            return None
        best = state["val_metrics"][state["best"]]
        return {t.name: {"data_source": self.sources[t.name], "train_examples": len(self.by_task[t.name]["train"]),
                         "sampling_probability": p, "val_score": t.score(best[t.name]),
                         "test_score": t.score(test_metrics[t.name])}
                for t, p in zip(self.members, self.probabilities, strict=True)}

    def results(self, state: dict, test_metrics: dict, plan: BatchPlan) -> dict:
        best = state["best"]
        if devices.accelerator() is not None:
            peak, measured_by = torch.cuda.max_memory_allocated(devices.accelerator()), "torch.cuda.max_memory_allocated"
        else:
            peak, measured_by = self.cpu_memory
        return {
            "data_source": self.data_source, "model_source": self.model_source, "text_format": asdict(self.fmt),
            "epochs": self.epochs, "val_metrics": state["val_metrics"], "evaluated_at": state["evaluated_at"],
            "best_epoch": state["evaluated_at"][best]["epoch"], "best_step": state["evaluated_at"][best]["step"],
            "val_score": self.task.score(state["val_metrics"][best]),
            "test_metrics": test_metrics, "test_score": self.task.score(test_metrics),
            "trainable_params": self.count.trainable, "total_params": self.count.total,
            "trainable_pct": self.count.pct, "peak_memory_bytes": peak, "memory_measured_by": measured_by,
            "peak_rss_bytes": peak_rss(),
            "time_per_epoch_s": sum(state["epoch_times"]) / len(state["epoch_times"]),
            "batch_size": plan.batch_size * self.world, "micro_batch_size": plan.micro_batch,
            "accumulation_steps": plan.accumulation, "workers": self.world, "batch_chosen_by": plan.chosen_by,
            "precision": self.precision, "members": self.member_results(state, test_metrics),
        }


def setup(cfg: TrialConfig, plan: BatchPlan) -> Run:
    """Seeds, data, the model with its method applied, and the engine that trains it at ``plan``."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    precision = set_precision(cfg.precision, tf32=cfg.tf32)
    reset_cpu_peak_memory()
    rank, world = rank_and_world()
    members = tuple(get_task(t) for t in cfg.member_tasks)
    task = Mixture(cfg.task, members) if cfg.mixture else members[0]
    fmt = cfg.text_format()
    # each member by its own split rule (and train_size subsample)
    loaded = {t.name: t.load_with_source(cfg.data, train_size=cfg.train_size, seed=cfg.seed) for t in members}
    sources = {name: found.source for name, found in loaded.items()}
    data_source = mixture_source(sources) if cfg.mixture else sources[cfg.task]
    model_name = trial_model(cfg.model, members, lambda t: sources[t.name])
    model, tokenizer, model_source = load_model(model_name, seed=cfg.seed)
    _, count = apply_method(model, cfg.method, cfg.method_options, tasks=cfg.mixture)
    by_task = {}
    for t in members:
        splits = loaded[t.name].splits
        inputs = t.model_inputs(splits, model=model_name, data_source=sources[t.name])  # beside the text, or None
        max_source = cfg.max_source_length or t.max_source_length
        by_task[t.name] = {split: encode_split(t, fmt, tokenizer, rows, max_source, inputs and inputs[split])
                           for split, rows in splits.items()}
    data = {split: [row for own in by_task.values() for row in own[split]] for split in by_task[members[0].name]}
    epochs = cfg.epochs or task.epochs
    # Micro-batches count across epochs: the optimizer steps after every `accumulation` of them (as
    # DeepSpeed's engine does); a partial group left at the very end is not applied. A mixture's
    # epoch is as many batches as a pass over all its members' rows (tasks/mixture.py).
    micro_steps = epochs * math.ceil(len(data["train"]) / (plan.micro_batch * world))
    opt = Optimization(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                       max_grad_norm=cfg.max_grad_norm, warmup_steps=cfg.warmup_steps,
                       total_steps=micro_steps // plan.accumulation, accumulation=plan.accumulation)
    deepspeed = deepspeed_config_of(cfg.method, cfg.method_options)
    if deepspeed is None:
        model.to(devices.placement())
    # on a CPU, before training: its extra optimizer step must not touch the trial's own state
    memory = None if devices.accelerator() is not None else cpu_tensor_peak(
        cfg, str(model_name), data["train"], plan, images=max(t.images_per_example for t in members))
    engine = Engine(model, opt, deepspeed=deepspeed, micro_batch=plan.micro_batch, precision=cfg.precision)
    device = engine.deepspeed.device if engine.deepspeed is not None else next(model.parameters()).device
    if devices.accelerator() is not None:
        torch.cuda.reset_peak_memory_stats(devices.accelerator())
    return Run(cfg, task, fmt, data, data_source, model_source, tokenizer, engine, count, device, plan.micro_batch,
               precision, memory, rank, world, by_task, sources)


def encode_split(task: Task, fmt: TextFormat, tokenizer, examples: list[dict], max_source: int,
                 inputs: list[dict] | None = None) -> list[dict]:
    """Token ids of each example's source and target (unpadded), its ``inputs`` beside the text (a
    tensor per model argument), and the example kept for scoring."""
    out = []
    for i, ex in enumerate(examples):
        source = tokenizer(task.source(ex, fmt), truncation=True, max_length=max_source).input_ids
        target = tokenizer(task.target(ex, fmt), truncation=True, max_length=task.max_target_length).input_ids
        out.append({"input_ids": source, "labels": target, **(inputs[i] if inputs else {}), "example": ex})
    return out


@torch.no_grad()
def evaluate(model, tokenizer, task: Task, fmt: TextFormat, rows: list[dict], batch_size: int, device) -> dict[str, float]:
    """Greedy generation on ``rows``, scored by the task's metrics."""
    model.eval()
    predictions = []
    for batch in batches(rows, batch_size, tokenizer.pad_token_id):
        generated = model.generate(
            **{k: v.to(device) for k, v in batch.items() if k != "labels"},
            max_new_tokens=task.max_target_length,
            do_sample=False,
            num_beams=1,
        )
        predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return task.evaluate(predictions, [r["example"] for r in rows], fmt)


def reset_cpu_peak_memory() -> None:
    """Start the process's peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM), so a
    worker process that runs several trials in turn measures each on its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def cpu_tensor_peak(cfg: TrialConfig, model: str, rows: list[dict], plan: BatchPlan, *,
                    images: int = 0) -> tuple[int, str]:
    """Peak bytes of the trial's tensors on a CPU, and how they were measured (never an estimate).

    The process's resident size is mostly the interpreter and its libraries, so the tensors are
    measured instead: MemTracker over one real training step of the same model and method (plain
    AdamW) at the trial's micro-batch, every row as long as the longest source and target of its
    training split, with ``images`` of features each when ``model`` is a VL-T5 (the most any member shows).
    """
    with torch.random.fork_rng():  # its random weights must not move the trial's RNG (measured or cached alike)
        return _tensor_peak(model, cfg.method, json.dumps(cfg.method_options, sort_keys=True), plan.micro_batch,
                            max(len(r["input_ids"]) for r in rows), max(len(r["labels"]) for r in rows),
                            cfg.mixture, images)


@functools.lru_cache(maxsize=64)  # a worker's later trials of the same workload (other seeds and rates)
def _tensor_peak(model: str, method: str, options: str, micro_batch: int, source_len: int,
                 target_len: int, tasks: tuple[str, ...] | None = None, images: int = 0) -> tuple[int, str]:
    from peftbench.budgets.estimate import estimate_fit
    from peftbench.budgets.workload import Workload

    workload = Workload(model, method, json.loads(options), source_len=source_len, target_len=target_len,
                        tasks=tasks, images=images)
    fit = estimate_fit(workload, capacity=2**62, batch_size=micro_batch, accounting="cpu", fake=False)
    # one wording for every trial, so a report compares these figures with each other (never with GPU peaks)
    return fit.peak_bytes, ("MemTracker on real CPU tensors: one training step (plain AdamW) at the trial's "
                            "micro-batch, every row as long as its longest training example")


def peak_rss() -> int | None:
    """The process's peak resident size since the trial began (Linux), a secondary figure on CPU."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    except (OSError, StopIteration):
        return None
