"""The one training loop, top to bottom: forward and backward on each micro-batch (``engine.micro_step``),
the optimizer's step at each boundary, validation by generation (every epoch, or every N optimizer
steps), the best validation's weights kept, a checkpoint after every epoch; then the test split at the
best validation, or after the last epoch (``select: last``).

A trial is set up first (harness/setup.py: ``setup(cfg, plan) -> Trial``). A single task is a mixture
of one, so the loop has one path: its batches come from the trial's data order (a single task's
shuffled passes, a mixture's sampled members), the model told each batch's task by ``set_task``, and
the best validation is the best score (``Mixture.score``: a mixture's mean over members) in the
direction the task's metrics are better.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine.state import (
    has_checkpoint,
    load_checkpoint,
    load_trainable_state,
    save_checkpoint,
    save_tensors,
    trainable_state,
)
from peftbench.files import write_text
from peftbench.harness.config import TrialConfig
from peftbench.harness.memory import peak_memory, peak_rss
from peftbench.harness.records import TrialResults
from peftbench.harness.setup import Trial, setup
from peftbench.methods.multitask import set_task
from peftbench.tasks.metrics import better


@dataclass
class LoopState:
    """Where the loop stands, saved in every checkpoint as plain data and tensors (never pickled)."""

    order: object  # the data order's state (``ShuffledPasses`` or ``MixtureSampler``), plain data
    epoch: int = 0  # epochs done
    val_metrics: list = field(default_factory=list)  # each validation's metrics, as records hold them
    evaluated_at: list = field(default_factory=list)  # {"epoch", "step"} of each validation
    epoch_times: list = field(default_factory=list)  # seconds of each epoch's training
    # the process's CPU seconds in each epoch's training: unlike wall time, other jobs on the machine do
    # not inflate it (it sums this process's threads; a distributed trial's is rank 0's)
    epoch_cpu_times: list = field(default_factory=list)
    best: int | None = None  # the index of the best validation so far
    best_state: dict | None = None  # its trainable weights, on the CPU

    def to_checkpoint(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, saved: dict) -> LoopState:
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})  # older: fewer fields


def train(cfg: TrialConfig, plan: BatchPlan, *, report: Callable[[dict], None] | None = None,
          checkpoint_dir: Path | None = None, modules_file: Path | None = None, samples_file: Path | None = None,
          log=print, step_hook: Callable | None = None, epoch_lines: bool = True,
          memory_cache: Path | None = None) -> TrialResults:
    """Run one trial at ``plan``'s batch; return its results (metrics, counts, memory, time).

    With ``checkpoint_dir``, the loop saves its state after every epoch and, when a checkpoint is
    already there (a killed trial, rerun), continues from the epoch after it. With ``modules_file``,
    the trained parameters of the best validation are kept there (safetensors), to be loaded into the
    same model and method and served. With ``samples_file``, each test row's input, target, output
    and scores are kept there (JSON lines). ``step_hook(step, loss, lr)`` is called after every optimizer
    step on rank 0 (harness/loggers.py ``StepReporter``), the loss a tensor it may leave unread. Each
    epoch's line goes to ``log`` unless ``epoch_lines`` is false (a sweep's trials: the driver prints
    their starts and ends); other lines (a checkpoint resumed or unreadable) always do. ``memory_cache``:
    where a sweep keeps its CPU memory measurements (``setup``).
    """
    resumed = has_checkpoint(checkpoint_dir)
    trial, state = (resume(cfg, plan, checkpoint_dir, log, memory_cache=memory_cache) if resumed
                    else (setup(cfg, plan, memory_cache=memory_cache), None))
    try:  # a failed trial too lets go of its engine: a reused Ray worker runs the next trial
        state = loop(trial, state, report=report, checkpoint_dir=checkpoint_dir,
                     log=log if epoch_lines else None, step_hook=step_hook if trial.rank == 0 else None)
        return finish(trial, state, modules_file, samples_file)
    finally:
        trial.engine.close()


def loop(trial: Trial, state: LoopState | None, *, report, checkpoint_dir: Path | None, log,
         step_hook: Callable | None = None) -> LoopState:
    """The epochs of ``train``: steps, validation, checkpoints; the state after the last epoch (each
    epoch's line to ``log``, when given)."""
    engine, order = trial.engine, trial.new_order()
    state = state or LoopState(order=order.getstate())
    order.setstate(state.order)
    for epoch in range(state.epoch, trial.epochs):
        engine.train()
        start, cpu_start = time.perf_counter(), time.process_time()
        for task, batch in trial.train_batches(order):
            set_task(engine.module, task)  # one task per batch; a no-op for a single-task model
            loss = engine.micro_step(trial.shard(batch))  # forward, backward; the optimizer steps at a boundary
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} in epoch {epoch + 1}")
            if engine.at_boundary() and step_hook:  # the loss unread: reading it waits for the device
                step_hook(engine.optimizer_steps, loss.detach(), engine.optimizer.param_groups[0]["lr"])
            if engine.at_boundary() and trial.validation_due():
                validate(trial, state, epoch)
            if trial.done():  # a trial counting steps (``steps``) ends inside its last epoch
                break
        state.epoch_times.append(time.perf_counter() - start)
        state.epoch_cpu_times.append(time.process_time() - cpu_start)
        if due_at_epoch_end(trial, state, epoch):
            validate(trial, state, epoch)
        state.epoch, state.order = epoch + 1, order.getstate()
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, engine, state.to_checkpoint(), rank=trial.rank)
        # reported once saved: a trial killed by its report (Ray stopping it) resumes after this epoch
        tell(trial, state, epoch, loss.item(), report=report, log=log)
    return state


def due_at_epoch_end(trial: Trial, state: LoopState, epoch: int) -> bool:
    """Whether to validate at the end of ``epoch``: every epoch without ``eval_every_steps``; else at the
    last epoch when nothing was validated yet, or, testing the last weights (``select: last``), when the
    last validation was not of them."""
    if not trial.cfg.eval_every_steps:
        return True
    last_epoch, steps = epoch + 1 == trial.epochs, trial.engine.optimizer_steps
    unseen = not state.val_metrics or (trial.cfg.select == "last" and state.evaluated_at[-1]["step"] != steps)
    return last_epoch and unseen


def validate(trial: Trial, state: LoopState, epoch: int) -> None:
    """Score the validation split now; keep the weights if the score is the best so far (testing the
    best validation's: ``select: best``)."""
    trial.engine.module.eval()
    state.val_metrics.append(trial.split_metrics("validation"))
    state.evaluated_at.append({"epoch": epoch + 1, "step": trial.engine.optimizer_steps})
    score, task = trial.task.score(state.val_metrics[-1]), trial.task
    if state.best is None or better(task.score_direction, score, task.score(state.val_metrics[state.best])):
        state.best = len(state.val_metrics) - 1
        if trial.cfg.select == "best":  # the last weights are the module's own at the end: no copy
            state.best_state = trainable_state(trial.engine.module, device="cpu")
    trial.engine.train()


def tell(trial: Trial, state: LoopState, epoch: int, loss: float, *, report, log) -> None:
    """The epoch's line to ``log`` (when given), and each of its validations to ``report`` (Ray Tune's)."""
    scores = [{**at, "val_score": trial.task.score(m), "loss": loss}
              for at, m in zip(state.evaluated_at, state.val_metrics, strict=True) if at["epoch"] == epoch + 1]
    shown = ", ".join(f"{s['val_score']:.2f}" for s in scores) or "-"
    if log:
        log(f"[{trial.cfg.trial_id}] epoch {epoch + 1}/{trial.epochs} loss {loss:.4f} val {shown} "
            f"({state.epoch_times[-1]:.1f}s)")
    for score in scores if report else ():
        report(score)


def selected(trial: Trial, state: LoopState) -> tuple[int, dict]:
    """The validation whose weights the test scores, and those weights: the best validation's, or the
    last one's, the weights after the last epoch (``select: last``, VL-Adapter's multitask.py:574)."""
    if trial.cfg.select == "last":
        return len(state.val_metrics) - 1, trainable_state(trial.engine.module, device="cpu")
    return state.best, state.best_state


def finish(trial: Trial, state: LoopState, modules_file: Path | None,
           samples_file: Path | None = None) -> TrialResults:
    """The test split scored with the selected weights (``selected``; kept in ``modules_file`` if given;
    each test row's output in ``samples_file``), and the trial's results; the record's best epoch is the
    selected validation's."""
    chosen, weights = selected(trial, state)
    load_trainable_state(trial.engine.module, weights)
    samples = [] if samples_file else None
    test_metrics = trial.split_metrics("test", samples)
    if samples_file and trial.rank == 0:
        samples_file.parent.mkdir(parents=True, exist_ok=True)
        write_text(samples_file, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    if modules_file and trial.rank == 0:
        save_tensors(modules_file, weights)
    task, best = trial.task, state.val_metrics[chosen]
    return TrialResults(
        val_metrics=state.val_metrics, val_scores=[task.score(m) for m in state.val_metrics],
        evaluated_at=state.evaluated_at, best=chosen, test_metrics=test_metrics,
        test_score=task.score(test_metrics), metric_directions=task.metric_directions,
        score_direction=task.score_direction, scored_metrics=list(task.scored_metrics),
        members=trial.member_results(best, test_metrics),
        data_source=trial.data_source, model_source=trial.model_source, text_format=asdict(trial.fmt),
        epochs=trial.epochs, params=(trial.count.trainable, trial.count.total, trial.count.pct),
        memory=peak_memory(trial.cpu_memory), peak_rss_bytes=peak_rss(), epoch_times=state.epoch_times,
        epoch_cpu_times=state.epoch_cpu_times,
        micro_batch=trial.plan.micro_batch, accumulation=trial.plan.accumulation,
        batch_chosen_by=trial.plan.chosen_by, workers=trial.world, precision=trial.precision,
        modules_file=modules_file and str(modules_file))


def resume(cfg: TrialConfig, plan: BatchPlan, checkpoint_dir: Path, log, *,
           memory_cache: Path | None = None) -> tuple[Trial, LoopState | None]:
    """The trial set up, with the loop state of its checkpoint; a checkpoint that cannot be read
    (truncated, foreign, not tensors and plain data) is deleted and the trial starts afresh on a newly
    set-up trial, as loading may have touched the engine."""
    trial = setup(cfg, plan, memory_cache=memory_cache)
    try:
        state = LoopState.from_checkpoint(load_checkpoint(checkpoint_dir, trial.engine))
    except Exception as exc:  # noqa: BLE001  whatever is wrong with the file, the trial can still run
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log(f"[{cfg.trial_id}] checkpoint in {checkpoint_dir} unreadable ({type(exc).__name__}: {reason[:200]}); "
            "starting afresh")
        trial.engine.close()
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return setup(cfg, plan, memory_cache=memory_cache), None
    log(f"[{cfg.trial_id}] continuing after epoch {state.epoch} from {checkpoint_dir}")
    return trial, state
