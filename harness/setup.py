"""A trial set up to train (``setup(cfg, plan) -> Trial``): seeds, its task as a mixture (a single task
is a mixture of one), encoded splits, the model with its method applied, and the engine at the plan's
batch. The loop (harness/train.py) takes it from there."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine import devices
from peftbench.engine.batches import collate
from peftbench.engine.devices import set_precision
from peftbench.engine.step import Engine, Optimization, deepspeed_config_of, rank_and_world
from peftbench.harness.config import TrialConfig
from peftbench.harness.generation import capped, generate, generate_and_score
from peftbench.harness.memory import cpu_tensor_peak, reset_cpu_peak_memory, reset_gpu_peak_memory
from peftbench.methods import ParamCount, apply_method
from peftbench.methods.multitask import set_task
from peftbench.models.load import load_model
from peftbench.tasks import Task, TextFormat, get_task
from peftbench.tasks.base import trial_model
from peftbench.tasks.mixture import (
    Mixture,
    MixtureSampler,
    RoundRobin,
    ShuffledPasses,
    epoch_batches,
    mixture_source,
    sampling_probabilities,
)

log = logging.getLogger(__name__)
CPU_EVAL_ROWS = 64


@dataclass
class Trial:
    """A trial set up to train: its task (a mixture; a single task's of one member), each member's
    encoded splits, the model in its engine at the plan's batch, and where it runs."""

    cfg: TrialConfig
    plan: BatchPlan
    task: Mixture
    fmt: TextFormat
    splits: dict[str, dict[str, list[dict]]]  # member -> split -> encoded rows
    sources: dict[str, str]  # member -> where its data came from
    model_source: str
    tokenizer: object
    engine: Engine
    count: ParamCount
    device: torch.device
    precision: dict
    cpu_memory: tuple[int, str] | None  # (peak bytes, how measured) of the trial's tensors on a CPU
    rank: int = 0
    world: int = 1

    @property
    def epochs(self) -> int:
        """Epochs to run: the config's, else the task's; with ``steps``, as many as those optimizer steps
        take, the last one cut short (``done``)."""
        if self.cfg.steps:
            return math.ceil(self.cfg.steps * self.plan.accumulation / self.batches_per_epoch)
        return self.cfg.epochs or self.task.epochs

    @property
    def sizes(self) -> list[int]:
        """Each member's training rows, in member order."""
        return [len(self.splits[t.name]["train"]) for t in self.task.members]

    @property
    def member_batches(self) -> list[int]:
        """Rows of each member's micro-batch over all workers: the plan's, or the member's own
        (``member_batch_sizes``, VL-Adapter's per-task batches)."""
        return member_batches(self.cfg, self.plan, self.task, world=self.world)

    @property
    def batches_per_epoch(self) -> int:
        """Micro-batches in an epoch: a pass over every member's training rows (tasks/mixture.py)."""
        return batches_per_epoch(self.cfg, self.plan, self.task, self.sizes, world=self.world)

    def done(self) -> bool:
        """Whether the trial's ``steps`` optimizer steps are all taken (never, when it counts epochs)."""
        return bool(self.cfg.steps) and self.engine.optimizer_steps >= self.cfg.steps

    @property
    def data_source(self) -> str:
        return mixture_source(self.sources)

    @property
    def data(self) -> dict[str, list[dict]]:
        """Each split's encoded rows of every member, in member order (a single task's: its own)."""
        first = self.splits[self.task.members[0].name]
        return {split: [row for own in self.splits.values() for row in own[split]] for split in first}

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def probabilities(self) -> list[float]:
        """Each member's chance to give a batch (``tasks.mixture.sampling_probabilities``; one member: 1)."""
        return probabilities(self.cfg, self.sizes, self.member_batches)

    def new_order(self) -> ShuffledPasses | MixtureSampler | RoundRobin:
        """The data order at the trial's start; its ``getstate``/``setstate`` is plain data, for checkpoints."""
        return self.task.order(self.sizes, self.probabilities, seed=self.cfg.seed,
                               min_rows=min_rows(self.cfg, self.plan, world=self.world),
                               sampling=self.cfg.sampling, rows=self.cfg.row_sampling)

    def train_batches(self, order: ShuffledPasses | MixtureSampler | RoundRobin) -> Iterator[tuple[str, dict]]:
        """One epoch of ``(member task, padded batch)``, each batch the rows of one micro-batch on every
        worker. With ``member_batch_sizes`` each member batch is one optimizer step's: its rows in
        ``accumulation`` micro-batches in a row, so a step never mixes tasks (as VL-Adapter's)."""
        parts = self.plan.accumulation if self.cfg.own_member_batches else 1
        for member, indices in order.epoch(self.member_batches):
            task = self.task.members[member].name
            own = self.splits[task]["train"]
            for k in range(parts):
                yield task, collate([own[i] for i in indices[k::parts]], self.pad_id)

    @property
    def eval_rows(self) -> int:
        """Rows generated at once: the micro-batch on an accelerator (the budget chose it); on a CPU at
        least ``CPU_EVAL_ROWS``, as no budget binds there and a tiny model's generation is per-call
        overhead (the smoke's validation took half the time at 64 rows as at 16, the same scores)."""
        return self.plan.micro_batch if self.device.type != "cpu" else max(self.plan.micro_batch, CPU_EVAL_ROWS)

    def validation_due(self) -> bool:
        """Whether the optimizer step just taken is one on which validation is due (every N steps)."""
        every = self.cfg.eval_every_steps
        return bool(every) and self.engine.optimizer_steps % every == 0

    def shard(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This worker's rows of a step's batch (all of them with one worker), on its device."""
        return {k: v[self.rank :: self.world].contiguous().to(self.device) for k, v in batch.items()}

    def split_metrics(self, split: str, samples: list | None = None) -> dict:
        """The split's metrics as records hold them (``Mixture.recorded``), each member with its own
        modules; each row's input, target, output and scores appended to ``samples`` if given."""
        by_member = {}
        for task in (member.evaluated_on(split) for member in self.task.members):
            set_task(self.engine.module, task.name)
            rows = self.splits[task.name][split]
            if samples is None:
                by_member[task.name] = generate_and_score(self.engine.module, self.tokenizer, task, self.fmt, rows,
                                                          self.eval_rows, self.device)
                continue
            outputs = generate(self.engine.module, self.tokenizer, task, rows, self.eval_rows, self.device)
            examples = [r["example"] for r in rows]
            by_member[task.name] = task.compute_metrics(outputs, examples, self.fmt)
            samples += [task.sample(out, ex, self.fmt) for out, ex in zip(outputs, examples, strict=True)]
        return self.task.recorded(by_member)

    def member_results(self, best_metrics: dict, test_metrics: dict) -> dict | None:
        """A mixture's per-member figures for its record: data, training rows, sampling share, and the
        validation and test scores at the best (mean) validation; None for a single task."""
        if not self.cfg.mixture:
            return None
        return {t.name: {"data_source": self.sources[t.name], "train_examples": len(self.splits[t.name]["train"]),
                         "batch_size": batch, "sampling_probability": p, "val_score": t.score(best_metrics[t.name]),
                         "test_score": t.score(test_metrics[t.name])}
                for t, p, batch in zip(self.task.members, self.probabilities, self.member_batches, strict=True)}


def member_batches(cfg: TrialConfig, plan: BatchPlan, task: Mixture, *, world: int) -> list[int]:
    """Rows of each member's batch over all workers: the plan's micro-batch, or a mixture member's own
    (``member_batch_sizes``: VL-Adapter's per-task batches, each one optimizer step of ``accumulation``
    micro-batches; the plan's micro-batch is searched for the largest)."""
    own = cfg.member_batch_sizes if cfg.mixture else None
    return [(own[t.name] if own else plan.micro_batch) * world for t in task.members]


def probabilities(cfg: TrialConfig, sizes: list[int], batches: list[int]) -> list[float]:
    """Each member's chance to give a batch (``tasks.mixture.sampling_probabilities``; one member: 1)."""
    return sampling_probabilities(sizes, sampling=cfg.sampling, temperature=cfg.temperature, batches=batches)


def batches_per_epoch(cfg: TrialConfig, plan: BatchPlan, task: Mixture, sizes: list[int], *, world: int) -> int:
    """Micro-batches in an epoch of members of ``sizes`` training rows (``tasks.mixture.epoch_batches``); a
    member's own batch is ``accumulation`` of them."""
    batches = member_batches(cfg, plan, task, world=world)
    steps = epoch_batches(sizes, batches, sampling=cfg.sampling, probabilities=probabilities(cfg, sizes, batches),
                          min_rows=min_rows(cfg, plan, world=world))
    return steps * plan.accumulation if cfg.own_member_batches else steps


def min_rows(cfg: TrialConfig, plan: BatchPlan, *, world: int) -> int:
    """Fewest rows a batch may have: one a worker, in each of a member batch's micro-batches."""
    return world * plan.accumulation if cfg.own_member_batches else world


def setup(cfg: TrialConfig, plan: BatchPlan, *, memory_cache: Path | None = None) -> Trial:
    """Seeds, data, the model with its method applied, and the engine that trains it at ``plan``; on a CPU
    the tensors' peak measured, or read from ``memory_cache`` (a sweep's trials of one workload share it)."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    precision = set_precision(cfg.precision, tf32=cfg.tf32)
    reset_cpu_peak_memory()
    rank, world = rank_and_world()
    members = tuple(capped(get_task(t), num_beams=cfg.num_beams, max_length=cfg.generation_max_length)
                    for t in cfg.member_tasks)
    task = Mixture(cfg.task, members, scoring=cfg.mixture_score)
    fmt = cfg.text_format()
    # each member by its own split rule (and train_size subsample)
    loaded = {t.name: t.load_with_source(cfg.data, train_size=cfg.train_size, seed=cfg.seed, rule=cfg.subsample)
              for t in task.members}
    sources = {name: found.source for name, found in loaded.items()}
    model_name = trial_model(cfg.model, task.members, lambda t: sources[t.name])
    model, tokenizer, model_source = load_model(model_name, seed=cfg.seed)
    _, count = apply_method(model, cfg.method, cfg.method_options, tasks=cfg.mixture)
    splits = {t.name: encode_member(t, cfg, fmt, tokenizer, loaded[t.name].splits, model_name=model_name,
                                    data_source=sources[t.name]) for t in task.members}
    train_rows = [row for own in splits.values() for row in own["train"]]
    deepspeed = deepspeed_config_of(cfg.method, cfg.method_options)
    if deepspeed is None:
        model.to(devices.placement())
    # on a CPU, before training: its extra optimizer step must not touch the trial's own state
    cpu_memory = cpu_tensor_peak(cfg, str(model_name), train_rows, plan,
                                 images=max(t.images_per_example for t in task.members), cache_path=memory_cache)
    per_epoch = batches_per_epoch(cfg, plan, task, [len(own["train"]) for own in splits.values()], world=world)
    opt = optimization(cfg, plan, train_rows=len(train_rows), epochs=cfg.epochs or task.epochs, world=world,
                       per_epoch=per_epoch)
    warn_long_warmup(opt, trial_id=cfg.trial_id)
    engine = Engine(model, opt, deepspeed=deepspeed, micro_batch=plan.micro_batch, precision=cfg.precision)
    device = engine.deepspeed.device if engine.deepspeed is not None else next(model.parameters()).device
    reset_gpu_peak_memory()
    return Trial(cfg=cfg, plan=plan, task=task, fmt=fmt, splits=splits, sources=sources, model_source=model_source,
                 tokenizer=tokenizer, engine=engine, count=count, device=device, precision=precision,
                 cpu_memory=cpu_memory, rank=rank, world=world)


def optimization(cfg: TrialConfig, plan: BatchPlan, *, train_rows: int, epochs: int, world: int,
                 per_epoch: int | None = None) -> Optimization:
    """The optimizer's settings, its schedule over the trial's optimizer steps.

    Micro-batches count across epochs: the optimizer steps after every `accumulation` of them (as
    DeepSpeed's engine does); a partial group left at the very end is not applied. A mixture's epoch
    is as many batches as a pass over all its members' rows (tasks/mixture.py): ``per_epoch`` when
    given (``batches_per_epoch``), else ``train_rows`` in batches of the plan's.
    """
    micro_steps = epochs * (per_epoch or math.ceil(train_rows / (plan.micro_batch * world)))
    total = cfg.steps or micro_steps // plan.accumulation  # steps, when given, instead of epochs
    # a ratio's warm-up is rounded down, as VL-Adapter's int(t_total * warmup_ratio)
    warmup = cfg.warmup_steps if cfg.warmup_ratio is None else int(total * cfg.warmup_ratio)
    return Optimization(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, adam_eps=cfg.adam_eps,
                        label_smoothing=cfg.label_smoothing, smoothed_loss=cfg.smoothed_loss,
                        max_grad_norm=cfg.max_grad_norm, warmup_steps=warmup, total_steps=total,
                        accumulation=plan.accumulation)


def warn_long_warmup(opt: Optimization, *, trial_id: str) -> None:
    """One WARNING line when the warm-up outlasts the run: the learning rate never reaches its peak and
    stays near 0, so a short run (a spec of one's own, 1 epoch) learns nothing and nothing else says why."""
    if opt.warmup_steps > opt.total_steps:
        log.warning("%s: warm-up of %d steps (spec key warmup_steps) is longer than the run's %d optimizer "
                    "steps; the learning rate never reaches its peak (set warmup_steps below %d)",
                    trial_id, opt.warmup_steps, opt.total_steps, opt.total_steps)


def encode_member(task: Task, cfg: TrialConfig, fmt: TextFormat, tokenizer, splits: dict[str, list[dict]], *,
                  model_name, data_source: str) -> dict[str, list[dict]]:
    """One member's splits encoded, with the model's inputs beside the text (a VL task's image features)."""
    inputs = task.model_inputs(splits, model=model_name, data_source=data_source)  # or None: text only
    max_source = cfg.max_source_length or task.max_source_length
    return {split: encode_split(task, fmt, tokenizer, rows, max_source, inputs and inputs[split])
            for split, rows in splits.items()}


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
