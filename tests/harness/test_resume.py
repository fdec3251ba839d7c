"""Resume is exact: a trial killed after an epoch and rerun ends in the same state, bit for bit, as one
that never stopped, in both engines; and the test split is scored with the best validation epoch's weights.

Scores of the random tiny T5 are all 0 (every output invalid), so nothing here compares scores: the
tests compare the tensors a run ends with (trainable weights, optimizer and schedule state, RNG, data
order) and which weights the test split saw. The model has dropout, so a resume that loses the RNG
state draws other masks and ends elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peftbench.budgets.plan import BatchPlan
from peftbench.engine.state import LOOP_STATE
from peftbench.harness import train as loop
from peftbench.harness.config import TrialConfig

from testkit.identical import assert_identical


class Killed(RuntimeError):
    pass


def trial(model: str, method: str, epochs: int = 3) -> TrialConfig:
    # 40 rows in micro-batches of 8: five micro-batches an epoch; warm-up over the first 4 optimizer
    # steps, so the schedule's position matters too
    return TrialConfig(model=model, method=method, task="sst2", learning_rate=3e-3, seed=1, epochs=epochs,
                       data="fixtures", train_size=40, warmup_steps=4, max_source_length=32)


def kill_after(epoch: int):
    def report(metrics):
        if metrics["epoch"] == epoch:
            raise Killed(f"killed after epoch {epoch}")
    return report


def final_state(folder: Path) -> dict:
    """What the last checkpoint holds, engine state included (plain torch's or DeepSpeed's own files)."""
    saved = torch.load(folder / LOOP_STATE, weights_only=True)
    saved.pop("epoch_times"), saved.pop("epoch_cpu_times")  # clock readings, never equal
    ds = folder / "last"
    if ds.is_dir():  # DeepSpeed: model weights, schedule and ZeRO's optimizer shards, as it wrote them
        model = torch.load(ds / "mp_rank_00_model_states.pt", weights_only=False)
        saved["model"], saved["schedule"] = model["module"], model["lr_scheduler"]
        shards = [torch.load(f, weights_only=False)["optimizer_state_dict"]
                  for f in sorted(ds.glob("*optim_states.pt"))]
        saved["zero"] = [{key: shard[key] for key in ("base_optimizer_state", "single_partition_of_fp32_groups")}
                         for shard in shards]
    return saved


def fingerprint(run) -> float:
    return float(sum(p.double().sum() for p in run.engine.module.parameters() if p.requires_grad))


def weight_dependent_score(run, split, samples=None):
    """Generation is slow and scores 0 on a random T5: a score that follows the weights instead, so
    the best epoch is some epoch, and the best weights kept across a resume are compared too."""
    return {"accuracy": abs(fingerprint(run)) * 1e4 % 100, "invalid": 0.0, "examples": 1}


def unbroken_and_resumed(cfg: TrialConfig, plan: BatchPlan, folder: Path) -> tuple[dict, dict, dict, dict]:
    unbroken = loop.train(cfg, plan, checkpoint_dir=folder / "unbroken", log=lambda _: None)
    with pytest.raises(Killed):
        loop.train(cfg, plan, checkpoint_dir=folder / "resumed", report=kill_after(1), log=lambda _: None)
    resumed = loop.train(cfg, plan, checkpoint_dir=folder / "resumed", log=lambda _: None)
    return unbroken, resumed, final_state(folder / "unbroken"), final_state(folder / "resumed")


def test_plain_torch_resume_ends_bit_for_bit_where_an_unbroken_run_does(dropout_t5, tmp_path, monkeypatch):
    monkeypatch.setattr(loop.Trial, "split_metrics", weight_dependent_score)
    # two micro-batches a step, five an epoch: the kill falls mid-step, with a gradient pending
    plan = BatchPlan(micro_batch=8, accumulation=2, chosen_by="fixed")
    unbroken, resumed, a, b = unbroken_and_resumed(trial(dropout_t5, "adapter"), plan, tmp_path)
    assert a["epoch"] == b["epoch"] == 3 and a["micro_steps"] == 15
    assert a["engine"]["scheduler"]["last_epoch"] == 7  # the schedule went on from step 2, not from 0
    assert_identical(a["order"], b["order"], "data order")
    assert_identical(a["torch_rng"], b["torch_rng"], "torch RNG")
    assert_identical(a["engine"], b["engine"], "optimizer and schedule")
    assert_identical(a["trainable"], b["trainable"], "trainable weights")
    assert_identical(a["best_state"], b["best_state"], "best weights")
    assert resumed.test_metrics == unbroken.test_metrics


def test_deepspeed_resume_of_full_fine_tuning_ends_bit_for_bit_where_an_unbroken_run_does(dropout_t5, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setattr(loop.Trial, "split_metrics", weight_dependent_score)
    plan = BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed")
    _, _, a, b = unbroken_and_resumed(trial(dropout_t5, "full"), plan, tmp_path)
    assert a["epoch"] == b["epoch"] == 3 and a["micro_steps"] == 15
    assert len(a["model"]) > 10 and a["zero"]  # DeepSpeed's own files were read
    assert_identical(a["order"], b["order"], "data order")
    assert_identical(a["torch_rng"], b["torch_rng"], "torch RNG")
    assert a["schedule"]["last_epoch"] == 15
    assert_identical(a["schedule"], b["schedule"], "schedule")
    assert_identical(a["model"], b["model"], "model weights (DeepSpeed checkpoint)")
    assert_identical(a["zero"], b["zero"], "ZeRO optimizer state")
    assert_identical(a["best_state"], b["best_state"], "best weights")


def test_the_test_split_is_scored_with_the_best_epochs_weights_not_the_last(monkeypatch, tmp_path):
    """Validation accuracies 50, 80, 60 make epoch 2 the best: the test split must see epoch 2's weights."""
    scripted = iter([50.0, 80.0, 60.0])
    seen = {"validation": [], "test": []}

    def evaluate(run, split, samples=None):
        seen[split].append(fingerprint(run))
        score = next(scripted) if split == "validation" else 0.0
        return {"accuracy": score, "invalid": 0.0, "examples": 1}

    monkeypatch.setattr(loop.Trial, "split_metrics", evaluate)
    cfg = trial("tiny-t5", "adapter")
    record = loop.train(cfg, BatchPlan(micro_batch=8, accumulation=1, chosen_by="fixed"), log=lambda _: None)
    assert record.best_epoch == 2 and record.val_score == 80.0
    assert len(set(seen["validation"])) == 3  # the weights moved every epoch
    assert seen["test"] == [seen["validation"][1]], "test scored with other weights than the best epoch's"
